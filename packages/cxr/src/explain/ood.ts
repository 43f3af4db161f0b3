// The "is this a frontal chest X-ray at all?" gate. The classifier answers NORMAL/PNEUMONIA for
// anything it is given, so a photo or a scanned letter must be caught before its answer is shown.
//
// Two kinds of evidence:
//  - statistical: the penultimate features of the image, scored by their Mahalanobis distance to
//    a Gaussian fitted on the training split's features (mean + Ledoit-Wolf shrinkage covariance,
//    which stays invertible with fewer images than feature dimensions). The threshold is a high
//    percentile of the validation split's scores, so about 1% of real X-rays are flagged by design.
//    Stored as ood.json in the model folder.
//  - simple image checks that need no fitting: blank images, noise, inverted grayscale (lungs
//    brighter than the mediastinum), saturated colour, and DICOM headers that say lateral/other
//    body part or a modality that is not radiography.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CholeskyDecomposition, Matrix } from 'ml-matrix';
import { z } from 'zod';
import { type GaussianFit, OodModel } from './ood_model';
import { writeFileAtomic } from '../atomic_write';

export const OOD_FILE = 'ood.json';
// The gate's parameters, score and image checks live in bundle-safe modules (the page uses them).
export { type GaussianFit, mahalanobis, OOD_FORMAT, OodModel, oodDecision, oodScore } from './ood_model';
export { weightsDigest } from '../models/io';
import { weightsDigest } from '../models/io';
export { type ImageCheck, imageChecks, type ImageFacts, saturatedFraction } from './image_checks';

/**
 * Mean and Ledoit-Wolf shrunk precision of n feature vectors (rows of a row-major n × d array).
 * Shrinkage intensity from Ledoit & Wolf (2004), "A well-conditioned estimator for
 * large-dimensional covariance matrices", towards (trace/d)·I.
 */
export function fitGaussian(x: Float32Array | Float64Array, n: number, d: number): GaussianFit {
  if (n < 2) throw new Error(`OOD fit needs at least 2 feature vectors, got ${n}`);
  if (x.length !== n * d) throw new Error(`OOD fit: ${x.length} values for ${n} × ${d}`);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j] / n;
  const centred = new Matrix(n, d);
  let sumNorm4 = 0;
  for (let i = 0; i < n; i++) {
    let norm2 = 0;
    for (let j = 0; j < d; j++) {
      const v = x[i * d + j] - mean[j];
      centred.set(i, j, v);
      norm2 += v * v;
    }
    sumNorm4 += norm2 * norm2;
  }
  const s = centred.transpose().mmul(centred).div(n);
  let trace = 0;
  for (let j = 0; j < d; j++) trace += s.get(j, j);
  const mu = trace / d;
  let frob2 = 0;
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) frob2 += s.get(i, j) ** 2;
  // ||S - mu I||_F^2 = ||S||_F^2 - d mu^2
  const delta2 = (frob2 - d * mu * mu) / d;
  // (1/n^2) sum_k ||x_k x_k' - S||_F^2 = (sum_k ||x_k||^4 - n ||S||_F^2) / n^2
  const beta2Bar = Math.max(0, (sumNorm4 - n * frob2) / (n * n)) / d;
  const beta2 = Math.min(beta2Bar, delta2);
  const shrinkage = delta2 > 0 ? beta2 / delta2 : 1;
  const cov = s.mul(1 - shrinkage);
  // A floor on the diagonal keeps constant features (dead ReLUs) from making it singular.
  const floor = Math.max(mu, 1e-12) * 1e-6;
  for (let j = 0; j < d; j++) cov.set(j, j, cov.get(j, j) + shrinkage * mu + floor);
  const chol = new CholeskyDecomposition(cov);
  if (!chol.isPositiveDefinite()) throw new Error('OOD fit: covariance is not positive definite');
  const precision = chol.solve(Matrix.eye(d));
  return { mean, precision: Float64Array.from(precision.to1DArray()), shrinkage };
}

/** The p-th percentile (0..100) by linear interpolation between order statistics. */
export function percentile(values: ArrayLike<number>, p: number): number {
  const a = Float64Array.from(values).sort();
  if (a.length === 0) return NaN;
  const pos = (p / 100) * (a.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(a.length - 1, lo + 1);
  return a[lo] + (a[hi] - a[lo]) * (pos - lo);
}

export function scoreSummary(scores: ArrayLike<number>): Record<string, number> {
  return {
    n: scores.length,
    p50: percentile(scores, 50),
    p95: percentile(scores, 95),
    p99: percentile(scores, 99),
    max: percentile(scores, 100),
  };
}

export function saveOod(modelDir: string, model: OodModel): void {
  const file = path.join(modelDir, OOD_FILE);
  writeFileAtomic(file, JSON.stringify(model) + '\n');
}

export type OodLoad = { model: OodModel; problem?: undefined } | { model: null; problem: string | null };

/** ood.json of a model folder; a missing file is no problem, an unusable one is reported. */
export function loadOod(modelDir: string, memberDir: string): OodLoad {
  const file = path.join(modelDir, OOD_FILE);
  if (!fs.existsSync(file)) return { model: null, problem: null };
  let parsed: ReturnType<typeof OodModel.safeParse>;
  try {
    parsed = OodModel.safeParse(JSON.parse(fs.readFileSync(file, 'utf8')));
  } catch (e) {
    return { model: null, problem: `${file}: not JSON (${(e as Error).message})` };
  }
  if (!parsed.success) return { model: null, problem: `${file}: invalid: ${z.prettifyError(parsed.error)}` };
  if (parsed.data.weightsSha256 !== weightsDigest(memberDir)) {
    return { model: null, problem: `${file} was fitted for other weights (refit with 'cxr ood fit')` };
  }
  return { model: parsed.data };
}
