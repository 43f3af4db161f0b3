// Binary classification metrics on plain number arrays. Label 1 = pneumonia (positive),
// label 0 = normal; a case is called positive when prob >= threshold.
import type { Confusion, Metrics } from './metrics_schema';
import { quantile, seededRandom, wilsonInterval, type Interval } from './stats';

export interface EvaluateOptions {
  threshold?: number;
  /** Percentile bootstrap for the AUC interval; n = 0 turns it off. */
  bootstrap?: { n?: number; seed?: number };
  /** Number of equal-width bins for the expected calibration error. */
  eceBins?: number;
}

export const DEFAULT_BOOTSTRAP = { n: 1000, seed: 1234 } as const;

export function checkInputs(labels: readonly number[], probs: readonly number[]): void {
  if (labels.length !== probs.length) {
    throw new RangeError(`labels (${labels.length}) and probs (${probs.length}) differ in length`);
  }
  if (labels.length === 0) throw new RangeError('cannot evaluate an empty set of predictions');
  labels.forEach((y, i) => {
    if (y !== 0 && y !== 1) throw new RangeError(`labels[${i}] = ${y}: labels must be 0 or 1`);
  });
  probs.forEach((p, i) => {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`probs[${i}] = ${p}: probabilities must lie in [0, 1]`);
  });
}

export function confusionAt(labels: readonly number[], probs: readonly number[], threshold: number): Confusion {
  const c = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < labels.length; i++) {
    const called = probs[i] >= threshold;
    if (labels[i] === 1) called ? c.tp++ : c.fn++;
    else called ? c.fp++ : c.tn++;
  }
  return c;
}

const ratio = (num: number, den: number): number | null => (den > 0 ? num / den : null);

/** Cases sorted by probability, ascending; computed once and shared by AUC and its bootstrap. */
interface Sorted {
  probs: number[];
  labels: number[];
  /** Original case index of each sorted position. */
  order: number[];
}

function sortAscending(labels: readonly number[], probs: readonly number[]): Sorted {
  const order = probs.map((_, i) => i).sort((a, b) => probs[a] - probs[b]);
  return { probs: order.map((i) => probs[i]), labels: order.map((i) => labels[i]), order };
}

/**
 * Mann–Whitney AUC: the probability that a random pneumonia case scores higher than a random
 * normal one, ties counting one half. `weights` (case multiplicities) lets the bootstrap reuse the
 * sort instead of re-sorting each resample.
 */
function weightedAuc(s: Sorted, weights?: ArrayLike<number>): number | null {
  let negBelow = 0;
  let sum = 0;
  let pos = 0;
  let neg = 0;
  for (let i = 0; i < s.probs.length; ) {
    let posW = 0;
    let negW = 0;
    let j = i;
    for (; j < s.probs.length && s.probs[j] === s.probs[i]; j++) {
      const w = weights ? weights[j] : 1;
      if (s.labels[j] === 1) posW += w;
      else negW += w;
    }
    sum += posW * (negBelow + negW / 2);
    negBelow += negW;
    pos += posW;
    neg += negW;
    i = j;
  }
  return pos > 0 && neg > 0 ? sum / (pos * neg) : null;
}

export function rocAuc(labels: readonly number[], probs: readonly number[]): number | null {
  checkInputs(labels, probs);
  return weightedAuc(sortAscending(labels, probs));
}

/**
 * Stratified percentile bootstrap: positives and negatives are resampled separately so that every
 * replicate keeps the class balance and has a defined AUC (the default of pROC, for the same reason).
 */
