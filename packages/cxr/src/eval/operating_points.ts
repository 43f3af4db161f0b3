// Thresholds chosen on the validation set, for two uses: screening (miss few pneumonias) and a
// balanced default. Candidates are the distinct predicted probabilities, since the calls only
// change there; a case is called positive when prob >= threshold.
import { thresholdSweep } from './metrics';

export interface OperatingPoint {
  name: string;
  threshold: number;
  sensitivity: number;
  specificity: number;
}

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
  // Sensitivity only grows as the threshold falls, so the first hit is the highest threshold.
  const hit = candidates(labels, probs).find((c) => c.sensitivity >= minSensitivity);
  // The lowest threshold calls everything positive (sensitivity 1), so there is always a hit.
  return { name: 'screening', ...hit! };
}

/** Maximises Youden's J = sensitivity + specificity - 1; among ties, the highest threshold. */
export function balancedPoint(labels: readonly number[], probs: readonly number[]): OperatingPoint {
  const all = candidates(labels, probs);
  let best = all[0];
  for (const c of all) {
    if (c.sensitivity + c.specificity > best.sensitivity + best.specificity) best = c;
  }
  return { name: 'balanced', ...best };
}

/**
 * Screening's target sensitivity on validation. It must be distinctly more sensitive than the
 * balanced point: at 0.95 it met Youden's point on the shipped model, and the two coincided.
 */
export const SCREENING_SENSITIVITY = 0.99;

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
) {
  const balanced = balancedPoint(labels, probs);
  const screening = screeningPoint(labels, probs, minSensitivity);
  if (screening.threshold > balanced.threshold) {
    return { screening: { ...balanced, name: screening.name }, balanced };
  }
  return { screening, balanced };
}
