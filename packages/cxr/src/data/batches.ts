// Mini-batches from a cached image set: xs [B, S, S, 1] float32 in [0, 1], ys [B, 1] (label as
// 0/1, for a sigmoid output) or [B, 2] (one-hot, for softmax). Each batch is built from fresh
// arrays and owned by the consumer, which must dispose it (disposeBatch) once it is used; the
// iterator holds no tensor between batches, so stopping early leaks nothing.
import * as tf from '@tensorflow/tfjs-core';
import { augmentBatch, type AugmentConfig, isIdentity } from './augment';
import type { CachedImageSet } from './cache';
import type { Seed } from './random';

export interface Batch {
  xs: tf.Tensor4D;
  ys: tf.Tensor2D;
  /** Which images of the set are in the batch, in order. */
  indices: Int32Array;
}

export interface BatchOptions {
  batchSize: number;
  /** Indices into the set, in visiting order (e.g. from epochOrder); default 0..n−1. */
  order?: ArrayLike<number>;
  labelFormat?: 'binary' | 'onehot';
  /** Drop a last batch smaller than batchSize (keeps batch-norm statistics stable). */
  dropRemainder?: boolean;
  augment?: AugmentConfig;
  /** Required with augment; combined with epoch and batch number for each batch's draw. */
  seed?: Seed;
  epoch?: number;
}

export function batchCount(n: number, batchSize: number, dropRemainder = false): number {
  return dropRemainder ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

export function* iterateBatches(set: CachedImageSet, opts: BatchOptions): Generator<Batch, void, undefined> {
  const { batchSize, labelFormat = 'binary', dropRemainder = false } = opts;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`batches: batchSize must be a positive integer, got ${batchSize}`);
  const order = opts.order ?? Array.from({ length: set.length }, (_, i) => i);
  for (let i = 0; i < order.length; i++) {
    const k = order[i];
    if (!Number.isInteger(k) || k < 0 || k >= set.length)
      throw new RangeError(`batches: order[${i}] = ${k} is outside 0..${set.length - 1}`);
  }
  const augment = opts.augment && !isIdentity(opts.augment) ? opts.augment : undefined;
  if (augment && opts.seed === undefined) throw new Error('batches: augmentation needs a seed');

  const S = set.size;
  const pixelsPer = S * S;
  const count = batchCount(order.length, batchSize, dropRemainder);
  for (let b = 0; b < count; b++) {
    const start = b * batchSize;
    const indices = Int32Array.from({ length: Math.min(batchSize, order.length - start) }, (_, j) => order[start + j]);
    const n = indices.length;
    const x = new Float32Array(n * pixelsPer);
    const y = new Float32Array(n * (labelFormat === 'onehot' ? 2 : 1));
    indices.forEach((idx, j) => {
      const src = set.pixelsOf(idx);
      const off = j * pixelsPer;
      for (let p = 0; p < pixelsPer; p++) x[off + p] = src[p] / 255;
      const label = set.images[idx].label;
      if (labelFormat === 'onehot') y[j * 2 + label] = 1;
      else y[j] = label;
    });
    const raw = tf.tensor4d(x, [n, S, S, 1], 'float32');
    let xs = raw;
    if (augment) {
      try {
        xs = augmentBatch(raw, augment, `${String(opts.seed)}/epoch${opts.epoch ?? 0}/batch${b}`);
      } finally {
        raw.dispose();
      }
    }
    const ys = tf.tensor2d(y, [n, labelFormat === 'onehot' ? 2 : 1], 'float32');
    yield { xs, ys, indices };
  }
}

export function disposeBatch(batch: Batch): void {
  batch.xs.dispose();
  batch.ys.dispose();
}