function bootstrapAuc(s: Sorted, n: number, seed: number): Interval | null {
  const posIdx: number[] = [];
  const negIdx: number[] = [];
  s.labels.forEach((y, i) => (y === 1 ? posIdx : negIdx).push(i));
  if (posIdx.length === 0 || negIdx.length === 0 || n <= 0) return null;
  const rand = seededRandom(seed);
  const weights = new Float64Array(s.labels.length);
  const aucs: number[] = [];
  for (let r = 0; r < n; r++) {
    weights.fill(0);
    for (let k = 0; k < posIdx.length; k++) weights[posIdx[Math.floor(rand() * posIdx.length)]]++;
    for (let k = 0; k < negIdx.length; k++) weights[negIdx[Math.floor(rand() * negIdx.length)]]++;
    aucs.push(weightedAuc(s, weights) as number);
  }
  aucs.sort((a, b) => a - b);
  return [quantile(aucs, 0.025), quantile(aucs, 0.975)];
}

/**
 * AUC(b) − AUC(a) of two models scored on the same cases, with a paired stratified percentile
 * bootstrap interval: every resample draws the same cases for both models, so the interval is that
 * of the difference rather than the (much wider) spread of each AUC on its own.
 */
export function pairedAucDifference(
  labels: readonly number[],
  probsA: readonly number[],
  probsB: readonly number[],
  opts: { n?: number; seed?: number } = {},
): { difference: number; ci95: Interval | null } | null {
  checkInputs(labels, probsA);
  checkInputs(labels, probsB);
  const a = sortAscending(labels, probsA);
  const b = sortAscending(labels, probsB);
  const aucA = weightedAuc(a);
  const aucB = weightedAuc(b);
  if (aucA === null || aucB === null) return null;
  const n = opts.n ?? DEFAULT_BOOTSTRAP.n;
  if (n <= 0) return { difference: aucB - aucA, ci95: null };
  const posIdx: number[] = [];
  const negIdx: number[] = [];
  labels.forEach((y, i) => (y === 1 ? posIdx : negIdx).push(i));
  const rand = seededRandom(opts.seed ?? DEFAULT_BOOTSTRAP.seed);
  const cases = new Float64Array(labels.length);
  const wa = new Float64Array(labels.length);
  const wb = new Float64Array(labels.length);
  const diffs: number[] = [];
  for (let r = 0; r < n; r++) {
    cases.fill(0);
    for (let k = 0; k < posIdx.length; k++) cases[posIdx[Math.floor(rand() * posIdx.length)]]++;
    for (let k = 0; k < negIdx.length; k++) cases[negIdx[Math.floor(rand() * negIdx.length)]]++;
    for (let j = 0; j < labels.length; j++) {
      wa[j] = cases[a.order[j]];
      wb[j] = cases[b.order[j]];
    }
    diffs.push((weightedAuc(b, wb) as number) - (weightedAuc(a, wa) as number));
  }
  diffs.sort((x, y) => x - y);
  return { difference: aucB - aucA, ci95: [quantile(diffs, 0.025), quantile(diffs, 0.975)] };
}

export interface ThresholdSweep {
  /** One step per distinct probability, from high to low, with the counts called positive at it. */
  steps: { threshold: number; tp: number; fp: number }[];
  pos: number;
  neg: number;
}

/** Every distinct threshold with the cumulative counts of cases called positive. */
export function thresholdSweep(labels: readonly number[], probs: readonly number[]): ThresholdSweep {
  checkInputs(labels, probs);
  const s = sortAscending(labels, probs);
  const steps: { threshold: number; tp: number; fp: number }[] = [];
  let tp = 0;
  let fp = 0;
  for (let i = s.probs.length - 1; i >= 0; ) {
    let j = i;
    for (; j >= 0 && s.probs[j] === s.probs[i]; j--) s.labels[j] === 1 ? tp++ : fp++;
    steps.push({ threshold: s.probs[i], tp, fp });
    i = j;
  }
  return { steps, pos: tp, neg: fp };
}

export interface RocPoint {
  /** null for the (0, 0) corner, which no finite threshold reaches. */
  threshold: number | null;
  fpr: number;
  tpr: number;
}

