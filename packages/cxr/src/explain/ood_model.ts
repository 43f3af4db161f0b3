// The OOD gate's fitted parameters (ood.json) and its score. No Node imports: the web page
// bundles this module to run the same gate in the browser as the server (explain/ood.ts fits
// and stores it; see there for the method).
import { z } from 'zod';

export const OOD_FORMAT = 'cxr-ood/1';

export const OodModel = z
  .object({
    format: z.literal(OOD_FORMAT),
    /** Layer whose output the features are (the input of the final dense layer). */
    featureLayer: z.string(),
    /** Which ensemble member's features (cxr.json members order; 0 for a single model). */
    member: z.number().int().nonnegative(),
    dim: z.number().int().positive(),
    mean: z.array(z.number()),
    /** Inverse of the shrunk covariance, row-major dim × dim. */
    precision: z.array(z.number()),
    shrinkage: z.number().min(0).max(1),
    /** Score above which an image is out of distribution. */
    threshold: z.number().positive(),
    percentile: z.number().gt(0).lt(100),
    /** sha256 of the member's model.json + weights.bin: an ood.json left over from another training run is ignored. */
    weightsSha256: z.string(),
    scores: z.object({
      train: z.record(z.string(), z.number()),
      validation: z.record(z.string(), z.number()),
    }),
    fitted: z.record(z.string(), z.unknown()),
  })
  .refine((m) => m.mean.length === m.dim && m.precision.length === m.dim * m.dim, {
    message: 'mean/precision sizes do not match dim',
  });
export type OodModel = z.infer<typeof OodModel>;

export interface GaussianFit {
  mean: Float64Array;
  precision: Float64Array;
  shrinkage: number;
}

/** Mahalanobis distance of one feature vector to the fitted Gaussian. */
export function mahalanobis(
  model: Pick<OodModel, 'mean' | 'precision' | 'dim'> | GaussianFit,
  h: ArrayLike<number>,
): number {
  const d = model.mean.length;
  if (h.length !== d) throw new Error(`OOD score: ${h.length} features, the gate was fitted on ${d}`);
  const diff = new Float64Array(d);
  for (let j = 0; j < d; j++) diff[j] = h[j] - model.mean[j];
  let q = 0;
  for (let i = 0; i < d; i++) {
    let row = 0;
    const off = i * d;
    for (let j = 0; j < d; j++) row += model.precision[off + j] * diff[j];
    q += diff[i] * row;
  }
  return Math.sqrt(Math.max(0, q));
}
