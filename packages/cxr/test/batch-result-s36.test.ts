// `cxr predict`'s `result` column says what the page's card says (predict/result_words.ts): an assessed film as
// its number against the operating point's threshold, not "Signs of pneumonia detected" beside an 18 % probability
// (the contradiction the card and the PACS report stopped showing), with plain spaces for CSV and JSON readers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runBatch } from '../src/predict/batch';
import { resultHeadline } from '../src/predict/result_words';
import { makeSeededModel, tempDir } from './ood-fixtures';
import sharp from 'sharp';
import { XRAY_JPEG } from './serve-fixtures';
import { sink } from './text-sink';

let root = '';
let modelDir = '';
let dir = '';

before(async () => {
  root = tempDir('batch-result');
  modelDir = await makeSeededModel(path.join(root, 'model'), { inputSize: 32, widths: [4, 8, 8, 8] });
  dir = path.join(root, 'films');
  fs.mkdirSync(dir);
  // A real film, small: the image checks assess it (a gradient they would not).
  if (fs.existsSync(XRAY_JPEG))
    fs.writeFileSync(path.join(dir, 'a.jpeg'), await sharp(XRAY_JPEG).resize(120, 100, { fit: 'fill' }).toBuffer());
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

const noFilm = !fs.existsSync(XRAY_JPEG) && 'no shared samples';

test("predict's result column is the card's headline: the number against the threshold", { skip: noFilm }, async () => {
  // Every operating point at a threshold under and over the film's probability: both sides are said.
  for (const threshold of [0.0001, 0.9999]) {
    const meta = JSON.parse(fs.readFileSync(path.join(modelDir, 'cxr.json'), 'utf8'));
    for (const op of Object.values(meta.operatingPoints) as { threshold: number }[]) op.threshold = threshold;
    fs.writeFileSync(path.join(modelDir, 'cxr.json'), JSON.stringify(meta));
    const s = sink();
    const r = await runBatch({ paths: [dir], modelDir, format: 'json', out: s.out, log: () => {}, progress: false });
    const row = r.rows[0] as { result: string; verdict: string; label: string; probability: number };
    assert.equal(row.verdict, 'assessed', `the film is assessed (${row.verdict})`);
    const side = threshold < row.probability ? 'Above' : 'Below';
    assert.ok(row.result.startsWith(`${side} the pneumonia threshold (p `), row.result);
    assert.ok(!row.result.includes('\u00a0'), 'plain spaces in the column');
    assert.ok(!/signs of pneumonia/i.test(row.result), row.result);
  }
});

test('other answers keep their status words', () => {
  const base = { probability: 0.3, threshold: 0.2, operatingPoint: 'balanced' };
  assert.equal(resultHeadline({ ...base, status: 'cannot-assess', label: null }), 'Cannot assess this image');
  assert.ok(resultHeadline({ ...base, status: 'outside-population', label: 'PNEUMONIA' }).startsWith('Outside'));
  assert.equal(resultHeadline({ ...base, status: 'assessed', label: null }), 'Cannot assess this image');
});
