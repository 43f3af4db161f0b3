// Each class balanced over its acquisition periods. File names number patients in the order they
// were acquired (NORMAL2-IM-0383, person12, ...; data/split.ts). On the patient-level validation
// split the NORMAL films every model calls PNEUMONIA come from stretches of numbers where few NORMAL
// films are in the data set (docs/generalisation.md, round 5): the models saw too few normal films
// of those periods to learn what one looks like, so a period's look becomes a sign of its majority
// class. Weighting each film by how sparse its stretch of numbers is lets every period count alike.
import { z } from 'zod';
import { seriesOf } from './split';

export const periodBalanceSchema = z.object({
  /** Half-width of the stretch of patient numbers a film's density is counted over. */
  window: z.number().int().min(1).max(1000).default(25),
  /** The largest weight a film gets (its stretch at most this many times sparser than the series' median). */
  maxWeight: z.number().min(1).max(20).default(4),
});
export type PeriodBalance = z.infer<typeof periodBalanceSchema>;

/**
 * One weight per image, ≥ 1: the median density of its series and class over the density of its
 * own stretch (the share of numbers within ±window that have a film of that class), capped at
 * maxWeight. Images whose patient id carries no number (generated or unrecognised files) weigh 1.
 */
export function periodWeights(
  patients: readonly string[],
  labels: ArrayLike<number>,
  opts: Partial<PeriodBalance> = {},
): Float64Array {
  const { window, maxWeight } = periodBalanceSchema.parse(opts);
  if (patients.length !== labels.length)
    throw new RangeError(`period balance: ${patients.length} patient ids for ${labels.length} labels`);
  const key = (i: number, series: string) => `${labels[i]}\u0000${series}`;
  const present = new Map<string, Set<number>>();
  const parsed = patients.map((id) => seriesOf(id));
  parsed.forEach(([series, n], i) => {
    if (!Number.isFinite(n)) return;
    const k = key(i, series);
    if (!present.has(k)) present.set(k, new Set());
    present.get(k)!.add(n);
  });
  const density = new Map<string, Map<number, number>>();
  const median = new Map<string, number>();
  for (const [k, numbers] of present) {
    const sorted = [...numbers].sort((a, b) => a - b);
    const lo = sorted[0];
    const hi = sorted[sorted.length - 1];
    const byNumber = new Map<number, number>();
    for (const n of sorted) {
      // The stretch is clipped to the series' range, so its first and last films are not counted sparse.
      const from = Math.max(lo, n - window);
      const to = Math.min(hi, n + window);
      let count = 0;
      for (let m = from; m <= to; m++) if (numbers.has(m)) count++;
      byNumber.set(n, count / (to - from + 1));
    }
    density.set(k, byNumber);
    const values = [...byNumber.values()].sort((a, b) => a - b);
    median.set(k, values[Math.floor(values.length / 2)]);
  }
  const weights = new Float64Array(patients.length).fill(1);
  parsed.forEach(([series, n], i) => {
    if (!Number.isFinite(n)) return;
    const k = key(i, series);
    const d = density.get(k)!.get(n)!;
    weights[i] = Math.min(maxWeight, Math.max(1, median.get(k)! / d));
  });
  return weights;
}
