import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import sharp from 'sharp';
import { decodeFile } from '../src/data/decode';
import { register } from '../src/cli/ood';
import {
  fitGaussian,
  imageChecks,
  loadOod,
  mahalanobis,
  OOD_FILE,
  percentile,
  saturatedFraction,
  weightsDigest,
} from '../src/explain/ood';
import { InputError } from '../src/predict/errors';
import { Predictor } from '../src/predict/predictor';
import { CHEST_XRAY, haveData, makeSeededModel, SHARED, tempDir } from './ood-fixtures';
import { generatedNonXrays, invertImage, realNonXrays } from './ood-images';

function normals(seed: number): () => number {
  let a = seed >>> 0;
  const u = () => {
    a = (a * 1664525 + 1013904223) >>> 0;
    return (a + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

test('fitGaussian recovers a known Gaussian: precision ≈ Σ⁻¹, E[d²] ≈ dim', () => {
  // x = A z with A lower-triangular, so Σ = A Aᵀ.
  const A = [
    [2, 0, 0],
    [1, 1, 0],
    [0, -0.5, 0.5],
  ];
  const n = 4000;
  const g = normals(3);
  const x = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) {
    const z = [g(), g(), g()];
    for (let r = 0; r < 3; r++) x[i * 3 + r] = 5 + A[r][0] * z[0] + A[r][1] * z[1] + A[r][2] * z[2];
  }
  const fit = fitGaussian(x, n, 3);
  assert.ok(fit.shrinkage >= 0 && fit.shrinkage < 0.05, `shrinkage ${fit.shrinkage}`);
  for (const m of fit.mean) assert.ok(Math.abs(m - 5) < 0.15);
  // Σ⁻¹ of A Aᵀ for this A, computed by hand: Σ = [[4,2,0],[2,2,-0.5],[0,-0.5,0.5]].
  const sigma = [
    [4, 2, 0],
    [2, 2, -0.5],
    [0, -0.5, 0.5],
  ];
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 3; c++) {
      let v = 0;
      for (let k = 0; k < 3; k++) v += fit.precision[r * 3 + k] * sigma[k][c];
      assert.ok(Math.abs(v - (r === c ? 1 : 0)) < 0.12, `(Σ⁻¹Σ)[${r}][${c}] = ${v}`);
    }
  }
  assert.equal(mahalanobis(fit, fit.mean), 0);
  let sumD2 = 0;
  for (let i = 0; i < n; i++) sumD2 += mahalanobis(fit, x.subarray(i * 3, i * 3 + 3)) ** 2;
  assert.ok(Math.abs(sumD2 / n - 3) < 0.2, `mean d² ${sumD2 / n}`);
});

test('fitGaussian stays usable with fewer samples than dimensions and with dead features', () => {
  const n = 20,
    d = 50;
  const g = normals(9);
  const x = Float64Array.from({ length: n * d }, (_, i) => (i % d === 7 ? 0 : g()));
  const fit = fitGaussian(x, n, d);
  assert.ok(fit.shrinkage > 0.1, `shrinkage ${fit.shrinkage}`);
  const far = Float64Array.from({ length: d }, () => 10);
  assert.ok(Number.isFinite(mahalanobis(fit, far)));
  assert.ok(mahalanobis(fit, far) > mahalanobis(fit, x.subarray(0, d)));
  assert.throws(() => fitGaussian(new Float64Array(d), 1, d), /at least 2/);
  assert.throws(() => mahalanobis(fit, new Float64Array(3)), /3 features/);
});

test('percentile interpolates between order statistics', () => {
  assert.equal(percentile([3, 1, 2, 4, 5], 50), 3);
  assert.equal(percentile([1, 2, 3, 4, 5], 100), 5);
  assert.equal(percentile([0, 10], 99), 9.9);
});

