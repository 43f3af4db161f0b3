// Nearest neighbours in pixel space, on the engine: |q - r|² = |q|² + |r|² - 2 q·r, with the
// mean image subtracted first so the float32 dot products stay well conditioned.
import * as tf from '@tensorflow/tfjs-core';

export interface Nearest {
  /** Per query: index of the nearest allowed reference, or -1 if none is allowed. */
  index: Int32Array;
  /** Per query: RMS difference in grey levels (0-255) to that reference. */
  distance: Float32Array;
}

/**
 * queries: nq images, refs: nr images, each `dim` bytes. `skip(q, r)` excludes pairs (the image
 * itself, or images of the same patient).
 */
export function nearest(
  queries: Uint8Array,
  nq: number,
  refs: Uint8Array,
  nr: number,
  dim: number,
  skip?: (q: number, r: number) => boolean,
  chunk = 1024,
): Nearest {
  const index = new Int32Array(nq).fill(-1);
  const best = new Float64Array(nq).fill(Infinity);
  if (nq === 0 || nr === 0) return { index, distance: new Float32Array(nq).fill(NaN) };
  const mean = tf.tidy(() => tf.mean(tf.cast(tf.tensor2d(refs, [nr, dim], 'int32'), 'float32'), 0, true));
  const q = tf.tidy(() => tf.sub(tf.cast(tf.tensor2d(queries, [nq, dim], 'int32'), 'float32'), mean));
  const qq = tf.tidy(() => tf.sum(tf.square(q), 1, true));
  for (let r0 = 0; r0 < nr; r0 += chunk) {
    const m = Math.min(chunk, nr - r0);
    const d2 = tf.tidy(() => {
      const r = tf.sub(
        tf.cast(tf.tensor2d(refs.subarray(r0 * dim, (r0 + m) * dim), [m, dim], 'int32'), 'float32'),
        mean,
      );
      const rr = tf.reshape(tf.sum(tf.square(r), 1), [1, m]);
      return tf.add(tf.sub(qq, tf.mul(2, tf.matMul(q, r, false, true))), rr);
    });
    const v = d2.dataSync();
    d2.dispose();
    for (let i = 0; i < nq; i++) {
      for (let j = 0; j < m; j++) {
        const d = v[i * m + j];
        if (d < best[i] && !skip?.(i, r0 + j)) {
          best[i] = d;
          index[i] = r0 + j;
        }
      }
    }
  }
  tf.dispose([mean, q, qq]);
  return {
    index,
    distance: Float32Array.from(best, (d) => (Number.isFinite(d) ? Math.sqrt(Math.max(0, d) / dim) : NaN)),
  };
}

export interface Spread {
  n: number;
  min: number;
  p05: number;
  median: number;
  mean: number;
}

export function quantile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const x = (sorted.length - 1) * p;
  const lo = Math.floor(x),
    hi = Math.ceil(x);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo);
}

export function spread(values: ArrayLike<number>): Spread {
  const s = Array.from(values)
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  return {
    n: s.length,
    min: s.length ? s[0] : NaN,
    p05: quantile(s, 0.05),
    median: quantile(s, 0.5),
    mean: s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN,
  };
}
