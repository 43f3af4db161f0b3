// An image stretched or squashed far beyond any chest film's shape cannot be assessed (ASPECT): the image
// checks and the gate read the model's square, where a 64×5000 strip of a film looks like a film. The bounds
// (3 to 1 tall, 6 to 1 wide) sit well beyond the real films (0.84 to 3.18 width over height), and the
// robustness benchmark's own 'aspect' change stays far inside them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { Predictor } from '../src/predict/predictor';
import { deriveVerdict, MAX_ASPECT, MAX_TALL_ASPECT } from '../src/predict/verdict';
import { DEFAULT_STRENGTHS } from '../src/robustness/run';
import { makeTinyModel, tempDir, XRAY_JPEG } from './serve-fixtures';

const base = { ood: null, checks: [], facts: {} };
const codes = (width: number, height: number) => deriveVerdict({ ...base, width, height }).reasons.map((r) => r.code);

let dir: string;
let predictor: Predictor;

before(async () => {
  dir = tempDir('verdict-aspect');
  predictor = await Predictor.load(await makeTinyModel(path.join(dir, 'model')), { warmUp: false });
});
after(() => {
  predictor?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('deriveVerdict: a strip of a film, tall or wide, cannot be assessed; every real shape can', () => {
  for (const [w, h] of [
    [64, 5000],
    [3000, 64],
    [100, 700],
  ]) {
    const v = deriveVerdict({ ...base, width: w, height: h });
    assert.equal(v.status, 'cannot-assess', `${w}×${h}`);
    assert.deepEqual(
      v.reasons.map((r) => r.code),
      ['ASPECT'],
    );
    assert.match(v.reasons[0].message, new RegExp(`^image is ${w}×${h} pixels, [\\d.]+ times as (tall|wide)`));
    const bound = h > w ? '3 to 1 tall' : '6 to 1 wide';
    assert.match(v.reasons[0].message, new RegExp(`no chest film has that shape \\(more than ${bound} is not read\\)`));
  }
  assert.match(deriveVerdict({ ...base, width: 64, height: 5000 }).reasons[0].message, /78\.13 times as tall as it/);
  // Just past a bound, the ratio does not read as the bound itself.
  const [edge] = deriveVerdict({ ...base, width: 601, height: 100 }).reasons;
  assert.match(edge.message, /6\.01 times as wide as it is tall: .*more than 6 to 1 wide is not read/);
  assert.match(deriveVerdict({ ...base, width: 3073, height: 512 }).reasons[0].message, /6\.01 times as wide/);
  assert.deepEqual(deriveVerdict({ ...base, width: 600, height: 100 }).reasons, []);
  // Taller than wide has the tighter bound: the tallest real film is 1.19 to 1, a wide one 3.18 to 1.
  const [tallEdge] = deriveVerdict({ ...base, width: 100, height: 301 }).reasons;
  assert.match(tallEdge.message, /3\.01 times as tall as it is wide: .*more than 3 to 1 tall is not read/);
  assert.deepEqual(deriveVerdict({ ...base, width: 100, height: 300 }).reasons, []);
  assert.deepEqual(codes(64, 224), ['ASPECT']);
  // The most extreme films of train/, val/, samples-fullres and dicom-samples, and the usual ones.
  for (const [w, h] of [
    [445, 140],
    [256, 306],
    [1876, 1893],
    [2048, 2500],
    [224, 64],
    [64, 192],
  ]) {
    assert.deepEqual(codes(w, h), [], `${w}×${h}`);
  }
  // A strip too thin to read is both.
  assert.deepEqual(codes(16, 3000), ['TOO_SMALL', 'ASPECT']);
});

test("the robustness benchmark's aspect change, at every strength it uses, is far inside the bound", () => {
  // data/perturb_catalog.ts 'aspect': width × (1 - 0.3 s), as a film of ratio 1 / (1 - 0.3 s) squashed to a square.
  for (const s of DEFAULT_STRENGTHS) {
    const ratio = 1 / (1 - 0.3 * s);
    // Narrower than it was: taller than wide, so the tighter of the two bounds.
    assert.ok(ratio * 2 < MAX_TALL_ASPECT && MAX_TALL_ASPECT < MAX_ASPECT, `strength ${s}: ratio ${ratio.toFixed(2)}`);
    assert.deepEqual(codes(1000, Math.round(1000 * ratio)), [], `strength ${s}`);
    assert.deepEqual(codes(Math.round(1000 * ratio), 1000), [], `strength ${s}`);
  }
});

test('Predictor.predict: a real film squashed to 64×5000 or 3000×64 is cannot-assess (ASPECT), no label', async () => {
  for (const [w, h] of [
    [64, 5000],
    [3000, 64],
  ]) {
    const png = await sharp(XRAY_JPEG).resize(w, h, { fit: 'fill' }).grayscale().png().toBuffer();
    const p = await predictor.predict(png);
    assert.deepEqual([p.input.width, p.input.height], [w, h]);
    assert.equal(p.verdict.status, 'cannot-assess', `${w}×${h}: ${p.warnings.join('; ')}`);
    assert.ok(
      p.verdict.reasons.some((r) => r.code === 'ASPECT'),
      JSON.stringify(p.verdict),
    );
    assert.equal(p.label, null);
  }
});
