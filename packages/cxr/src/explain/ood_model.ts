// The OOD gate's fitted parameters (ood.json) and its score. No Node imports: the web page
// bundles this module to run the same gate in the browser as the server (explain/ood.ts fits
// and stores it; see there for the method).
import { z } from 'zod';

/** Written now; 'cxr-ood/1' files (one mean, no class means) are still read. */
export const OOD_FORMAT = 'cxr-ood/2';
export const OOD_FORMATS = ['cxr-ood/1', OOD_FORMAT] as const;

export const OodModel = z
  .object({
    format: z.enum(OOD_FORMATS),
    /** Layer whose output the features are (the input of the final dense layer). */
    featureLayer: z.string(),
    /** Which ensemble member's features (cxr.json members order; 0 for a single model). */
    member: z.number().int().nonnegative(),
    dim: z.number().int().positive(),
    mean: z.array(z.number()),
    /**
     * One mean per class (classNames order), sharing `precision` (fitted on within-class deviations).
     * The score is the distance to the nearest class mean, so neither class sits nearer the gate's
     * centre for being the larger one in training. Absent (cxr-ood/1): the distance to `mean`.
     */
    classMeans: z.array(z.array(z.number())).optional(),
    /** Inverse of the shrunk covariance, row-major dim × dim. */
    precision: z.array(z.number()),
    shrinkage: z.number().min(0).max(1),
    /** Score above which an image is out of distribution. */
    threshold: z.number().positive(),
    percentile: z.number().gt(0).lt(100),
    /** sha256 of the member's model.json + weights.bin: an ood.json left over from another training run is ignored. */
    weightsSha256: z.string(),
    /** Score summaries (n, p50, p95, p99, max) of the films the gate was fitted and thresholded on. */
    scores: z
      .object({
        train: z.record(z.string(), z.number()),
        validation: z.record(z.string(), z.number()),
      })
      .catchall(z.record(z.string(), z.number())),
    fitted: z.record(z.string(), z.unknown()),
  })
  .refine(
    (m) =>
      m.mean.length === m.dim &&
      m.precision.length === m.dim * m.dim &&
      (m.classMeans ?? []).every((c) => c.length === m.dim),
    { message: 'mean/classMeans/precision sizes do not match dim' },
  );
export type OodModel = z.infer<typeof OodModel>;

export interface GaussianFit {
  mean: Float64Array;
  precision: Float64Array;
  shrinkage: number;
}

/** Mahalanobis distance of one feature vector to the fitted Gaussian. */
export function mahalanobis(
  model: { mean: ArrayLike<number>; precision: ArrayLike<number> },
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

/** The gate's score of one feature vector: the distance to the nearest class mean, else to the mean. */
export function oodScore(
  model: { mean: ArrayLike<number>; precision: ArrayLike<number>; classMeans?: ArrayLike<number>[] },
  h: ArrayLike<number>,
): number {
  if (!model.classMeans?.length) return mahalanobis(model, h);
  let best = Infinity;
  for (const mean of model.classMeans) best = Math.min(best, mahalanobis({ mean, precision: model.precision }, h));
  return best;
}

/** The gate's verdict on one feature vector; the server and the web page both decide through this. */
export function oodDecision(
  model: Pick<OodModel, 'mean' | 'precision' | 'classMeans' | 'threshold'>,
  h: ArrayLike<number>,
): { score: number; threshold: number; outOfDistribution: boolean } {
  const score = oodScore(model, h);
  return { score, threshold: model.threshold, outOfDistribution: score > model.threshold };
}