test('image checks: blank, inverted, colour, and DICOM header facts', {
  skip: !haveData && 'no shared/data',
}, async () => {
  const xray = path.join(
    CHEST_XRAY,
    'train',
    'NORMAL',
    fs.readdirSync(path.join(CHEST_XRAY, 'train', 'NORMAL')).sort()[0],
  );
  const { pixels } = await decodeFile(xray, 64);
  const codes = (f: Parameters<typeof imageChecks>[0]) => imageChecks(f).map((c) => c.code);
  assert.deepEqual(codes({ pixels, size: 64 }), []);
  assert.deepEqual(codes({ pixels: pixels.map((v) => 255 - v), size: 64 }), ['INVERTED']);
  assert.deepEqual(codes({ pixels: new Uint8Array(64 * 64).fill(200), size: 64 }), ['BLANK']);
  // The film with its gray levels squeezed to 30% (a washed-out or nearly black film): not read.
  assert.deepEqual(codes({ pixels: pixels.map((v) => Math.round(v * 0.3)), size: 64 }), ['LOW_CONTRAST']);
  assert.match(
    imageChecks({ pixels: pixels.map((v) => Math.round(v * 0.3)), size: 64 })[0].message,
    /^too little contrast to read: the film is washed out, too dark, .*\(gray levels span \d+ of 255 /,
  );
  assert.deepEqual(codes({ pixels: pixels.map((v) => Math.round(64 + v * 0.8)), size: 64 }), [], '80% is still read');
  const noise = Uint8Array.from({ length: 64 * 64 }, (_, i) => (i * 7919 + (i >> 3) * 104729) % 251);
  assert.ok(codes({ pixels: noise, size: 64 }).includes('NOISE'));
  assert.deepEqual(codes({ pixels, size: 64, colourFraction: 0.4 }), ['COLOUR']);
  assert.deepEqual(codes({ pixels, size: 64, modality: 'CR', viewPosition: 'PA', bodyPart: 'CHEST' }), []);
  assert.deepEqual(codes({ pixels, size: 64, viewPosition: 'LL' }), ['LATERAL']);
  assert.deepEqual(codes({ pixels, size: 64, bodyPart: 'HAND' }), ['BODY_PART']);
  assert.deepEqual(codes({ pixels, size: 64, modality: 'CT' }), ['MODALITY']);
});

test('saturatedFraction: gray stored as RGB is 0, pure colours are 1', () => {
  assert.equal(saturatedFraction(Uint8Array.from([100, 100, 100, 30, 30, 30]), 3), 0);
  assert.equal(saturatedFraction(Uint8Array.from([255, 0, 0, 0, 200, 50]), 3), 1);
  assert.equal(saturatedFraction(Uint8Array.from([255, 0]), 1), 0);
});

// End to end on real data: a small model with seeded weights, its gate fitted on the same
// patient split as its cxr.json records, then X-rays versus everything else.
let modelDir = '';
let cacheDir = '';

before(async () => {
  if (!haveData) return;
  modelDir = await makeSeededModel(path.join(tempDir('ood'), 'model'));
  cacheDir = tempDir('ood-cache');
});
after(() => {
  if (modelDir) fs.rmSync(path.dirname(modelDir), { recursive: true, force: true });
  if (cacheDir) fs.rmSync(cacheDir, { recursive: true, force: true });
});

async function runCli(args: string[]): Promise<void> {
  const program = new Command('cxr').exitOverride();
  register(program);
  await program.parseAsync(args, { from: 'user' });
}

test('cxr ood fit writes ood.json; X-rays pass the gate and non-X-rays are flagged', {
  skip: !haveData && 'no shared/data',
}, async () => {
  await runCli(['ood', 'fit', '--model', modelDir, '--data', CHEST_XRAY, '--cache', cacheDir]);
  const found = loadOod(modelDir, modelDir);
  assert.ok(found.model, String(found.problem));
  const ood = found.model;
  assert.equal(ood.featureLayer, 'gap');
  assert.equal(ood.dim, 32);
  assert.equal(ood.percentile, 99.5);
  assert.equal(ood.weightsSha256, weightsDigest(modelDir));
  assert.equal(ood.fitted.valFraction, 0.25);
  assert.equal(ood.fitted.splitSeed, 3);
  assert.equal((ood.fitted.trainImages as number) + (ood.fitted.validationImages as number), 120);
  assert.ok(ood.threshold >= ood.scores.validation.p50);

  const p = await Predictor.load(modelDir);
  try {
    assert.ok(p.oodGate, p.notes.join('; '));
    const flagged = async (bytes: Buffer) => {
      const r = await p.predict(bytes);
      assert.ok(r.ood);
      return r.warnings.length > 0;
    };
    // X-rays the gate never saw: the official val split and the full-resolution samples.
    const xrays: string[] = [];
    for (const dir of [path.join(CHEST_XRAY, 'val'), path.join(SHARED, 'samples-fullres')]) {
      for (const cls of ['NORMAL', 'PNEUMONIA']) {
        const d = path.join(dir, cls);
        if (fs.existsSync(d))
          xrays.push(
            ...fs
              .readdirSync(d)
              .filter((f) => f.endsWith('.jpeg'))
              .map((f) => path.join(d, f)),
          );
      }
    }
    let passed = 0;
    for (const f of xrays) passed += (await flagged(fs.readFileSync(f))) ? 0 : 1;
    assert.ok(xrays.length >= 10 && passed >= 0.8 * xrays.length, `X-rays passing: ${passed}/${xrays.length}`);

    const generated = await generatedNonXrays();
    let caught = 0;
    for (const bytes of Object.values(generated)) caught += (await flagged(bytes)) ? 1 : 0;
    const n = Object.keys(generated).length;
    assert.ok(caught >= 0.8 * n, `generated non-X-rays flagged: ${caught}/${n}`);

    let invertedCaught = 0;
    for (const f of xrays.slice(0, 6)) invertedCaught += (await flagged(await invertImage(fs.readFileSync(f)))) ? 1 : 0;
    assert.ok(invertedCaught >= 5, `inverted X-rays flagged: ${invertedCaught}/6`);

    const real = realNonXrays();
    let realCaught = 0;
    let realScored = 0;
    for (const f of real) {
      try {
        realCaught += (await flagged(fs.readFileSync(f))) ? 1 : 0;
        realScored++;
      } catch (e) {
        if (!(e instanceof InputError)) throw e; // e.g. a deliberately truncated sample: not an image at all
      }
    }
    if (realScored > 0)
      assert.ok(realCaught >= 0.75 * realScored, `real pictures flagged: ${realCaught}/${realScored}`);
  } finally {
    p.dispose();
  }
});

test('oodPolicy refuse turns a flagged image into a 422 InputError; X-rays still pass', {
  skip: !haveData && 'no shared/data',
}, async () => {
  if (!fs.existsSync(path.join(modelDir, OOD_FILE)))
    await runCli(['ood', 'fit', '--model', modelDir, '--data', CHEST_XRAY, '--cache', cacheDir]);
  const p = await Predictor.load(modelDir, { oodPolicy: 'refuse' });
  try {
    const { 'noise.png': noise, 'colour-gradient.jpeg': colour } = await generatedNonXrays();
    const tensors = tf.memory().numTensors;
    for (const bytes of [noise, colour]) {
      for (const opts of [{}, { heatmap: true, thumbnail: true }]) {
        await assert.rejects(
          p.predict(bytes, opts),
          (e: unknown) => e instanceof InputError && e.status === 422 && e.code === 'NOT_A_CHEST_XRAY',
        );
      }
    }
    assert.equal(tf.memory().numTensors, tensors, 'refusals leave no tensors behind');
    const xray = path.join(
      CHEST_XRAY,
      'val',
      'NORMAL',
      fs.readdirSync(path.join(CHEST_XRAY, 'val', 'NORMAL')).sort()[0],
    );
    const r = await p.predict(fs.readFileSync(xray));
    assert.deepEqual(r.warnings, []);
  } finally {
    p.dispose();
  }
});

test('an ood.json from other weights, or a broken one, is ignored with a note', {
  skip: !haveData && 'no shared/data',
}, async () => {
  if (!fs.existsSync(path.join(modelDir, OOD_FILE))) return;
  const other = await makeSeededModel(path.join(tempDir('ood-other'), 'model'), { seed: 2 });
  try {
    fs.copyFileSync(path.join(modelDir, OOD_FILE), path.join(other, OOD_FILE));
    const stale = loadOod(other, other);
    assert.equal(stale.model, null);
    assert.match(String(stale.problem), /other weights/);
    fs.writeFileSync(path.join(other, OOD_FILE), '{"format": "cxr-ood/1"');
    assert.match(String(loadOod(other, other).problem), /not JSON/);
    const p = await Predictor.load(other, { warmUp: false });
    try {
      assert.equal(p.oodGate, null);
      assert.ok(p.notes.some((n) => /not JSON/.test(n)));
      const png = await sharp(new Uint8Array(64 * 64).fill(90), { raw: { width: 64, height: 64, channels: 1 } })
        .png()
        .toBuffer();
      assert.equal((await p.predict(png)).ood, null);
    } finally {
      p.dispose();
    }
  } finally {
    fs.rmSync(path.dirname(other), { recursive: true, force: true });
  }
});