/** ROC points, one per distinct probability, from (0,0) to (1,1). Rates are 0 for an absent class. */
export function rocCurve(labels: readonly number[], probs: readonly number[]): RocPoint[] {
  const { steps, pos, neg } = thresholdSweep(labels, probs);
  return [
    { threshold: null, fpr: 0, tpr: 0 },
    ...steps.map((s) => ({ threshold: s.threshold, fpr: ratio(s.fp, neg) ?? 0, tpr: ratio(s.tp, pos) ?? 0 })),
  ];
}

export interface PrPoint {
  threshold: number | null;
  recall: number;
  precision: number;
}

/** Precision–recall points from recall 0 (precision 1 by convention) up to recall 1. */
export function prCurve(labels: readonly number[], probs: readonly number[]): PrPoint[] {
  const { steps, pos } = thresholdSweep(labels, probs);
  return [
    { threshold: null, recall: 0, precision: 1 },
    ...steps.map((s) => ({ threshold: s.threshold, recall: ratio(s.tp, pos) ?? 0, precision: s.tp / (s.tp + s.fp) })),
  ];
}

/**
 * Average precision, the step-wise area under the PR curve (no interpolation, which would flatter
 * the curve): sum over thresholds of (recall gain) x precision. Undefined without positives.
 */
export function averagePrecision(labels: readonly number[], probs: readonly number[]): number | null {
  const { steps, pos } = thresholdSweep(labels, probs);
  if (pos === 0) return null;
  // Summed in films and divided once: adding pos shares of 1/pos each can pass 1 (9 positives give
  // 1.0000000000000002), which the metrics schema rightly refuses as a rate.
  let sum = 0;
  let prevTp = 0;
  for (const s of steps) {
    sum += (s.tp - prevTp) * (s.tp / (s.tp + s.fp));
    prevTp = s.tp;
  }
  return Math.min(1, sum / pos);
}

export function brierScore(labels: readonly number[], probs: readonly number[]): number {
  checkInputs(labels, probs);
  return labels.reduce((acc, y, i) => acc + (y - probs[i]) ** 2, 0) / labels.length;
}

export interface ReliabilityBin {
  lo: number;
  hi: number;
  count: number;
  /** Mean predicted probability in the bin; null when the bin is empty. */
  meanProb: number | null;
  /** Observed fraction of pneumonia in the bin; null when the bin is empty. */
  fracPositive: number | null;
}

/** The expected calibration error's equal-width bins wherever cxr reports one (evaluate, card, benchmark). */
export const ECE_BINS = 10;

/** Equal-width bins on [0, 1]; a probability of exactly 1 goes in the last bin. */
export function reliabilityBins(
  labels: readonly number[],
  probs: readonly number[],
  nBins = ECE_BINS,
): ReliabilityBin[] {
  checkInputs(labels, probs);
  if (!Number.isInteger(nBins) || nBins < 1) throw new RangeError(`nBins must be a positive integer, got ${nBins}`);
  const count = new Array<number>(nBins).fill(0);
  const sumP = new Array<number>(nBins).fill(0);
  const sumY = new Array<number>(nBins).fill(0);
  probs.forEach((p, i) => {
    const b = Math.min(Math.floor(p * nBins), nBins - 1);
    count[b]++;
    sumP[b] += p;
    sumY[b] += labels[i];
  });
  return count.map((c, b) => ({
    lo: b / nBins,
    hi: (b + 1) / nBins,
    count: c,
    meanProb: ratio(sumP[b], c),
    fracPositive: ratio(sumY[b], c),
  }));
}

/** Expected calibration error: bin-size-weighted mean of |mean probability - observed frequency|. */
export function expectedCalibrationError(
  labels: readonly number[],
  probs: readonly number[],
  nBins = ECE_BINS,
): number {
  return reliabilityBins(labels, probs, nBins).reduce(
    (acc, b) => (b.count === 0 ? acc : acc + (b.count / labels.length) * Math.abs(b.meanProb! - b.fracPositive!)),
    0,
  );
}

