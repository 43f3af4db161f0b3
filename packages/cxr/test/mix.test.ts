// mixup and cutmix: the Beta draws have the right moments, a batch's films and labels are blended
// with the same weight and the same partner, cutmix's label weight is the area left uncovered, and
// a seed gives the same batch every time.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../src/engine';
import { drawMix, mixBatch, mixSchema, sampleBeta } from '../src/data/mix';
import { createRng } from '../src/data/random';

test('Beta samples have the mean and variance of the distribution, also below shape 1', () => {
  for (const [a, b] of [
    [0.4, 0.4],
    [2, 5],
  ]) {
    const rand = createRng('beta', a, b);
    const xs = Array.from({ length: 20000 }, () => sampleBeta(a, b, rand));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const variance = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length;
    const m = a / (a + b);
    const v = (a * b) / ((a + b) ** 2 * (a + b + 1));
    assert.ok(Math.abs(mean - m) < 0.01, `Beta(${a},${b}) mean ${mean} vs ${m}`);
    assert.ok(Math.abs(variance - v) < 0.01, `Beta(${a},${b}) variance ${variance} vs ${v}`);
    assert.ok(xs.every((x) => x >= 0 && x <= 1));
  }
});

function batch(n: number, size: number) {
  const x = tf.tensor4d(
    Float32Array.from({ length: n * size * size }, (_, i) => (i % 7) / 7 + Math.floor(i / (size * size))),
    [n, size, size, 1],
  );
  const y = tf.tensor2d(
    Array.from({ length: n }, (_, i) => i % 2),
    [n, 1],
  );
  return { x, y };
}

test('mixup blends each film and its label with its partner by the same lambda', async () => {
  await initEngine();
  const cfg = mixSchema.parse({ method: 'mixup', alpha: 0.4 });
  const { x, y } = batch(6, 4);
  const draw = drawMix(6, 4, cfg, 'seed:0:3')!;
  assert.ok(draw.lambda > 0 && draw.lambda < 1);
  assert.deepEqual([...draw.partner].sort(), [0, 1, 2, 3, 4, 5]);
  const out = mixBatch(x, y, cfg, 'seed:0:3');
  const xv = x.arraySync();
  const yv = y.arraySync();
  const ox = out.x.arraySync();
  const oy = out.y.arraySync();
  for (let i = 0; i < 6; i++) {
    const j = draw.partner[i];
    const want = draw.lambda * yv[i][0] + (1 - draw.lambda) * yv[j][0];
    assert.ok(Math.abs(oy[i][0] - want) < 1e-6, `label ${i}`);
    const px = draw.lambda * xv[i][1][2][0] + (1 - draw.lambda) * xv[j][1][2][0];
    assert.ok(Math.abs(ox[i][1][2][0] - px) < 1e-5, `pixel of film ${i}`);
  }
  // A permutation: the batch's label mass is kept.
  const sum = (a: number[][]) => a.reduce((s, r) => s + r[0], 0);
  assert.ok(Math.abs(sum(oy) - sum(yv)) < 1e-5);
  // The same seed, the same batch; another seed, another one.
  assert.deepEqual(mixBatch(x, y, cfg, 'seed:0:3').x.arraySync(), ox);
  assert.notDeepEqual(drawMix(6, 4, cfg, 'seed:0:4'), draw);
});

test("cutmix pastes the partner's box and weighs labels by the area left", async () => {
  await initEngine();
  const cfg = mixSchema.parse({ method: 'cutmix', alpha: 1 });
  const size = 8;
  // A seed whose box is not empty (lambda < 1).
  let seed = 0;
  while ((drawMix(4, size, cfg, seed)?.lambda ?? 1) >= 1) seed++;
  const draw = drawMix(4, size, cfg, seed)!;
  const [top, left, h, w] = draw.box!;
  assert.ok(Math.abs(draw.lambda - (1 - (h * w) / (size * size))) < 1e-12);
  const { x, y } = batch(4, size);
  const out = mixBatch(x, y, cfg, seed);
  const xv = x.arraySync();
  const ox = out.x.arraySync();
  const oy = out.y.arraySync();
  const yv = y.arraySync();
  for (let i = 0; i < 4; i++) {
    const j = draw.partner[i];
    for (let r = 0; r < size; r++)
      for (let c = 0; c < size; c++) {
        const inBox = r >= top && r < top + h && c >= left && c < left + w;
        assert.equal(ox[i][r][c][0], (inBox ? xv[j] : xv[i])[r][c][0], `film ${i} pixel ${r},${c}`);
      }
    assert.ok(Math.abs(oy[i][0] - (draw.lambda * yv[i][0] + (1 - draw.lambda) * yv[j][0])) < 1e-6);
  }
});

test('probability 0 leaves every batch whole; bad settings are refused', async () => {
  await initEngine();
  const cfg = mixSchema.parse({ method: 'mixup', alpha: 0.2, probability: 0 });
  assert.equal(drawMix(8, 4, cfg, 1), null);
  const { x, y } = batch(3, 4);
  assert.deepEqual(mixBatch(x, y, cfg, 1).x.arraySync(), x.arraySync());
  assert.throws(() => mixSchema.parse({ method: 'blend', alpha: 0.2 }));
  assert.throws(() => mixSchema.parse({ method: 'mixup', alpha: 0 }));
});
