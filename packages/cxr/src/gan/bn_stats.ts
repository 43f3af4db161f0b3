// Batch-norm statistics for sampling. The generator samples in inference mode (so an image does
// not depend on the rest of its batch), which uses the layers' moving averages; those start at
// mean 0 / variance 1 and trail the weights, so early in a run (and in --quick runs) they are
// far from the real activation statistics and every sample comes out flat grey. Before
// sampling, the averages are rebuilt from scratch: zeroed, refreshed by several training-mode
// passes on fresh noise, then divided by the weight those passes carry (1 - momentum^k).
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { noiseTensor, oneHot } from './noise';

interface BnLayer {
  momentum: number;
  getWeights(): tf.Tensor[];
  setWeights(w: tf.Tensor[]): void;
}

function bnLayers(m: tfl.LayersModel): BnLayer[] {
  return m.layers.filter((l) => l.getClassName() === 'BatchNormalization') as unknown as BnLayer[];
}

/** gamma, beta, moving mean, moving variance (tfjs-layers' order, with center and scale on). */
function setMoving(layer: BnLayer, f: (t: tf.Tensor) => tf.Tensor): void {
  const [gamma, beta, mean, variance] = layer.getWeights();
  const next = [f(mean), f(variance)];
  layer.setWeights([gamma, beta, ...next]);
  tf.dispose(next);
}

export function recalibrateBatchNorm(g: tfl.LayersModel, zDim: number, seed: number, passes = 12, batch = 64): void {
  const layers = bnLayers(g);
  if (layers.length === 0) return;
  for (const l of layers) setMoving(l, (t) => tf.zerosLike(t));
  for (let k = 0; k < passes; k++) {
    tf.tidy(() => {
      const labels = Array.from({ length: batch }, (_, i) => i % 2);
      g.apply([noiseTensor(batch, zDim, seed, 'bn', k), oneHot(labels)], { training: true });
    });
  }
  for (const l of layers) {
    const weight = 1 - l.momentum ** passes;
    setMoving(l, (t) => tf.div(t, weight));
  }
}
