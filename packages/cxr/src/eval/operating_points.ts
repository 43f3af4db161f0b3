// Thresholds chosen on the validation set, for two uses: screening (miss few pneumonias) and a
// balanced default. Candidates are the distinct predicted probabilities, since the calls only
// change there; a case is called positive when prob >= threshold.
import type { z } from 'zod';
import type { OperatingPoint as OperatingPointSchema } from '../models/metadata';
import { SCREENING_SENSITIVITY } from '../models/operating_point_rules';
import { sigmoid } from './calibration';
import { confusionAt, thresholdSweep } from './metrics';

/** How the balanced point is chosen (recorded as `rule` on each point in cxr.json). */
export const BALANCED_RULES = ['youden', 'youden-plateau-middle'] as const;
export type BalancedRule = (typeof BALANCED_RULES)[number];
/** The rule new models and `cxr calibrate` use unless told otherwise. */
export const DEFAULT_BALANCED_RULE: BalancedRule = 'youden-plateau-middle';

/**
 * A point as cxr.json stores it (models/metadata.ts), chosen here on validation: so its sensitivity and
 * specificity are known (cxr.json allows them absent or null, e.g. for points moved by `cxr adapt --prior`),
 * and it carries its name for the callers that list points.
 */
export type OperatingPoint = Omit<z.infer<typeof OperatingPointSchema>, 'sensitivity' | 'specificity'> & {
  name: string;
  sensitivity: number;
  specificity: number;
};

function candidates(labels: readonly number[], probs: readonly number[]) {
  const { steps, pos, neg } = thresholdSweep(labels, probs);
  if (pos === 0 || neg === 0) {
    throw new RangeError('operating points need both pneumonia and normal cases in the validation set');
  }
  return steps.map((s) => ({ threshold: s.threshold, sensitivity: s.tp / pos, specificity: (neg - s.fp) / neg }));
}

/**
 * The highest threshold whose sensitivity is at least `minSensitivity`: the fewest false alarms
 * among the thresholds that still catch the required share of pneumonias.
 */
export function screeningPoint(
  labels: readonly number[],
  probs: readonly number[],
  minSensitivity = 0.95,
): OperatingPoint {
  // A target above 1 (or NaN) has no hit: without this the point came back with no threshold at all.
  if (!(minSensitivity >= 0 && minSensitivity <= 1)) {
    throw new RangeError(`screening sensitivity must lie in [0, 1], got ${minSensitivity}`);
  }
  // Sensitivity only grows as the threshold falls, so the first hit is the highest threshold.
  const hit = candidates(labels, probs).find((c) => c.sensitivity >= minSensitivity);
  // The lowest threshold calls everything positive (sensitivity 1), so there is always a hit.
  return { name: 'screening', ...hit!, rule: `sensitivity>=${minSensitivity}` };
}

/** Maximises Youden's J = sensitivity + specificity - 1; among ties, the highest threshold. */
export function balancedPoint(labels: readonly number[], probs: readonly number[]): OperatingPoint {
  const all = candidates(labels, probs);
  let best = all[0];
  // Beyond rounding: equal J's summed from other fractions differ in the last bit (1/2 + 4/6 vs 1 + 1/6), which
  // put the tie at the lower threshold.
  for (const c of all) {
    if (c.sensitivity + c.specificity > best.sensitivity + best.specificity + 1e-12) best = c;
  }
  return { name: 'balanced', ...best, rule: 'youden' };
}

/**
 * J tolerance of the plateau: 0.01 is two NORMAL films of the 201 in the validation split (or six
 * PNEUMONIA films), below the split's own sampling error of J (the specificity alone has a standard
 * error of about 0.015 at 95 %), so thresholds within it are indistinguishable on validation.
 */
export const PLATEAU_TOLERANCE = 0.01;

