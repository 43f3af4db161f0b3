// The class prior of a new site from its unlabeled films (Saerens, Latinne & Decaestecker 2002,
// "Adjusting the outputs of a classifier to new a priori probabilities"): EM on the calibrated
// probabilities. A probability p computed under the prior π_t becomes, under π,
//   p' = (π/π_t) p / ((π/π_t) p + ((1−π)/(1−π_t)) (1−p)),
// i.e. its log-odds move by log-odds(π) − log-odds(π_t); the new prior is the mean of the p'.
import { logit, sigmoid } from '../models/infer';

export interface PriorEstimate {
  prior: number;
  iterations: number;
  converged: boolean;
}

const PRIOR_FLOOR = 1e-4;

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
    // Kept off 0 and 1, where the log-odds (and the threshold shift) would be infinite.
    const next = Math.min(1 - PRIOR_FLOOR, Math.max(PRIOR_FLOOR, sum / z.length));
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

/** The site's prior and the log-odds shift that moves the model's thresholds to it. */
export interface SitePrior extends PriorEstimate {
  /** logOdds(site prior) − logOdds(calibration prior): added to every logit, or subtracted from the thresholds. */
  shift: number;
}

/** EM's estimate of the site's prior from its calibrated probabilities, and the shift it implies. */
export function sitePrior(probs: readonly number[], trainPrior: number): SitePrior {
  const est = estimatePrior(probs, trainPrior);
  return { ...est, shift: logOdds(est.prior) - logOdds(trainPrior) };
}
