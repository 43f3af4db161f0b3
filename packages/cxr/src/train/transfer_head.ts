// The transfer head trained on its own: pooled features [n, C] -> dropout -> Dense(1, sigmoid).
// Its two layers carry the same names as in the transfer model, whose 'pneumonia' layer takes
// the trained weights at the end.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { HEAD_LAYER } from '../models/backbones';
import { logit } from '../models/infer';

export function buildHead(channels: number, dropout: number, seed: number): tfl.LayersModel {
  const input = tfl.input({ shape: [channels], name: 'features' });
  const x = tfl.layers.dropout({ rate: dropout, name: 'dropout' }).apply(input) as tfl.SymbolicTensor;
  const out = tfl.layers
    .dense({
      units: 1,
      activation: 'sigmoid',
      name: HEAD_LAYER,
      kernelInitializer: tfl.initializers.glorotUniform({ seed }),
    })
    .apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out, name: 'transfer_head' });
}

/** Logits of the head for n x dim features (in batches, inference mode). */
export function headLogits(head: tfl.LayersModel, features: Float32Array, dim: number, batchSize = 1024): Float32Array {
  const n = features.length / dim;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += batchSize) {
    const m = Math.min(batchSize, n - i);
    const p = tf.tidy(
      () => head.predict(tf.tensor2d(features.subarray(i * dim, (i + m) * dim), [m, dim])) as tf.Tensor,
    );
    const probs = p.dataSync();
    p.dispose();
    for (let j = 0; j < m; j++) out[i + j] = logit(probs[j]);
  }
  return out;
}

/** Copies the head's trained Dense weights into the transfer model. */
export function transplantHead(head: tfl.LayersModel, model: tfl.LayersModel): void {
  model.getLayer(HEAD_LAYER).setWeights(head.getLayer(HEAD_LAYER).getWeights());
}
