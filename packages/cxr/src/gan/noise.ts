// Generator inputs from cxr's seeded streams rather than tf.random*, so the same seed gives the
// same noise on every backend and the sample grid's fixed noise survives a resume.
import * as tf from '@tensorflow/tfjs-core';
import { createRng, type Seed } from '../data/random';

/** n·dim standard normal draws (Box–Muller). */
export function gaussian(n: number, dim: number, seed: Seed, ...stream: Array<string | number>): Float32Array {
  const rand = createRng(seed, 'gan-noise', ...stream);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < out.length; i += 2) {
    const u = 1 - rand(); // (0, 1]: log stays finite
    const r = Math.sqrt(-2 * Math.log(u));
    const a = 2 * Math.PI * rand();
    out[i] = r * Math.cos(a);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(a);
  }
  return out;
}

export function noiseTensor(n: number, dim: number, seed: Seed, ...stream: Array<string | number>): tf.Tensor2D {
  return tf.tensor2d(gaussian(n, dim, seed, ...stream), [n, dim]);
}

export function oneHot(labels: ArrayLike<number>): tf.Tensor2D {
  const v = new Float32Array(labels.length * 2);
  for (let i = 0; i < labels.length; i++) v[i * 2 + (labels[i] ? 1 : 0)] = 1;
  return tf.tensor2d(v, [labels.length, 2]);
}

/** uint8 gray images -> [n, s, s, 1] in [-1, 1], the generator's range. */
export function toGanInput(pixels: Uint8Array, n: number, size: number): tf.Tensor4D {
  return tf.tidy(() => tf.sub(tf.div(tf.tensor4d(pixels, [n, size, size, 1], 'int32'), 127.5), 1) as tf.Tensor4D);
}

/** Generator output in [-1, 1] -> uint8 gray, rounded. */
export function toPixels(images: tf.Tensor): Uint8Array {
  const v = tf.tidy(() => tf.clipByValue(tf.round(tf.mul(tf.add(images, 1), 127.5)), 0, 255)).dataSync();
  const out = Uint8Array.from(v);
  return out;
}
