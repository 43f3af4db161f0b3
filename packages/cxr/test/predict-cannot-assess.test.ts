// `cxr predict` on an image the model cannot assess: the row keeps the raw score and says "Cannot assess
// this image", but gives no label, as `cxr history`, the page and /metrics show none for such an answer;
// a CSV filtered on label == PNEUMONIA must never pick it up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { makeSeededModel, tempDir } from './ood-fixtures';

const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');
let root = '';
let modelDir = '';
let noise = '';
let blank = '';

function cxr(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, CXR_MODEL: modelDir, CXR_DB: path.join(root, 'audit.db') },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  root = tempDir('predict-cannot-assess');
  modelDir = await makeSeededModel(path.join(root, 'model'), { inputSize: 32, widths: [4, 8, 8, 8] });
  // 200 × 200 random noise, and one grey level: both refused by the image checks (cannot-assess).
  let s = 12345;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s >>> 23;
  };
  const raw = { raw: { width: 200, height: 200, channels: 1 as const } };
  noise = path.join(root, 'noise.png');
  blank = path.join(root, 'blank.png');
  await sharp(Uint8Array.from({ length: 200 * 200 }, rand), raw)
    .png()
    .toFile(noise);
  await sharp(new Uint8Array(200 * 200).fill(128), raw)
    .png()
    .toFile(blank);
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

test('a cannot-assess row has an empty label in CSV and null in JSON; its score and verdict stay', () => {
  const csv = cxr('predict', noise, blank);
  assert.equal(csv.code, 0, csv.stderr);
  const [header, ...lines] = csv.stdout.trim().split('\n');
  const cols = header.split(',');
  assert.equal(lines.length, 2, csv.stdout);
  for (const line of lines) {
    // No file name here holds a comma or a quote, and these rows carry no warning text with one.
    const cell = (name: string) => line.split(',')[cols.indexOf(name)];
    assert.equal(cell('verdict'), 'cannot-assess', line);
    assert.equal(cell('result'), 'Cannot assess this image', line);
    assert.equal(cell('label'), '', line);
    assert.match(cell('probability'), /^0\.\d{6}$/, line);
  }

  const json = cxr('predict', noise, blank, '--json');
  assert.equal(json.code, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as Array<{ verdict: string; label: string | null; probability: number }>;
  assert.equal(rows.length, 2);
  for (const r of rows) {
    assert.equal(r.verdict, 'cannot-assess');
    assert.equal(r.label, null);
    assert.ok(r.probability > 0 && r.probability < 1, JSON.stringify(r));
  }

  // cxr history reads it back the same: no label (the log's column keeps the model's, which no reader shows).
  const h = cxr('history', '--json', '--limit', '1');
  assert.equal(h.code, 0, h.stderr);
  const logged = JSON.parse(h.stdout) as { label: string | null; verdict: { status: string } };
  assert.equal(logged.verdict.status, 'cannot-assess');
  assert.equal(logged.label, null);
});
