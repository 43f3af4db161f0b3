// Two models scored on the same films, compared film by film. Each model's own figures come with intervals, but
// two intervals that overlap say little about the difference: the same films make both models' errors move
// together. So the AUC difference gets a paired bootstrap (eval/metrics.ts pairedAucDifference), and sensitivity
// and specificity an exact McNemar test, which looks only at the films the two models call differently.
import { pairedAucDifference } from './metrics';
import type { Interval } from './stats';

/**
 * Two-sided exact McNemar p-value: of the `b + c` discordant films, `b` one model alone gets right and `c` the
 * other alone; under "no difference" each is a fair coin, so p = P(Binomial(b + c, ½) as far from even or
 * further), doubled and capped at 1. No discordant film: nothing tells them apart, p = 1.
 */
export function mcnemarExact(b: number, c: number): number {
  for (const x of [b, c]) {
    if (!Number.isInteger(x) || x < 0) throw new RangeError(`McNemar counts must be whole and >= 0, got ${x}`);
  }
  const n = b + c;
  if (n === 0) return 1;
  const k = Math.min(b, c);
  // In logarithms: 0.5^n underflows past n = 1074, and the binomial coefficients overflow long before.
  let logChoose = 0;
  let tail = 0;
  for (let i = 0; i <= k; i++) {
    if (i > 0) logChoose += Math.log(n - i + 1) - Math.log(i);
    tail += Math.exp(logChoose - n * Math.LN2);
  }
  return Math.min(1, 2 * tail);
}

/** One rate of both models on the films of one class, and the films that tell them apart. */
export interface PairedRate {
  /** Films of the class (pneumonia for sensitivity, normal for specificity). */
  n: number;
  /** Each model's rate (null without films of the class). */
  a: number | null;
  b: number | null;
  /** Discordant films: right by A alone, right by B alone. */
  onlyA: number;
  onlyB: number;
  /** Exact McNemar two-sided p over the discordant films (null without films of the class). */
  p: number | null;
}

export interface PairedComparison {
  n: number;
  /** AUC(B) − AUC(A) with a paired stratified bootstrap 95 % interval; null where a class is missing. */
  aucDifference: { difference: number; ci95: Interval | null } | null;
  sensitivity: PairedRate;
  specificity: PairedRate;
}

function pairedRate(
  labels: readonly number[],
  rightA: readonly boolean[],
  rightB: readonly boolean[],
  cls: number,
): PairedRate {
  let n = 0;
  let a = 0;
  let b = 0;
  let onlyA = 0;
  let onlyB = 0;
  labels.forEach((y, i) => {
    if (y !== cls) return;
    n++;
    if (rightA[i]) a++;
    if (rightB[i]) b++;
    if (rightA[i] && !rightB[i]) onlyA++;
    if (rightB[i] && !rightA[i]) onlyB++;
  });
  return n === 0
    ? { n, a: null, b: null, onlyA, onlyB, p: null }
    : { n, a: a / n, b: b / n, onlyA, onlyB, p: mcnemarExact(onlyA, onlyB) };
}

/**
 * Model A against model B on the same films (`labels`, each model's probabilities in the same order), each at its
 * own threshold (a film is called pneumonia at probability >= threshold, as eval/metrics.ts confusionAt calls it).
 */
export function comparePaired(
  labels: readonly number[],
  a: { probs: readonly number[]; threshold: number },
  b: { probs: readonly number[]; threshold: number },
  opts: { bootstrap?: number; seed?: number } = {},
): PairedComparison {
  if (a.probs.length !== labels.length || b.probs.length !== labels.length)
    throw new RangeError(
      `paired comparison: ${labels.length} labels, ${a.probs.length} and ${b.probs.length} probabilities`,
    );
  const right = (m: typeof a) => m.probs.map((p, i) => (p >= m.threshold ? 1 : 0) === labels[i]);
  const rightA = right(a);
  const rightB = right(b);
  return {
    n: labels.length,
    aucDifference: pairedAucDifference(labels, a.probs, b.probs, { n: opts.bootstrap, seed: opts.seed }),
    sensitivity: pairedRate(labels, rightA, rightB, 1),
    specificity: pairedRate(labels, rightA, rightB, 0),
  };
}
