// Model inference shared by training-time validation, `cxr evaluate`, `cxr predict` and the server:
// pixels -> input tensor -> (ensemble members x test-time augmentations) -> mean logit -> calibrated
// probability. One function so that every path computes exactly the same number.
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { TTA_VIEWS, type TtaView } from './tta_views';

export function logit(p: number): number {
  const q = Math.min(1 - 1e-7, Math.max(1e-7, p));
  return Math.log(q / (1 - q));
}

export function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

/** Grayscale uint8 images (size x size each, concatenated) to a [n,size,size,1] float tensor in [0,1]. */
export function toInput(pixels: Uint8Array, n: number, size: number): tf.Tensor4D {
  return tf.tidy(() => tf.div(tf.tensor4d(pixels, [n, size, size, 1], 'int32'), 255) as tf.Tensor4D);
}

/**
 * A deterministic test-time view of a batch (small zooms and shifts; never a flip). An unknown
 * name throws: a misspelt view must not quietly become the identity.
 */
export function ttaView(x: tf.Tensor4D, name: TtaView): tf.Tensor4D {
  if (!(TTA_VIEWS as readonly string[]).includes(name)) {
    throw new RangeError(`unknown test-time view '${String(name)}' (known: ${TTA_VIEWS.join(', ')})`);
  }
  if (name === 'identity') return x.clone();
  // The same gamma as the benchmark's gamma changes at strength 0.25 (data/perturb_catalog.ts).
  if (name === 'gamma-up') return tf.tidy(() => tf.pow(x, 1.25) as tf.Tensor4D);
  if (name === 'gamma-down') return tf.tidy(() => tf.pow(x, 0.8) as tf.Tensor4D);
  const [, h, w] = x.shape;
  return tf.tidy(() => {
    const zoom = name === 'zoom-in' ? 0.92 : name === 'zoom-out' ? 1.08 : 1;
    const dx = name === 'shift-left' ? 0.04 * w : name === 'shift-right' ? -0.04 * w : 0;
    // Projective transform maps output (x, y) to input (a0 x + a1 y + a2, b0 x + b1 y + b2).
    const cx = (w - 1) / 2,
      cy = (h - 1) / 2;
    const m = [zoom, 0, cx - zoom * cx + dx, 0, zoom, cy - zoom * cy, 0, 0];
    const transforms = tf.tile(tf.tensor2d(m, [1, 8]), [x.shape[0], 1]) as tf.Tensor2D;
    return tf.image.transform(x, transforms, 'bilinear', 'nearest') as tf.Tensor4D;
  });
}

/**
 * Mean logit over members and TTA views for a batch; returns one number per image. The views are
 * stacked into one batch per member, so a TTA prediction is one forward pass, not one per view.
 */
export function predictLogits(members: LayersModel[], x: tf.Tensor4D, tta: readonly TtaView[] = []): Float32Array {
  return predictWithFeatures(members, x, tta).logits;
}

/** A member's model with a second output (a hidden layer), sharing its weights. */
export interface FeatureTap {
  member: number;
  model: LayersModel;
}

/**
 * predictLogits, plus the identity view's second output of `tap` taken from the same forward pass
 * (the OOD gate's features), so that a prediction runs the network once. `features` is null
 * when there is no tap or no identity view; the caller disposes it.
 */
export function predictWithFeatures(
  members: LayersModel[],
  x: tf.Tensor4D,
  tta: readonly TtaView[] = [],
  tap?: FeatureTap,
): { logits: Float32Array; features: tf.Tensor2D | null } {
  const views: readonly TtaView[] = tta.length ? tta : ['identity'];
  const n = x.shape[0];
  const at = views.indexOf('identity');
  let features: tf.Tensor2D | null = null;
  const mean = tf.tidy(() => {
    const batch =
      views.length === 1
        ? ttaView(x, views[0])
        : tf.concat(
            views.map((v) => ttaView(x, v)),
            0,
          );
    let acc: tf.Tensor | null = null;
    members.forEach((m, j) => {
      let out: tf.Tensor;
      if (tap && tap.member === j && at >= 0) {
        const [p, h] = tap.model.predict(batch) as tf.Tensor[];
        features = tf.keep(tf.reshape(tf.slice(h, at * n, n), [n, -1]) as tf.Tensor2D);
        out = p;
      } else {
        out = m.predict(batch) as tf.Tensor;
      }
      const p = tf.clipByValue(out, 1e-7, 1 - 1e-7);
      const z = tf.sum(tf.reshape(tf.log(tf.div(p, tf.sub(1, p))), [views.length, n]), 0);
      acc = acc ? tf.add(acc, z) : z;
    });
    return tf.div(acc!, views.length * members.length);
  });
  const logits = Float32Array.from(mean.dataSync() as Float32Array);
  mean.dispose();
  return { logits, features };
}

/** Logits for many images, in batches. */
export async function predictAllLogits(
  members: LayersModel[],
  pixels: Uint8Array,
  n: number,
  size: number,
  opts: { tta?: readonly TtaView[]; batchSize?: number; onBatch?: (done: number) => void } = {},
): Promise<Float32Array> {
  const bs = opts.batchSize ?? 32;
  const out = new Float32Array(n);
  const per = size * size;
  for (let i = 0; i < n; i += bs) {
    const m = Math.min(bs, n - i);
    const x = toInput(pixels.subarray(i * per, (i + m) * per), m, size);
    out.set(predictLogits(members, x, opts.tta), i);
    x.dispose();
    opts.onBatch?.(i + m);
    await new Promise((r) => setImmediate(r));
  }
  return out;
}

/** Calibrated probabilities: sigmoid(logit / temperature + bias), as cxr.json records them. */
export function calibrated(logits: Float32Array, temperature: number, bias = 0): number[] {
  return Array.from(logits, (z) => sigmoid(z / temperature + bias));
}
