import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@cxr/backend-aten';
import { AUGMENT_PRESETS, augmentBatch, drawAugmentations, resolveAugment } from '../src/data/augment';
import { decodeFile } from '../src/data/decode';

import { DATA, needsData } from './shared-data';

const skip = needsData(path.join(DATA, 'chest_xray', 'val', 'PNEUMONIA'));
const S = 48;
let images: Float32Array;

before(async () => {
  if (skip) return;
  await tf.ready();
  const dir = path.join(DATA, 'chest_xray', 'val', 'PNEUMONIA');
  const names = [
    'person1946_bacteria_4874.jpeg',
    'person1947_bacteria_4876.jpeg',
    'person1949_bacteria_4880.jpeg',
    'person1950_bacteria_4881.jpeg',
  ];
  images = new Float32Array(names.length * S * S);
  for (const [i, n] of names.entries()) {
    const { pixels } = await decodeFile(path.join(dir, n), S);
    pixels.forEach((v, k) => (images[i * S * S + k] = v / 255));
  }
});

const batch = () => tf.tensor4d(images, [4, S, S, 1]);

function run(cfg: ReturnType<typeof resolveAugment>, seed: string | number): Float32Array {
  const xs = batch();
  const out = augmentBatch(xs, cfg, seed);
  const data = out.dataSync() as Float32Array;
  assert.deepEqual(out.shape, [4, S, S, 1]);
  xs.dispose();
  out.dispose();
  return data;
}

test('deterministic for a seed, different for another', { skip }, () => {
  const cfg = resolveAugment('strong');
  assert.deepEqual(run(cfg, 'a'), run(cfg, 'a'));
  assert.notDeepEqual(run(cfg, 'a'), run(cfg, 'b'));
});

test('changes pixels, keeps shape and the [0, 1] range, leaks no tensor', { skip }, () => {
  const before = tf.memory().numTensors;
  for (const preset of ['light', 'strong', 'madz2000'] as const) {
    const out = run(resolveAugment(preset), 1);
    let maxDiff = 0;
    let lo = Infinity;
    let hi = -Infinity;
    out.forEach((v, i) => {
      maxDiff = Math.max(maxDiff, Math.abs(v - images[i]));
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    });
    assert.ok(maxDiff > 0.05, `${preset} changed the images (max diff ${maxDiff})`);
    assert.ok(lo >= 0 && hi <= 1, `${preset} range [${lo}, ${hi}]`);
  }
  assert.equal(tf.memory().numTensors, before);
});

test('none is the identity, as a new tensor', { skip }, () => {
  const xs = batch();
  const out = augmentBatch(xs, resolveAugment('none'), 1);
  assert.notEqual(out, xs);
  assert.deepEqual(out.dataSync(), xs.dataSync());
  tf.dispose([xs, out]);
});

test('horizontal flip is off by default and only madz2000 turns it on', () => {
  assert.equal(resolveAugment().horizontalFlip, false);
  assert.equal(resolveAugment({ rotationDeg: 3 }).horizontalFlip, false);
  for (const [name, cfg] of Object.entries(AUGMENT_PRESETS))
    assert.equal(cfg.horizontalFlip, name === 'madz2000', name);
  assert.ok(drawAugmentations(64, S, resolveAugment('strong'), 9).every((a) => !a.flip));
  assert.deepEqual(
    { ...AUGMENT_PRESETS.madz2000 },
    { rotationDeg: 30, zoom: 0.2, shift: 0.1, brightness: 0, contrast: 0, horizontalFlip: true, fillMode: 'nearest' },
  );
});

test('a flip alone mirrors exactly the images drawn for it', { skip }, () => {
  const cfg = resolveAugment({ preset: 'none', horizontalFlip: true });
  const flips = drawAugmentations(4, S, cfg, 'g').map((a) => a.flip);
  assert.ok(flips.includes(true) && flips.includes(false), 'this seed draws flipped and unflipped images');
  const out = run(cfg, 'g');
  for (let b = 0; b < 4; b++) {
    for (let y = 0; y < S; y += 7) {
      for (let x = 0; x < S; x += 5) {
        const src = images[b * S * S + y * S + (flips[b] ? S - 1 - x : x)];
        assert.ok(Math.abs(out[b * S * S + y * S + x] - src) < 1e-5, `image ${b} (${x}, ${y})`);
      }
    }
  }
});

test('configs are validated', () => {
  assert.throws(() => resolveAugment('wild'), /invalid augmentation/);
  assert.throws(() => resolveAugment({ rotationDeg: -1 }), /invalid augmentation/);
  assert.throws(() => resolveAugment({ rotate: 5 }), /invalid augmentation/);
  assert.deepEqual(resolveAugment({ preset: 'strong', horizontalFlip: true }), {
    ...AUGMENT_PRESETS.strong,
    horizontalFlip: true,
  });
});