/**
 * The logit of a probability, unclamped so that distinct probabilities keep distinct logits: a saturated
 * calibration (a temperature on its lower bound) puts whole plateaus above 1 - 1e-12, and a clamp there
 * collapsed both ends onto one logit and put the "middle" outside the plateau. Only 0 and 1 themselves are
 * moved, to the smallest positive double and the largest below 1, so that an end of 0 or 1 still has a
 * finite middle with the other end.
 */
function logit(p: number): number {
  const q = Math.min(1 - Number.EPSILON / 2, Math.max(Number.MIN_VALUE, p));
  return Math.log(q) - Math.log1p(-q);
}

/**
 * Youden's J is flat over a wide range of thresholds on a validation set the model nearly
 * separates, and its exact maximum lands wherever the one or two hardest films happen to sit: on
 * the cxr-shift seeds it wandered from 0.05 to 0.27, always near the plateau's low edge, where
 * NORMAL films from another site (which score higher) cross it first. This rule takes every
 * threshold whose J is within `tolerance` of the maximum and returns the middle of their range in
 * logit space: the threshold farthest from both edges where validation starts to lose films, so
 * that a shift of the scores in either direction (NORMAL up, PNEUMONIA down, as the shift benchmark
 * shows) costs the least. Logit space because site shifts move logits roughly additively, and the
 * middle is the same whatever the temperature. The range's envelope is used even if J dips inside it
 * (it does by at most the tolerance plus a film on these curves); the point reports the
 * sensitivity and specificity at the chosen threshold itself.
 */
export function plateauMiddlePoint(
  labels: readonly number[],
  probs: readonly number[],
  tolerance = PLATEAU_TOLERANCE,
): OperatingPoint {
  // Candidates run from the highest threshold down; any threshold in (next candidate, candidate]
  // makes the same calls as the candidate, so the plateau reaches down to just above the candidate
  // after its lowest member. With a gap between the classes and no tolerance, the middle is the
  // middle of the gap.
  const all = candidates(labels, probs);
  const j = (c: (typeof all)[number]) => c.sensitivity + c.specificity - 1;
  // A loop, not Math.max(...): spreading ~125,000 distinct probabilities overflows the call stack.
  const max = all.reduce((m, c) => Math.max(m, j(c)), -Infinity);
  const first = all.findIndex((c) => j(c) >= max - tolerance - 1e-12);
  let last = first;
  for (let i = first; i < all.length; i++) if (j(all[i]) >= max - tolerance - 1e-12) last = i;
  const hi = all[first].threshold;
  const below = all[last + 1];
  const lo = (below ?? all[last]).threshold;
  const middle = sigmoid((logit(lo) + logit(hi)) / 2);
  // The middle must make the plateau's calls: above the candidate below it (at or above the lowest
  // candidate, which calls every film positive), and at most the top. Where rounding puts it outside (the
  // two ends adjacent doubles), the plateau's top is the threshold.
  const inside = (below ? middle > lo : middle >= lo) && middle <= hi;
  const threshold = inside ? middle : hi;
  const c = confusionAt(labels, probs, threshold);
  return {
    name: 'balanced',
    threshold,
    sensitivity: c.tp / (c.tp + c.fn),
    specificity: c.tn / (c.tn + c.fp),
    rule: 'youden-plateau-middle',
  };
}

/**
 * Both named points. Screening is never less sensitive than balanced: when Youden's point
 * already catches more than `minSensitivity` of pneumonias, screening takes its threshold,
 * so that switching to "screening" can only add alarms, never drop them; then the two coincide,
 * and callers must not offer a switch between them.
 */
export function operatingPoints(
  labels: readonly number[],
  probs: readonly number[],
  minSensitivity = SCREENING_SENSITIVITY,
  rule: BalancedRule = DEFAULT_BALANCED_RULE,
) {
  const balanced = rule === 'youden' ? balancedPoint(labels, probs) : plateauMiddlePoint(labels, probs);
  const screening = screeningPoint(labels, probs, minSensitivity);
  if (screening.threshold > balanced.threshold) {
    return { screening: { ...balanced, name: screening.name }, balanced };
  }
  return { screening, balanced };
}