export function evaluate(labels: readonly number[], probs: readonly number[], opts: EvaluateOptions = {}): Metrics {
  checkInputs(labels, probs);
  const threshold = opts.threshold ?? 0.5;
  if (!(threshold >= 0 && threshold <= 1)) throw new RangeError(`threshold must lie in [0, 1], got ${threshold}`);
  // Field by field: a spread let `{ n: undefined }` (which the options' type allows) replace the default n, and an
  // empty bootstrap then threw 'quantile of an empty sample'.
  const boot = {
    n: opts.bootstrap?.n ?? DEFAULT_BOOTSTRAP.n,
    seed: opts.bootstrap?.seed ?? DEFAULT_BOOTSTRAP.seed,
  };
  const notes: string[] = [];

  const c = confusionAt(labels, probs, threshold);
  const n = labels.length;
  const pos = c.tp + c.fn;
  const neg = c.tn + c.fp;
  if (pos === 0) notes.push('no positive (pneumonia) cases: sensitivity, AUC and PR AUC are undefined');
  if (neg === 0) notes.push('no negative (normal) cases: specificity and AUC are undefined');
  if (c.tp + c.fp === 0) notes.push('no case called positive at this threshold: precision is undefined');

  const sorted = sortAscending(labels, probs);
  const auc = weightedAuc(sorted);
  const aucCi = auc === null ? null : bootstrapAuc(sorted, boot.n, boot.seed);
  if (auc !== null && aucCi === null) notes.push('bootstrap disabled: no confidence interval for AUC');
  // Classes that no threshold mixes make every resample the same, so the percentile interval shrinks to the
  // point: "1.000 – 1.000" on 45 films reads as certainty that a sample this small cannot give.
  if (aucCi !== null && aucCi[0] === aucCi[1]) notes.push(collapsedAucNote(auc as number, pos, neg));

  return {
    n,
    accuracy: (c.tp + c.tn) / n,
    sensitivity: ratio(c.tp, pos),
    specificity: ratio(c.tn, neg),
    precision: ratio(c.tp, c.tp + c.fp),
    f1: ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn),
    auc,
    pr_auc: averagePrecision(labels, probs),
    brier: brierScore(labels, probs),
    ece: expectedCalibrationError(labels, probs, opts.eceBins ?? ECE_BINS),
    threshold,
    confusion: c,
    ci95: {
      accuracy: wilsonInterval(c.tp + c.tn, n)!,
      sensitivity: wilsonInterval(c.tp, pos),
      specificity: wilsonInterval(c.tn, neg),
      auc: aucCi,
    },
    ...(notes.length > 0 ? { notes } : {}),
  };
}

/** Why the AUC interval has no width, and what a reader should take from it instead. */
function collapsedAucNote(auc: number, pos: number, neg: number): string {
  const how =
    auc === 1
      ? 'perfectly separated'
      : auc === 0
        ? 'perfectly separated the wrong way round (every pneumonia film below every normal one)'
        : // Between 0 and 1 only ties give every resample the same AUC.
          'tied (every pneumonia film scored the same as every normal one)';
  return (
    `the AUC's 95% interval is ${auc.toFixed(3)} – ${auc.toFixed(3)} only because the ${pos} pneumonia and ` +
    `${neg} normal films are ${how} in every bootstrap resample: the bootstrap cannot show how much the AUC ` +
    'could differ on other films, only a larger labelled sample can'
  );
}

/**
 * `evaluate` over the films `keep` says, or null when it keeps none: the metrics of the films a pipeline
 * assesses, as `cxr evaluate` writes them and `cxr calibrate` restates them.
 */
export function evaluateKept(
  labels: readonly number[],
  probs: readonly number[],
  keep: (i: number) => boolean,
  opts: EvaluateOptions = {},
): Metrics | null {
  const kept = labels.flatMap((_, i) => (keep(i) ? [i] : []));
  if (!kept.length) return null;
  return evaluate(
    kept.map((i) => labels[i]),
    kept.map((i) => probs[i]),
    opts,
  );
}
