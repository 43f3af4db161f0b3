// A held-out estimate of the gate's false alarms. The shipped threshold is a percentile of the same
// validation films (clean and mildly changed) that `cxr ood evaluate` counts, so that rate is in-sample.
// Here the validation patients are cut in two halves; a threshold is set from each half exactly as
// `cxr ood fit` sets it (class-balanced percentile), and the films of the other half are counted
// against it. Every film is counted once, against the threshold its own patient had no part in.
import { createRng } from '../data/random';
import { percentile } from '../explain/ood';
import type { ScreenOutcome } from './ood_screen';

export interface ScoredFilm {
  outcome: ScreenOutcome;
  /** Class name. */
  group: string;
  patient: string;
}

export interface HeldOutRate {
  n: number;
  stopped: number;
  rate: number;
}

export interface HeldOutEstimate {
  method: string;
  percentile: number;
  /** The threshold fitted on each half (applied to the other). */
  thresholds: [number, number];
  /** Per class name, and 'overall'. */
  rates: Record<string, HeldOutRate>;
  /** The in-sample rates of the same films with the gate's own threshold, for comparison. */
  inSample: Record<string, HeldOutRate>;
}

/** Refused at threshold t: an image check or verdict reason other than the gate, or a score above t. */
export function refusedAt(o: ScreenOutcome, t: number): boolean {
  return o.reasons.some((r) => r !== 'OOD') || (o.score !== null && o.score > t);
}

/** Class-balanced threshold: the larger per-class percentile of the scores. */
export function classBalancedThreshold(films: readonly ScoredFilm[], p: number): number {
  const groups = [...new Set(films.map((f) => f.group))];
  const per = groups.map((g) =>
    percentile(
      films.flatMap((f) => (f.group === g && f.outcome.score !== null ? [f.outcome.score] : [])),
      p,
    ),
  );
  return Math.max(...per.filter((t) => Number.isFinite(t)));
}

function tally(films: readonly ScoredFilm[], stopped: (f: ScoredFilm) => boolean): Record<string, HeldOutRate> {
  const out: Record<string, HeldOutRate> = {};
  for (const f of films) {
    for (const key of ['overall', f.group]) {
      const r = (out[key] ??= { n: 0, stopped: 0, rate: 0 });
      r.n++;
      if (stopped(f)) r.stopped++;
    }
  }
  for (const r of Object.values(out)) r.rate = r.n ? r.stopped / r.n : 0;
  return out;
}

/** Which half (0 or 1) of the validation patients a patient falls in: a seeded draw per patient id. */
export function patientHalf(patient: string, seed = 1): 0 | 1 {
  return createRng(seed, 'ood-heldout', patient)() < 0.5 ? 0 : 1;
}

/** Split-half (two-fold, by patient) estimate of the false alarms of a threshold set at percentile p. */
export function splitHalfEstimate(
  films: readonly ScoredFilm[],
  p: number,
  gateThreshold: number,
  seed = 1,
): HeldOutEstimate {
  const half = (f: ScoredFilm) => patientHalf(f.patient, seed);
  const halves = [0, 1].map((h) => films.filter((f) => half(f) === h));
  const thresholds = halves.map((h) => classBalancedThreshold(h, p)) as [number, number];
  // Half 0 is counted against the threshold of half 1 and the other way round.
  const rates = tally(films, (f) => refusedAt(f.outcome, thresholds[1 - half(f)]));
  return {
    method: 'two halves of the validation patients: threshold from one, false alarms counted on the other',
    percentile: p,
    thresholds,
    rates,
    inSample: tally(films, (f) => refusedAt(f.outcome, gateThreshold)),
  };
}
