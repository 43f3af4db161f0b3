// `cxr ood evaluate` screened the model-size squares of real films with no original size, so a model
// trained under 64 px had every film stopped as TOO_SMALL (a 100% false-alarm rate and a failed --check),
// while `cxr predict` assessed the same films: a prediction checks the size of the file as decoded.
// The evaluation now gives each film its file's size and colour, and stops exactly the films a
// prediction would.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { loadRecordedSplit, splitRecords } from '../src/data/dataset_images';
import { DEFAULT_LIMITS } from '../src/data/decode';
import { readMeta } from '../src/models/io';
import { decodeInput } from '../src/predict/decode_input';
import { Predictor } from '../src/predict/predictor';
import { evaluateGate, type RateRow } from '../src/robustness/ood_evaluate';
import { fileOrigins } from '../src/robustness/ood_screen';
import { CHEST_XRAY, haveData, makeSeededModel, tempDir } from './ood-fixtures';

const skip = !haveData && 'no shared/data';
let dir = '';
let modelDir = '';

before(async () => {
  if (!haveData) return;
  dir = tempDir('ood-evaluate-size');
  // 32 px: every model-size square is under the verdict's 64-px minimum; no ood.json, the image checks alone.
  modelDir = await makeSeededModel(path.join(dir, 'model'), {
    inputSize: 32,
    split: { valFraction: 0.25, splitSeed: 3, limitPerClass: 8 },
  });
});
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Films stopped per class by the Predictor itself (decode, checks, verdict), with their reason codes. */
async function predicted(files: readonly string[], classes: readonly string[]): Promise<Map<string, RateRow>> {
  const p = await Predictor.load(modelDir, { warmUp: false });
  const by = new Map<string, RateRow>();
  try {
    for (const [i, file] of files.entries()) {
      const r = await p.predict(fs.readFileSync(file));
      const row = by.get(classes[i]) ?? { set: '', group: classes[i], n: 0, stopped: 0, rate: 0, reasons: {} };
      row.n++;
      if (r.verdict.status !== 'assessed') {
        row.stopped++;
        for (const c of new Set(r.verdict.reasons.map((x) => x.code))) row.reasons[c] = (row.reasons[c] ?? 0) + 1;
      }
      by.set(classes[i], row);
    }
  } finally {
    p.dispose();
  }
  return by;
}

test('a model under 64 px: real films are screened at their own size, as a prediction screens them', {
  skip,
}, async () => {
  const cacheDir = path.join(dir, 'cache');
  const r = await evaluateGate(modelDir, { dataRoot: CHEST_XRAY, perKind: 1, changes: ['blur'], cacheDir });
  for (const x of r.films) assert.equal(x.reasons.TOO_SMALL, undefined, `${x.set} ${x.group}: ${x.stopped}/${x.n}`);
  // A negative of a real film is as large as the film: stopped for being inverted, not for its size.
  const inverted = r.corpus.find((x) => x.set === 'inverted-film')!;
  assert.equal(inverted.reasons.TOO_SMALL, undefined);
  assert.equal(inverted.reasons.INVERTED, inverted.n);

  // The same films through the Predictor: the same films stopped, for the same reasons.
  const meta = readMeta(modelDir);
  const { val } = await loadRecordedSplit(CHEST_XRAY, meta, { raw: true, cacheDir });
  const kaggle = await splitRecords(CHEST_XRAY, 'val');
  const sets: [string, string[], string[]][] = [
    ['validation', val.files, Array.from(val.labels, (l) => meta.classNames[l])],
    ['kaggle-val', kaggle.map((k) => k.path), kaggle.map((k) => meta.classNames[k.label])],
  ];
  for (const [set, files, classes] of sets) {
    const want = await predicted(files, classes);
    const rows = r.films.filter((x) => x.set === set);
    assert.equal(
      rows.reduce((a, x) => a + x.n, 0),
      files.length,
      set,
    );
    assert.ok(files.length > 0, set);
    for (const row of rows) {
      const p = want.get(row.group)!;
      assert.deepEqual([row.n, row.stopped, row.reasons], [p.n, p.stopped, p.reasons], `${set} ${row.group}`);
    }
  }
});

test('fileOrigins gives the size a prediction decodes (EXIF orientation applied) and the colour it measures', {
  skip,
}, async () => {
  const gray = Buffer.alloc(120 * 40, 128);
  const rotated = path.join(dir, 'rotated.jpeg');
  // Stored 120×40, shown 40×120 (orientation 6: rotate 90°).
  await sharp(gray, { raw: { width: 120, height: 40, channels: 1 } })
    .withMetadata({ orientation: 6 })
    .jpeg()
    .toFile(rotated);
  const colour = path.join(dir, 'colour.png');
  const red = Buffer.alloc(80 * 80 * 3);
  for (let i = 0; i < red.length; i += 3) red[i] = 255;
  await sharp(red, { raw: { width: 80, height: 80, channels: 3 } })
    .png()
    .toFile(colour);
  const origins = await fileOrigins([rotated, colour], 32);
  for (const [i, file] of [rotated, colour].entries()) {
    const d = await decodeInput(fs.readFileSync(file), { size: 32, limits: DEFAULT_LIMITS, wantDisplay: false });
    assert.deepEqual(origins[i], {
      width: d.width,
      height: d.height,
      ...(d.facts.colourFraction === undefined ? {} : { colourFraction: d.facts.colourFraction }),
    });
  }
  assert.deepEqual([origins[0].width, origins[0].height], [40, 120]);
  assert.ok(origins[1].colourFraction! > 0.9);
});
