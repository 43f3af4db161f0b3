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
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CholeskyDecomposition, Matrix } from 'ml-matrix';
import { z } from 'zod';

export const OOD_FILE = 'ood.json';
export const OOD_FORMAT = 'cxr-ood/1';

export const OodModel = z.object({
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
}).refine((m) => m.mean.length === m.dim && m.precision.length === m.dim * m.dim, { message: 'mean/precision sizes do not match dim' });
export type OodModel = z.infer<typeof OodModel>;

export interface GaussianFit {
  mean: Float64Array;
  precision: Float64Array;
  shrinkage: number;
}

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

/** Mahalanobis distance of one feature vector to the fitted Gaussian. */
export function mahalanobis(model: Pick<OodModel, 'mean' | 'precision' | 'dim'> | GaussianFit, h: ArrayLike<number>): number {
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
    n: scores.length, p50: percentile(scores, 50), p95: percentile(scores, 95), p99: percentile(scores, 99),
    max: percentile(scores, 100),
  };
}

/** Digest of the files that determine a member's features. */
export function weightsDigest(memberDir: string): string {
  const h = crypto.createHash('sha256');
  for (const f of ['model.json', 'weights.bin']) h.update(fs.readFileSync(path.join(memberDir, f)));
  return h.digest('hex');
}

export function saveOod(modelDir: string, model: OodModel): void {
  const file = path.join(modelDir, OOD_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(model) + '\n');
  fs.renameSync(tmp, file);
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

// ---------------------------------------------------------------------------------------------
// Simple image checks.

export interface ImageFacts {
  /** The model input: size × size grayscale. */
  pixels: Uint8Array;
  size: number;
  /** Fraction of pixels with saturated colour in the original (0 for grayscale sources). */
  colourFraction?: number;
  /** From a DICOM header, upper-case. */
  modality?: string;
  viewPosition?: string;
  bodyPart?: string;
}

export interface ImageCheck {
  code: 'BLANK' | 'NOISE' | 'INVERTED' | 'COLOUR' | 'LATERAL' | 'BODY_PART' | 'MODALITY';
  message: string;
}

// Thresholds from the training split (64 px): the contrast (mediastinum − lung fields) / std
// was ≥ 0.28 for 99% of images and ≤ −0.31 for 99% of their negatives.
const INVERTED_BELOW = -0.1;
// Mean neighbour difference / std: radiographs are smooth (at most 0.23 at 64 px, less at larger
// sizes), white noise is about 1.15, grass or gravel photos 0.6-0.9.
const ROUGHNESS_ABOVE = 0.5;
const BLANK_STD_BELOW = 6;
const COLOUR_FRACTION_ABOVE = 0.05;
const LATERAL_VIEWS = new Set(['LL', 'RL', 'LAT', 'LATERAL', 'RLD', 'LLD', 'XTABLE']);
const XRAY_MODALITIES = new Set(['CR', 'DX', 'DR', 'RG', 'RF', 'PX']);

export function imageChecks(f: ImageFacts): ImageCheck[] {
  const out: ImageCheck[] = [];
  const { pixels, size } = f;
  let sum = 0;
  let sq = 0;
  for (const v of pixels) {
    sum += v;
    sq += v * v;
  }
  const mean = sum / pixels.length;
  const std = Math.sqrt(Math.max(0, sq / pixels.length - mean * mean));
  if (std < BLANK_STD_BELOW) {
    out.push({ code: 'BLANK', message: `image is blank or nearly uniform (contrast ${std.toFixed(1)} of 255)` });
  } else {
    const region = (x0: number, x1: number, y0: number, y1: number) => {
      let s = 0;
      let n = 0;
      for (let y = Math.floor(y0 * size); y < Math.ceil(y1 * size); y++) {
        for (let x = Math.floor(x0 * size); x < Math.ceil(x1 * size); x++) {
          s += pixels[y * size + x];
          n++;
        }
      }
      return s / Math.max(1, n);
    };
    let diff = 0;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const v = pixels[y * size + x];
        if (x + 1 < size) diff += Math.abs(v - pixels[y * size + x + 1]);
        if (y + 1 < size) diff += Math.abs(v - pixels[(y + 1) * size + x]);
      }
    }
    const roughness = diff / (2 * size * (size - 1)) / (std + 1);
    if (roughness > ROUGHNESS_ABOVE) {
      out.push({ code: 'NOISE', message: `image is mostly noise or fine texture (roughness ${roughness.toFixed(2)}), unlike a radiograph` });
    }
    const lungs = (region(0.18, 0.38, 0.25, 0.65) + region(0.62, 0.82, 0.25, 0.65)) / 2;
    const mediastinum = region(0.44, 0.56, 0.2, 0.8);
    const contrast = (mediastinum - lungs) / (std + 1);
    if (contrast < INVERTED_BELOW) {
      out.push({ code: 'INVERTED', message: `looks inverted: the lung fields are brighter than the mediastinum (contrast ${contrast.toFixed(2)})` });
    }
  }
  if ((f.colourFraction ?? 0) > COLOUR_FRACTION_ABOVE) {
    out.push({ code: 'COLOUR', message: `colour image (${Math.round(f.colourFraction! * 100)}% saturated pixels): X-rays are grayscale` });
  }
  if (f.viewPosition && LATERAL_VIEWS.has(f.viewPosition)) {
    out.push({ code: 'LATERAL', message: `DICOM view position ${f.viewPosition}: the model reads frontal (PA/AP) views only` });
  }
  if (f.bodyPart && !/CHEST|THORAX|LUNG/.test(f.bodyPart)) {
    out.push({ code: 'BODY_PART', message: `DICOM body part ${f.bodyPart}: not a chest image` });
  }
  if (f.modality && !XRAY_MODALITIES.has(f.modality)) {
    out.push({ code: 'MODALITY', message: `DICOM modality ${f.modality}: not a radiograph` });
  }
  return out;
}

/** Fraction of pixels whose colour is clearly saturated (HSV saturation > 0.3 and not near black). */
export function saturatedFraction(rgb: Uint8Array, channels: number): number {
  if (channels < 3) return 0;
  const n = Math.floor(rgb.length / channels);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const r = rgb[i * channels];
    const g = rgb[i * channels + 1];
    const b = rgb[i * channels + 2];
    const max = Math.max(r, g, b);
    const min = Math.min(r, g, b);
    if (max > 40 && (max - min) / max > 0.3) count++;
  }
  return n ? count / n : 0;
}
