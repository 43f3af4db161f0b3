// mixup and cutmix (recipe field `mix`): per batch, each film is blended with another film of the
// same batch (mixup: the whole image, weight lambda; cutmix: a rectangle of the other film pasted
// in, lambda = the share of the film that stays its own), and the labels are blended with the same
// weight, so the loss sees soft targets (train/loss.ts takes labels in [0, 1]). Both discourage
// the over-confident, sharply saturated scores that leave a flat Youden plateau on validation.
// The draws (lambda, partner, box) come from the seed in JS, so a seed gives the same batches
// whatever the engine, and a resumed run mixes as an uninterrupted one would.
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { createRng, type Rng, type Seed } from './random';

export const mixSchema = z.object({
  method: z.enum(['mixup', 'cutmix']),
  /** lambda ~ Beta(alpha, alpha): small alpha keeps most films nearly whole. */
  alpha: z.number().positive().max(10),
  /** Share of batches that are mixed (the others train on whole films). */
  probability: z.number().min(0).max(1).default(1),
});
export type MixConfig = z.infer<typeof mixSchema>;

function normal(rand: Rng): number {
  // Box–Muller; 1 - rand() keeps the logarithm's argument in (0, 1].
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** Gamma(shape, 1) by Marsaglia and Tsang (2000), boosted by U^(1/shape) below shape 1. */
export function sampleGamma(shape: number, rand: Rng): number {
  if (shape < 1) return sampleGamma(shape + 1, rand) * (1 - rand()) ** (1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const z = normal(rand);
    const v = (1 + c * z) ** 3;
    if (v <= 0) continue;
    const u = 1 - rand();
    if (Math.log(u) < 0.5 * z * z + d - d * v + d * Math.log(v)) return d * v;
  }
}

export function sampleBeta(a: number, b: number, rand: Rng): number {
  const x = sampleGamma(a, rand);
  const y = sampleGamma(b, rand);
  return x + y > 0 ? x / (x + y) : 0.5;
}

export interface MixDraw {
  /** The weight of each film's own label (for cutmix, the share of its area left uncovered). */
  lambda: number;
  /** partner[i]: the film blended into film i. */
  partner: number[];
  /** cutmix: the pasted rectangle [top, left, height, width] in pixels. */
  box?: [number, number, number, number];
}

/** The batch's random draw, or null when this batch is not mixed. */
export function drawMix(n: number, size: number, cfg: MixConfig, seed: Seed): MixDraw | null {
  const rand = createRng(seed, 'mix');
  if (n < 2 || rand() >= cfg.probability) return null;
  const lambda = sampleBeta(cfg.alpha, cfg.alpha, rand);
  // A random permutation: every film gets one partner, and is one film's partner.
  const partner = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [partner[i], partner[j]] = [partner[j], partner[i]];
  }
  if (cfg.method === 'mixup') return { lambda, partner };
  // A box of area (1 - lambda) of the film, centred anywhere, clipped to the film.
  const side = Math.sqrt(1 - lambda) * size;
  const cy = rand() * size;
  const cx = rand() * size;
  const top = Math.max(0, Math.round(cy - side / 2));
  const left = Math.max(0, Math.round(cx - side / 2));
  const height = Math.min(size, Math.round(cy + side / 2)) - top;
  const width = Math.min(size, Math.round(cx + side / 2)) - left;
  // The labels follow the area actually pasted, after clipping and rounding.
  return { lambda: 1 - (height * width) / (size * size), partner, box: [top, left, height, width] };
}

/** Mixes a batch of films x [n, h, w, c] and its labels y [n, 1]; returns new tensors. */
export function mixBatch(
  x: tf.Tensor4D,
  y: tf.Tensor2D,
  cfg: MixConfig,
  seed: Seed,
): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const [n, h, w] = x.shape;
  if (h !== w) throw new Error(`mix: square films expected, got ${h}x${w}`);
  const draw = drawMix(n, h, cfg, seed);
  if (!draw) return { x: tf.clone(x), y: tf.clone(y) };
  return tf.tidy(() => {
    const idx = tf.tensor1d(draw.partner, 'int32');
    const xo = tf.gather(x, idx);
    const yo = tf.gather(y, idx);
    const ym = tf.add(tf.mul(y, draw.lambda), tf.mul(yo, 1 - draw.lambda)) as tf.Tensor2D;
    if (!draw.box) {
      return { x: tf.add(tf.mul(x, draw.lambda), tf.mul(xo, 1 - draw.lambda)) as tf.Tensor4D, y: ym };
    }
    const [top, left, bh, bw] = draw.box;
    const mask = new Float32Array(h * w);
    for (let r = top; r < top + bh; r++) mask.fill(1, r * w + left, r * w + left + bw);
    const m = tf.tensor4d(mask, [1, h, w, 1]);
    return { x: tf.add(tf.mul(x, tf.sub(1, m)), tf.mul(xo, m)) as tf.Tensor4D, y: ym };
  });
}
