// Pooled backbone features of whole image sets, computed once and kept on disk. With the
// backbone frozen and no augmentation, every epoch would push the same images through the same
// network; caching the pooled features (one C-vector per image) turns head training into
// seconds. The key hashes the pixels themselves, the backbone and its weight files, so a change
// to any of them computes afresh.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { defaultCacheDir, warnUnwritableCache } from '../data/cache_dir';
import { startProgress } from '../data/progress';
import { toInput } from '../models/infer';
import type { ImageSet } from '../data/images';
import { writeFileAtomic } from '../atomic_write';
import { makeDirs } from '../make_dirs';

/** Bump when the features of the same images, backbone and weights would change. */
const FEATURES_VERSION = 1;

export interface FeatureOptions {
  /** Identifies the extractor: backbone name, weight digests, input size. */
  identity: string;
  batchSize?: number;
  cacheDir?: string;
  /** Keep on disk (default true). */
  persist?: boolean;
  progress?: boolean;
  label?: string;
  /** Receives the one line that says the cache folder cannot be written (default console.warn). */
  warnUnwritable?: (line: string) => void;
}

export interface Features {
  /** n x dim, image after image. */
  data: Float32Array;
  dim: number;
  /** True when read from the disk cache. */
  cached: boolean;
  seconds: number;
}

export function featureKey(set: ImageSet, identity: string): string {
  return crypto
    .createHash('sha256')
    .update(`cxr-features/${FEATURES_VERSION}\n${identity}\n${set.size}\n`)
    .update(set.pixels)
    .digest('hex');
}

/** Gray images [n,S,S,1] -> features [n, dim], inference mode. */
export type Extractor = (x: tf.Tensor4D) => tf.Tensor;

/** Runs `extract` over a whole set, or reads its result from the disk cache. */
export async function extractFeatures(
  extract: Extractor,
  dim: number,
  set: ImageSet,
  opts: FeatureOptions,
): Promise<Features> {
  const t0 = Date.now();
  const n = set.labels.length;
  const root = opts.cacheDir ?? defaultCacheDir();
  const dir = path.join(root, 'features');
  const file = path.join(dir, `${featureKey(set, opts.identity)}.f32`);
  if (opts.persist !== false && fs.existsSync(file) && fs.statSync(file).size === n * dim * 4) {
    const buf = fs.readFileSync(file);
    return {
      data: new Float32Array(buf.buffer, buf.byteOffset, n * dim).slice(),
      dim,
      cached: true,
      seconds: (Date.now() - t0) / 1000,
    };
  }
  const bs = opts.batchSize ?? 32;
  const per = set.size * set.size;
  const data = new Float32Array(n * dim);
  const bar = startProgress(opts.label ?? 'features', n, opts.progress);
  for (let i = 0; i < n; i += bs) {
    const m = Math.min(bs, n - i);
    const x = toInput(set.pixels.subarray(i * per, (i + m) * per), m, set.size);
    const y = extract(x);
    data.set((await y.data()) as Float32Array, i * dim);
    tf.dispose([x, y]);
    bar.tick(m);
  }
  bar.stop();
  if (opts.persist !== false) {
    try {
      makeDirs(dir);
      writeFileAtomic(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    } catch (err) {
      // An unwritable cache costs the next run this extraction again, not this run its result.
      if (typeof (err as NodeJS.ErrnoException).code !== 'string') throw err;
      warnUnwritableCache('feature cache', root, err, opts.warnUnwritable ?? console.warn, 'backbone features');
    }
  }
  return { data, dim, cached: false, seconds: (Date.now() - t0) / 1000 };
}

/** Rows `indices` of an n x dim feature matrix as a [k, dim] tensor. */
export function gatherRows(features: Float32Array, dim: number, indices: readonly number[]): tf.Tensor2D {
  const out = new Float32Array(indices.length * dim);
  indices.forEach((src, j) => out.set(features.subarray(src * dim, (src + 1) * dim), j * dim));
  return tf.tensor2d(out, [indices.length, dim]);
}
