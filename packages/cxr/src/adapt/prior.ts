// The class prior of a new site from its unlabeled films (Saerens, Latinne & Decaestecker 2002,
// "Adjusting the outputs of a classifier to new a priori probabilities"): EM on the calibrated
// probabilities. A probability p computed under the prior π_t becomes, under π,
//   p' = (π/π_t) p / ((π/π_t) p + ((1−π)/(1−π_t)) (1−p)),
// i.e. its log-odds move by log-odds(π) − log-odds(π_t); the new prior is the mean of the p'.
import { logit, sigmoid } from '../models/infer';
import type { PRIOR_SOURCES } from '../models/metadata';

export interface PriorEstimate {
  prior: number;
  iterations: number;
  converged: boolean;
}

const PRIOR_FLOOR = 1e-4;
/** Kept off 0 and 1, where the log-odds (and the threshold shift) would be infinite. */
const clampPrior = (p: number) => Math.min(1 - PRIOR_FLOOR, Math.max(PRIOR_FLOOR, p));

export function logOdds(p: number): number {
  return Math.log(p / (1 - p));
}

/** EM estimate of P(positive) on a sample whose probabilities were calibrated under `trainPrior`. */
export function estimatePrior(
  probs: readonly number[],
  trainPrior: number,
  opts: { tol?: number; maxIterations?: number } = {},
): PriorEstimate {
  if (!(trainPrior > 0 && trainPrior < 1)) throw new Error(`training prior must be in (0, 1), got ${trainPrior}`);
  if (probs.length === 0) throw new Error('prior estimation needs at least one probability');
  const tol = opts.tol ?? 1e-7;
  const max = opts.maxIterations ?? 1000;
  const z = probs.map((p) => logit(p));
  let prior = trainPrior;
  for (let it = 1; it <= max; it++) {
    const shift = logOdds(prior) - logOdds(trainPrior);
    let sum = 0;
    for (const v of z) sum += sigmoid(v + shift);
    const next = clampPrior(sum / z.length);
    if (Math.abs(next - prior) < tol) return { prior: next, iterations: it, converged: true };
    prior = next;
  }
  return { prior, iterations: max, converged: false };
}

/**
 * The threshold on the unchanged (training-prior) probability that makes the same call as
 * `threshold` on the site-adjusted probability: p' ≥ t ⇔ logit(p) ≥ logit(t) − shift.
 */
export function shiftThreshold(threshold: number, logitShift: number): number {
  return sigmoid(logit(threshold) - logitShift);
}

/** An operating point's threshold and, where recorded, its validation sensitivity and specificity. */
export interface MeasuredPoint {
  threshold: number;
  sensitivity?: number | null;
  specificity?: number | null;
}

/**
 * The confusion-matrix estimate of the share of pneumonia (Lipton et al. 2018, "black box shift estimation"):
 * the share called PNEUMONIA at the threshold, corrected by its validation sensitivity and specificity. Under a
 * change of class mix alone it is unbiased; EM leans on calibration, weakest mid-scale, and read the shipped
 * model's sites 2 to 6 points short (docs/site-adaptation.md, round 16). Null where the point records no
 * sensitivity and specificity, or they barely tell the classes apart.
 */
export function confusionShare(probs: readonly number[], op: MeasuredPoint): number | null {
  if (typeof op.sensitivity !== 'number' || typeof op.specificity !== 'number') return null;
  const falseAlarm = 1 - op.specificity;
  if (!(op.sensitivity - falseAlarm > 0.5)) return null;
  const called = probs.reduce((s, p) => s + (p >= op.threshold ? 1 : 0), 0) / probs.length;
  return (called - falseAlarm) / (op.sensitivity - falseAlarm);
}

/**
 * Where `cxr adapt --prior` takes the site's share from: the share relative adaptation settled on or was given
 * ('class-mix'), else the confusion-matrix estimate on the adapted model's scores, else EM on them.
 */
export type PriorSource = (typeof PRIOR_SOURCES)[number];

/** The site's prior, where it came from, and the log-odds shift that moves the model's thresholds to it. */
export interface SitePrior {
  prior: number;
  from: PriorSource;
  /** logOdds(site prior) − logOdds(calibration prior): added to every logit, or subtracted from the thresholds. */
  shift: number;
  /** With EM: its iterations, and whether it converged. */
  iterations?: number;
  converged: boolean;
}

/**
 * The site's prior for moving the thresholds: `classMix` (the share the adaptation used) when given, else the
 * confusion-matrix estimate at `balanced`, else EM, from the (adapted) model's calibrated probabilities.
 */
export function sitePrior(
  probs: readonly number[],
  trainPrior: number,
  opts: { classMix?: number; balanced?: MeasuredPoint } = {},
): SitePrior {
  const at = (prior: number, from: PriorSource, rest: Partial<SitePrior> = {}): SitePrior => ({
    prior,
    from,
    shift: logOdds(prior) - logOdds(trainPrior),
    converged: true,
    ...rest,
  });
  if (opts.classMix !== undefined) return at(clampPrior(opts.classMix), 'class-mix');
  const share = opts.balanced ? confusionShare(probs, opts.balanced) : null;
  if (share !== null) return at(clampPrior(share), 'confusion-matrix');
  const est = estimatePrior(probs, trainPrior);
  return at(est.prior, 'em', { iterations: est.iterations, converged: est.converged });
}
