// `cxr evaluate` scores every film of a labelled folder, DICOM files included, and says what the shipped
// prediction pipeline would make of them: how many it would call "cannot assess" (the not-a-chest-X-ray
// gate, the image checks), and the metrics over the films it assesses. Films in sub-folders of a class
// folder are not read, and it says so.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { summarise } from '../src/cli/evaluate_pipeline';
import { evaluate } from '../src/eval/metrics';
import { CHEST_XRAY, DICOM_SAMPLES, needsData, REPO } from './shared-data';

const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const MODEL = path.join(REPO, 'models', 'default');
const skip = needsData(CHEST_XRAY, DICOM_SAMPLES, path.join(MODEL, 'cxr.json'));
let root = '';
let data = '';

function cxr(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, CXR_CACHE: process.env.CXR_CACHE ?? path.join(os.tmpdir(), 'cxr-test-cache') },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  if (skip) return;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-evaluate-pipeline-'));
  data = path.join(root, 'site');
  for (const cls of ['NORMAL', 'PNEUMONIA']) {
    const from = path.join(CHEST_XRAY, 'val', cls);
    fs.mkdirSync(path.join(data, cls), { recursive: true });
    for (const f of fs.readdirSync(from).sort().slice(0, 4))
      fs.copyFileSync(path.join(from, f), path.join(data, cls, f));
  }
  // A DICOM chest film in each class folder (one without a Part-10 preamble), a blank image the image
  // checks refuse, and a film in a sub-folder.
  fs.copyFileSync(
    path.join(DICOM_SAMPLES, 'CR-MONO1-10-chest_nometa.dcm'),
    path.join(data, 'NORMAL', 'CR-MONO1-10-chest_nometa.dcm'),
  );
  fs.copyFileSync(path.join(DICOM_SAMPLES, 'gdcm-CR-MONO1-10-chest.dcm'), path.join(data, 'PNEUMONIA', 'cr.dcm'));
  await sharp({ create: { width: 300, height: 300, channels: 3, background: { r: 128, g: 128, b: 128 } } })
    .png()
    .toFile(path.join(data, 'NORMAL', 'blank.png'));
  fs.mkdirSync(path.join(data, 'NORMAL', 'later'));
  const normal = fs.readdirSync(path.join(CHEST_XRAY, 'val', 'NORMAL')).sort();
  fs.copyFileSync(
    path.join(CHEST_XRAY, 'val', 'NORMAL', normal[normal.length - 1]),
    path.join(data, 'NORMAL', 'later', 'a.jpeg'),
  );
});

after(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

test('evaluate reads DICOM films and counts what the pipeline would not assess', { skip }, () => {
  const out = path.join(root, 'run');
  const r = cxr('evaluate', '--model', MODEL, '--data', data, '--out', out, '--json');
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(r.stdout);
  // Every film directly in a class folder: 4 JPEG, 1 DICOM and the blank image, and 4 JPEG and 1 DICOM.
  assert.equal(m.n, 11, r.stderr);
  assert.doesNotMatch(r.stderr, /DICOM is not supported/);
  assert.equal(m.verdicts.cannotAssess, 1, JSON.stringify(m.verdicts));
  assert.equal(m.verdicts.refused, 0);
  assert.equal(m.verdicts.assessed + m.verdicts.cannotAssess + m.verdicts.outsidePopulation, m.n);
  assert.equal(m.assessedOnly.n, m.verdicts.assessed);

  // The headline metrics are over every film, the refused one included; the others over the assessed ones.
  const p = JSON.parse(fs.readFileSync(path.join(out, 'predictions', 'all.json'), 'utf8'));
  assert.equal(p.files.length, 11);
  assert.ok(p.files.includes('PNEUMONIA/cr.dcm'));
  assert.equal(p.verdicts[p.files.indexOf('NORMAL/blank.png')], 'cannot-assess');
  const all = evaluate(p.labels, p.probs, { threshold: m.threshold });
  assert.deepEqual([m.auc, m.sensitivity, m.specificity], [all.auc, all.sensitivity, all.specificity]);
  const kept = p.verdicts.flatMap((v: string, i: number) => (v === 'assessed' ? [i] : []));
  const assessed = evaluate(
    kept.map((i: number) => p.labels[i]),
    kept.map((i: number) => p.probs[i]),
    { threshold: m.threshold },
  );
  assert.equal(m.assessedOnly.auc, assessed.auc);
  const written = JSON.parse(fs.readFileSync(path.join(out, 'metrics', 'all-assessed.json'), 'utf8'));
  assert.equal(written.n, m.verdicts.assessed);

  // The film in NORMAL/later/ is not read, and the warning says how many files where.
  assert.match(r.stderr, /NORMAL: skipping 1 file\(s\) in sub-folder\(s\) later\/: only files directly in NORMAL\//);
});

test('the table says how many films the pipeline would assess', { skip }, () => {
  const r = cxr('evaluate', '--model', MODEL, '--data', data);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /the prediction pipeline \(cxr predict, the server\) would assess \d+ of 11 films:\n1 "cannot/,
  );
  assert.match(r.stdout, /on the assessed films only:\n\d+ images/);
});

test('a film the pipeline refuses with an input error is counted apart from "cannot assess"', () => {
  const s = summarise(['assessed', 'refused', 'cannot-assess', 'assessed'], [1, 0, 0, 0], [0.9, 0.8, 0.7, 0.1], 0.5);
  assert.deepEqual(s.verdicts, { assessed: 2, cannotAssess: 1, outsidePopulation: 0, refused: 1 });
  assert.deepEqual(s.assessedOnly, evaluate([1, 0], [0.9, 0.1], { threshold: 0.5 }));
});
