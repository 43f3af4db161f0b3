// AdaBN (Li et al. 2016, "Revisiting batch normalization for practical domain adaptation"): the
// moving mean and variance of every batch-norm layer re-estimated from a new site's images.
// Each layer's input is computed in inference mode with every earlier batch-norm layer already
// adapted (a layer's input depends on the layers before it), so layers are done in waves, with
// exact pooled statistics, not momentum updates; each wave starts from the tensors the previous
// one left (models/layer_inputs.ts), so the whole adaptation costs about one forward pass.
//
// Plain AdaBN sets the statistics to the site's. That assumes the moving statistics describe
// clean films as the network sees them in inference mode, which is not so for a network trained
// in training mode on heavily augmented batches: the shipped model, adapted on its own (unshifted)
// validation films, loses six points of sensitivity and its calibration (ECE 0.02 -> 0.10). With
// a reference (models/bn_reference.ts: the same statistics measured on the model's validation
// films), adaptation is relative: a channel whose site input is a·x + b of the reference's gets
// the moving statistics that undo a and b, so a site like the reference leaves the model as it was.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { bnLayers, bnWaves, type PooledMoments } from '../models/bn_moments';
import { LayerInputs } from '../models/layer_inputs';
import type { BnStats } from '../models/bn_reference';

export interface AdaBnOptions {
  batchSize?: number;
  /** Most bytes of activations kept between waves (default: models/layer_inputs.ts's; 0 recomputes each wave). */
  keepBytes?: number;
  /** Reference statistics of the model's own validation films, by layer name: relative adaptation. */
  reference?: Map<string, BnStats>;
  /** Called after each wave with the layers done so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface BnUpdate {
  layer: string;
  channels: number;
  /** Values pooled per channel (images × positions). */
  count: number;
}

/**
 * Moving statistics that make a site input with these moments normalise as the reference's input
 * did under the source statistics (mean, variance): per channel, with s the ratio of the site's to
 * the reference's standard deviation (epsilon included, as the layer divides by sqrt(var + eps)),
 * std' = std · s and mean' = site mean + (mean − reference mean) · s.
 */
export function relativeStats(
  source: { mean: ArrayLike<number>; variance: ArrayLike<number> },
  reference: BnStats,
  site: PooledMoments,
  epsilon: number,
): { mean: Float32Array; variance: Float32Array } {
  const c = source.mean.length;
  if (reference.mean.length !== c || site.mean.length !== c)
    throw new Error(`reference statistics for ${reference.mean.length} channels, the layer has ${c}`);
  const siteVar = site.variance();
  const mean = new Float32Array(c);
  const variance = new Float32Array(c);
  for (let k = 0; k < c; k++) {
    const s = Math.sqrt((siteVar[k] + epsilon) / (reference.variance[k] + epsilon));
    mean[k] = site.mean[k] + (source.mean[k] - reference.mean[k]) * s;
    variance[k] = Math.max(0, (source.variance[k] + epsilon) * s * s - epsilon);
  }
  return { mean, variance };
}

/**
 * Sets the moving mean and variance of every batch-norm layer of `model` from the pooled
 * statistics of its input over the n images in `pixels` (size × size gray each): the site's own
 * (plain AdaBN), or relative to `opts.reference` when given (which must cover every layer).
 */
export async function adaBn(
  model: tfl.LayersModel,
  pixels: Uint8Array,
  n: number,
  size: number,
  opts: AdaBnOptions = {},
): Promise<BnUpdate[]> {
  const layers = bnLayers(model);
  if (n < 2) throw new Error(`batch-norm statistics need at least 2 images, got ${n}`);
  const missing = opts.reference && layers.find((l) => !opts.reference?.has(l.name));
  if (missing) throw new Error(`no reference statistics for batch-norm layer '${missing.name}'`);
  const updates: BnUpdate[] = [];
  const inputs = new LayerInputs(model, pixels, n, size, { batchSize: opts.batchSize, keepBytes: opts.keepBytes });
  try {
    for (const wave of bnWaves(layers)) {
      const acc = await inputs.moments(wave);
      wave.forEach((layer, k) => {
        const w = layer.getWeights();
        const [movingMean, movingVariance] = w.slice(-2);
        const stats = opts.reference
          ? relativeStats(
              { mean: movingMean.dataSync(), variance: movingVariance.dataSync() },
              opts.reference.get(layer.name) as BnStats,
              acc[k],
              (layer.getConfig() as { epsilon?: number }).epsilon ?? 1e-3,
            )
          : { mean: Float32Array.from(acc[k].mean), variance: Float32Array.from(acc[k].variance()) };
        const mean = tf.tensor(stats.mean, movingMean.shape);
        const variance = tf.tensor(stats.variance, movingVariance.shape);
        layer.setWeights([...w.slice(0, -2), mean, variance]);
        tf.dispose([mean, variance]);
        updates.push({ layer: layer.name, channels: acc[k].mean.length, count: acc[k].n });
      });
      opts.onProgress?.(updates.length, layers.length);
    }
  } finally {
    inputs.dispose();
  }
  return updates;
}
