// The OOD gate of an adapted model. Its covariance and threshold describe how chest films vary
// and were fitted on the training split. After plain AdaBN only its mean moves: batch norm now
// centres the site's films, so the mean becomes the mean feature vector of the site's films under
// the adapted model. After relative AdaBN the gate stays as it was: films like the validation
// films keep their features. Re-fitting the covariance from one site's films (often fewer than
// feature dimensions, one class mix) would make the gate narrower, not better.
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { features, splitModel } from '../explain/model_parts';
import { mahalanobis, type OodModel, oodScore } from '../explain/ood';
import { toInput } from '../models/infer';

export interface RecentredGate {
  gate: OodModel;
  /** Mahalanobis distance between the old and the new mean (how far the site's features moved). */
  meanShift: number;
  /** Site films above the threshold under the recentred gate. */
  flagged: number;
}

/**
 * Mean feature vector of the films, then the gate with that mean (or, with `recentre: false`, the
 * same gate), for the new member's weights (`weightsSha256`), and the films it flags.
 */
export async function recentreGate(
  old: OodModel,
  member: LayersModel,
  pixels: Uint8Array,
  n: number,
  size: number,
  weightsSha256: string,
  opts: { batchSize?: number; recentre?: boolean } = {},
): Promise<RecentredGate> {
  const batchSize = opts.batchSize ?? 32;
  const parts = splitModel(member);
  if (parts.featureDim !== old.dim) throw new Error(`ood.json has ${old.dim} features, the model ${parts.featureDim}`);
  const d = parts.featureDim;
  const all = new Float32Array(n * d);
  const per = size * size;
  for (let i = 0; i < n; i += batchSize) {
    const m = Math.min(batchSize, n - i);
    const x = toInput(pixels.subarray(i * per, (i + m) * per), m, size);
    const h = features(parts, x);
    all.set(h.dataSync() as Float32Array, i * d);
    tf.dispose([x, h]);
    await new Promise((r) => setImmediate(r));
  }
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += all[i * d + j] / n;
  // Class means (cxr-ood/2) move with the overall mean: the same shift, their spacing kept.
  const shift = Array.from(mean, (m, j) => m - old.mean[j]);
  const gate: OodModel =
    opts.recentre === false
      ? { ...old, weightsSha256 }
      : {
          ...old,
          mean: Array.from(mean),
          classMeans: old.classMeans?.map((c) => c.map((v, j) => v + shift[j])),
          weightsSha256,
          fitted: { ...old.fitted, meanRefittedOn: { siteFilms: n, at: new Date().toISOString() } },
        };
  let flagged = 0;
  for (let i = 0; i < n; i++) if (oodScore(gate, all.subarray(i * d, (i + 1) * d)) > gate.threshold) flagged++;
  return { gate, meanShift: mahalanobis(old, mean), flagged };
}
