// Each class balanced over its acquisition periods. File names number patients in the order they
// were acquired (NORMAL2-IM-0383, person12, ...; data/split.ts). On the patient-level validation
// split the NORMAL films every model calls PNEUMONIA come from stretches of numbers where few NORMAL
// films are in the data set (docs/generalisation.md, round 5): the models saw too few normal films
// of those periods to learn what one looks like, so a period's look becomes a sign of its majority
// class. Weighting each film by how sparse its stretch of numbers is lets every period count alike.
import { z } from 'zod';
import { seriesOf } from './split';

/** Half-width of the stretch of patient numbers a film's density is counted over, unless a recipe says. */
export const DEFAULT_PERIOD_WINDOW = 25;

export const periodBalanceSchema = z.object({
  /** Half-width of the stretch of patient numbers a film's density is counted over. */
  window: z.number().int().min(1).max(1000).default(DEFAULT_PERIOD_WINDOW),
  /** The largest weight a film gets (its stretch at most this many times sparser than the series' median). */
  maxWeight: z.number().min(1).max(20).default(4),
  /** The sparseness ratio is raised to this power before the cap: 2 leans harder on the sparsest stretches. */
  power: z.number().min(0.5).max(4).default(1),
});
export type PeriodBalance = z.infer<typeof periodBalanceSchema>;

/** Per class and series: the patient numbers that have a film, and the median density of their stretches. */
interface SeriesNumbers {
  numbers: Set<number>;
  lo: number;
  hi: number;
  median: number;
}

const seriesKey = (label: number, series: string) => `${label}\u0000${series}`;

/** Share of the numbers within ±window of n (clipped to the series' range) that have a film. */
function densityAt(s: Omit<SeriesNumbers, 'median'>, n: number, window: number): number {
  // The stretch is clipped to the series' range, so its first and last films are not counted sparse.
  const from = Math.max(s.lo, n - window);
  const to = Math.min(s.hi, n + window);
  if (to < from) return 0;
  let count = 0;
  for (let m = from; m <= to; m++) if (s.numbers.has(m)) count++;
  return count / (to - from + 1);
}

function seriesNumbers(
  patients: readonly string[],
  labels: ArrayLike<number>,
  window: number,
): Map<string, SeriesNumbers> {
  if (patients.length !== labels.length)
    throw new RangeError(`period balance: ${patients.length} patient ids for ${labels.length} labels`);
  const sets = new Map<string, Set<number>>();
  patients.forEach((id, i) => {
    const [series, n] = seriesOf(id);
    if (!Number.isFinite(n)) return;
    const k = seriesKey(labels[i], series);
    if (!sets.has(k)) sets.set(k, new Set());
    sets.get(k)!.add(n);
  });
  const out = new Map<string, SeriesNumbers>();
  for (const [k, numbers] of sets) {
    const sorted = [...numbers].sort((a, b) => a - b);
    const s = { numbers, lo: sorted[0], hi: sorted[sorted.length - 1] };
    const densities = sorted.map((n) => densityAt(s, n, window)).sort((a, b) => a - b);
    out.set(k, { ...s, median: densities[Math.floor(densities.length / 2)] });
  }
  return out;
}

/**
 * One weight per image, ≥ 1: the median density of its series and class over the density of its
 * own stretch (the share of numbers within ±window that have a film of that class), raised to
 * `power` and capped at maxWeight. Images whose patient id carries no number (generated or
 * unrecognised files) weigh 1.
 */
export function periodWeights(
  patients: readonly string[],
  labels: ArrayLike<number>,
  opts: Partial<PeriodBalance> = {},
): Float64Array {
  const { window, maxWeight, power } = periodBalanceSchema.parse(opts);
  const series = seriesNumbers(patients, labels, window);
  return Float64Array.from(patients, (id, i) => {
    const [name, n] = seriesOf(id);
    if (!Number.isFinite(n)) return 1;
    const s = series.get(seriesKey(labels[i], name))!;
    return Math.min(maxWeight, Math.max(1, (s.median / densityAt(s, n, window)) ** power));
  });
}

/** A stretch is sparse below this share of its series' median density (its films would weigh over 4/3). */
export const SPARSE_SHARE = 0.75;

/**
 * Group names for `cxr evaluate --period-groups`: a film's series and whether its stretch of patient
 * numbers is sparse among the reference films of its class ('NORMAL2-IM sparse', 'person dense').
 * On a model's validation split the reference is the whole training folder, whose numbering the
 * periods come from; a film whose number has no reference films of its class around it is sparse.
 */
export function periodGrouper(
  refPatients: readonly string[],
  refLabels: ArrayLike<number>,
  window = DEFAULT_PERIOD_WINDOW,
): (patient: string, label: number) => string {
  const series = seriesNumbers(refPatients, refLabels, window);
  return (patient, label) => {
    const [name, n] = seriesOf(patient);
    const s = series.get(seriesKey(label, name));
    const stem = name.replace(/-$/, '');
    if (!Number.isFinite(n) || !s) return `${stem} (no period)`;
    return `${stem} ${densityAt(s, n, window) < SPARSE_SHARE * s.median ? 'sparse' : 'dense'}`;
  };
}
