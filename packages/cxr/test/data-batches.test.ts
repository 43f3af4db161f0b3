import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@cxr/backend-aten';
import { resolveAugment } from '../src/data/augment';
import { batchCount, disposeBatch, iterateBatches } from '../src/data/batches';
import { type CachedImageSet, cacheImages } from '../src/data/cache';
import { scanDataset } from '../src/data/dataset';

import { DATA, needsData } from './shared-data';

const skip = needsData(path.join(DATA, 'chest_xray', 'val'));
const S = 24;
let tmp = '';
let set: CachedImageSet;

before(async () => {
  if (skip) return;
  await tf.ready();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cxr-batches-'));
  set = await cacheImages(await scanDataset(path.join(DATA, 'chest_xray', 'val')), { size: S, cacheDir: tmp });
});
after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

test('batches cover the order with the right shapes, values and labels', { skip }, () => {
  assert.equal(set.length, 16);
  const order = [15, 0, 3, 8, 1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14];
  const before = tf.memory().numTensors;
  const seen: number[] = [];
  const sizes: number[] = [];
  for (const b of iterateBatches(set, { batchSize: 5, order })) {
    const n = b.indices.length;
    sizes.push(n);
    assert.deepEqual(b.xs.shape, [n, S, S, 1]);
    assert.deepEqual(b.ys.shape, [n, 1]);
    assert.equal(b.xs.dtype, 'float32');
    const xs = b.xs.dataSync();
    const ys = b.ys.dataSync();
    b.indices.forEach((idx, j) => {
      const px = set.pixelsOf(idx);
      for (let p = 0; p < S * S; p += 13) assert.ok(Math.abs(xs[j * S * S + p] - px[p] / 255) < 1e-6);
      assert.equal(ys[j], set.images[idx].label);
    });
    seen.push(...b.indices);
    disposeBatch(b);
  }
  assert.deepEqual(seen, order);
  assert.deepEqual(sizes, [5, 5, 5, 1]);
  assert.equal(batchCount(16, 5), 4);
  assert.equal(tf.memory().numTensors, before);
});

test('one-hot labels and dropRemainder', { skip }, () => {
  const batches = [...iterateBatches(set, { batchSize: 5, labelFormat: 'onehot', dropRemainder: true })];
  assert.equal(batches.length, 3);
  const ys = batches[0].ys.arraySync();
  batches[0].indices.forEach((idx, j) => assert.deepEqual(ys[j], set.images[idx].label ? [0, 1] : [1, 0]));
  batches.forEach(disposeBatch);
});

test('augmented batches are seeded by seed, epoch and batch; stopping early leaks nothing', { skip }, () => {
  const augment = resolveAugment('strong');
  const first = (epoch: number) => {
    const it = iterateBatches(set, { batchSize: 4, augment, seed: 11, epoch });
    const b = it.next().value!;
    const data = b.xs.dataSync().slice();
    disposeBatch(b);
    it.return(undefined);
    return data;
  };
  const before = tf.memory().numTensors;
  assert.deepEqual(first(0), first(0));
  assert.notDeepEqual(first(0), first(1));
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => iterateBatches(set, { batchSize: 4, augment }).next(), /needs a seed/);
  assert.throws(() => iterateBatches(set, { batchSize: 4, order: [16] }).next(), /outside/);
});
