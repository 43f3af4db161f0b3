// Carves a validation set out of train, by patient: all images of a child go to the same side,
// so validation never scores an image whose twin (same chest, days apart) was trained on.
// Patients are stratified by label so both sides keep the NORMAL/PNEUMONIA ratio; a patient
// whose images carry different labels is placed by the majority of them (ties go to PNEUMONIA:
// arbitrary, but fixed). The same seed and the same input give the same split,
// whatever order the records arrive in.
import type { Label } from './dataset';
import { createRng, type Seed, shuffleInPlace } from './random';

export interface SplitOptions {
  /** Fraction of images (per class) to put in validation; default 0.15. */
  valFraction?: number;
  seed?: Seed;
  /**
   * 'random' (default): seeded shuffle of patients. 'block': the lowest-numbered patients of each
   * file-name series (IM-, NORMAL2-IM-, person), so validation is a contiguous block of patient
   * numbers as the official test split is; numbering follows acquisition, so this split measures
   * a shift in time that a random one hides.
   */
  mode?: SplitMode;
}

export type SplitMode = 'random' | 'block';

/** Series and number of a patient id ('NORMAL2-IM-0383' -> ['NORMAL2-IM-', 383]); unnumbered ids sort last. */
export function seriesOf(id: string): [string, number] {
  const m = /^(.*?)(\d+)$/.exec(id);
  return m ? [m[1], parseInt(m[2], 10)] : [id, Number.POSITIVE_INFINITY];
}

export const DEFAULT_VAL_FRACTION = 0.15;
/** Block mode's series key for ids without a number; no numbered id's series name can be it. */
const UNNUMBERED = '\u0000unnumbered';
export const DEFAULT_SPLIT_SEED = 42;

export interface PatientSplit<T> {
  train: T[];
  val: T[];
  /** Positions in the input array, ascending. */
  trainIndices: number[];
  valIndices: number[];
}

interface Patient {
  id: string;
  indices: number[];
  label: Label;
}

export function splitByPatient<T extends { patient: string; label: Label }>(
  items: readonly T[],
  opts: SplitOptions = {},
): PatientSplit<T> {
  const valFraction = opts.valFraction ?? DEFAULT_VAL_FRACTION;
  if (!(valFraction >= 0 && valFraction < 1))
    throw new RangeError(`split: valFraction must be in [0, 1), got ${valFraction}`);
  const seed = opts.seed ?? DEFAULT_SPLIT_SEED;

  const byPatient = new Map<string, number[]>();
  items.forEach((item, i) => {
    const list = byPatient.get(item.patient);
    if (list) list.push(i);
    else byPatient.set(item.patient, [i]);
  });

  const strata: [Patient[], Patient[]] = [[], []];
  // Sorted ids make the shuffle independent of input order.
  for (const id of [...byPatient.keys()].sort()) {
    const indices = byPatient.get(id)!;
    const positives = indices.filter((i) => items[i].label === 1).length;
    const label: Label = positives * 2 >= indices.length ? 1 : 0;
    strata[label].push({ id, indices, label });
  }

  const inVal = new Uint8Array(items.length);
  // Whole patients in order until the share is reached; the overshoot is at most one patient's
  // images, which is a handful here.
  const take = (patients: readonly Patient[]) => {
    const target = Math.round(patients.reduce((n, p) => n + p.indices.length, 0) * valFraction);
    let taken = 0;
    for (const p of patients) {
      if (taken >= target) break;
      for (const i of p.indices) inVal[i] = 1;
      taken += p.indices.length;
    }
  };
  for (const label of [0, 1] as const) {
    if ((opts.mode ?? 'random') === 'random') {
      take(shuffleInPlace(strata[label], createRng(seed, 'split', label)));
      continue;
    }
    const series = new Map<string, { p: Patient; n: number }[]>();
    for (const p of strata[label]) {
      const [name, n] = seriesOf(p.id);
      // Ids without a number ('file:scan.png', names no pattern knows) form one series of their own, in id
      // order: keyed by the whole id, each was a series of one patient, whose share rounds to 0, so none of
      // them ever reached validation (a folder of such names got an empty validation set).
      const key = Number.isFinite(n) ? name : UNNUMBERED;
      if (!series.has(key)) series.set(key, []);
      series.get(key)!.push({ p, n });
    }
    // Infinity − Infinity is NaN: unnumbered ids are ordered by id instead.
    const order = (a: { p: Patient; n: number }, b: { p: Patient; n: number }) =>
      a.n !== b.n ? a.n - b.n : a.p.id < b.p.id ? -1 : a.p.id > b.p.id ? 1 : 0;
    for (const list of series.values()) take(list.sort(order).map((e) => e.p));
  }

  const trainIndices: number[] = [];
  const valIndices: number[] = [];
  inVal.forEach((v, i) => (v ? valIndices : trainIndices).push(i));
  return {
    train: trainIndices.map((i) => items[i]),
    val: valIndices.map((i) => items[i]),
    trainIndices,
    valIndices,
  };
}
