// "Does this square look like a frontal chest film at all?", from cheap image statistics that need
// no label and no model: dynamic range, histogram shape, flat areas and hard edges (drawn images),
// the chest layout (a bright mediastinum column between two darker lung fields, left-right symmetry
// of the column profile, more structure across than down), and how much of the variance is coarse.
// A Gaussian of these statistics over training films (clean and mildly changed) is fitted once by
// `cxr ood fit-layout` into film_layout_fitted.ts; an image far from it is refused as LAYOUT.
// No Node imports: the web page bundles this module with image_checks.ts, so the browser and the
// server apply the same check.
import { FILM_LAYOUT_FIT as FITTED } from './film_layout_fitted';
import { resizeMap } from './resize';

/** The fit in use (`cxr ood fit-layout`). */
export const FILM_LAYOUT_FIT: LayoutFit = FITTED;

/** The side the statistics are computed at: squares of another size are resampled to it first. */
export const LAYOUT_SIZE = 160;

export const LAYOUT_STAT_NAMES = [
  'std',
  'range',
  'moving',
  'logFlat',
  'logSteps',
  'logPeak',
  'entropy',
  'coarseShare',
  'contrast',
  'minSide',
  'symmetry',
  'colsOverRows',
  'acrossOverDown',
] as const;
export type LayoutStats = Record<(typeof LAYOUT_STAT_NAMES)[number], number>;

/** The fitted Gaussian: statistics standardised by (x − mean) / scale, then Mahalanobis with `precision`. */
export interface LayoutFit {
  names: readonly string[];
  size: number;
  mean: readonly number[];
  scale: readonly number[];
  precision: readonly number[];
  threshold: number;
}

/** Bilinear resample of a size × size square to `to` × `to` (identity when the sizes match). */
export function resampleSquare(pixels: Uint8Array, size: number, to: number): Uint8Array {
  if (size === to) return pixels;
  // The heat map's bilinear resize (same sampling grid), rounded back to 8 bits.
  const resized = resizeMap(Float32Array.from(pixels), size, size, to, to);
  return Uint8Array.from(resized, (v) => Math.round(v));
}

const variance = (xs: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < xs.length; i++) m += xs[i] / xs.length;
  let v = 0;
  for (let i = 0; i < xs.length; i++) v += (xs[i] - m) ** 2 / xs.length;
  return v;
};

/** The layout statistics of a size × size grayscale square (computed at LAYOUT_SIZE). */
export function layoutStats(square: Uint8Array, size: number): LayoutStats {
  const s = LAYOUT_SIZE;
  const p = resampleSquare(square, size, s);
  const n = p.length;
  const hist = new Float64Array(256);
  let sum = 0;
  let sq = 0;
  for (const v of p) {
    hist[v]++;
    sum += v;
    sq += v * v;
  }
  const mean = sum / n;
  const std = Math.sqrt(Math.max(0, sq / n - mean * mean));
  const quantile = (f: number) => {
    let c = 0;
    for (let v = 0; v < 256; v++) if ((c += hist[v]) >= f * n) return v;
    return 255;
  };
  let peak = 0;
  let entropy = 0;
  for (const h of hist) {
    peak = Math.max(peak, h / n);
    if (h) entropy -= (h / n) * Math.log2(h / n);
  }
  // Central 80%: padding and collimation bands of real films stay out of the edge statistics.
  const a = Math.floor(s * 0.1);
  const b = Math.ceil(s * 0.9);
  let pairs = 0;
  let flat = 0;
  let moving = 0;
  let steps = 0;
  let across = 0;
  let down = 0;
  const rows = new Float64Array(b - a);
  const cols = new Float64Array(b - a);
  for (let y = a; y < b; y++) {
    for (let x = a; x < b; x++) {
      const v = p[y * s + x];
      const dx = Math.abs(v - p[y * s + x + 1]);
      across += dx;
      down += Math.abs(v - p[(y + 1) * s + x]);
      rows[y - a] += v / (b - a);
      cols[x - a] += v / (b - a);
      if (x === b - 1) continue;
      pairs++;
      if (dx === 0) flat++;
      if (dx > 2) moving++;
      if (dx > 40) steps++;
    }
  }
  // Column profile over the lung band (rows 20-80%): mirror symmetry about the midline.
  const profile = new Float64Array(s);
  const r0 = Math.floor(s * 0.2);
  const r1 = Math.ceil(s * 0.8);
  for (let y = r0; y < r1; y++) for (let x = 0; x < s; x++) profile[x] += p[y * s + x] / (r1 - r0);
  let pm = 0;
  for (let x = a; x < b; x++) pm += profile[x] / (b - a);
  let num = 0;
  let den = 0;
  for (let x = a; x < b; x++) {
    num += (profile[x] - pm) * (profile[s - 1 - x] - pm);
    den += (profile[x] - pm) ** 2;
  }
  const region = (x0: number, x1: number, y0: number, y1: number) => {
    let t = 0;
    let k = 0;
    for (let y = Math.floor(y0 * s); y < Math.ceil(y1 * s); y++) {
      for (let x = Math.floor(x0 * s); x < Math.ceil(x1 * s); x++) {
        t += p[y * s + x];
        k++;
      }
    }
    return t / k;
  };
  const left = region(0.18, 0.38, 0.25, 0.65);
  const right = region(0.62, 0.82, 0.25, 0.65);
  const mediastinum = region(0.44, 0.56, 0.2, 0.8);
  // Coarse share: variance of the 16 × 16 block means over the whole variance (clouds and noise are low).
  const blocks = 16;
  const bs = s / blocks;
  const means = new Float64Array(blocks * blocks);
  for (let y = 0; y < s; y++)
    for (let x = 0; x < s; x++) means[Math.floor(y / bs) * blocks + Math.floor(x / bs)] += p[y * s + x];
  for (let i = 0; i < means.length; i++) means[i] /= bs * bs;
  return {
    std,
    range: quantile(0.98) - quantile(0.02),
    moving: moving / pairs,
    logFlat: Math.log(flat / pairs + 1e-3),
    logSteps: Math.log(steps / pairs + 1e-3),
    logPeak: Math.log(peak + 1e-3),
    entropy,
    coarseShare: std > 0 ? variance(means) / (std * std) : 0,
    contrast: (mediastinum - (left + right) / 2) / (std + 1),
    minSide: Math.min(mediastinum - left, mediastinum - right) / (std + 1),
    symmetry: den > 0 ? num / den : 0,
    colsOverRows: Math.log((variance(cols) + 1) / (variance(rows) + 1)),
    acrossOverDown: Math.log((across + 1) / (down + 1)),
  };
}

/** Mahalanobis distance of the statistics to the films' Gaussian. */
export function layoutScore(stats: LayoutStats, fit: LayoutFit = FILM_LAYOUT_FIT): number {
  const d = fit.names.length;
  const z = fit.names.map((name, j) => (stats[name as keyof LayoutStats] - fit.mean[j]) / fit.scale[j]);
  let q = 0;
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) q += z[i] * fit.precision[i * d + j] * z[j];
  return Math.sqrt(Math.max(0, q));
}

/** The layout check's verdict on one square: refused when its statistics are further than the fitted threshold. */
export function layoutDecision(
  square: Uint8Array,
  size: number,
  fit: LayoutFit = FILM_LAYOUT_FIT,
): { score: number; threshold: number; unlike: boolean } {
  const score = layoutScore(layoutStats(square, size), fit);
  return { score, threshold: fit.threshold, unlike: score > fit.threshold };
}
