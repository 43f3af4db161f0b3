// What the operating point choice says about each point: its measured sensitivity and specificity on
// validation (the model info), what two points that read the same on validation do not share, and why the
// default's threshold is where it is, each in few words (the reader is a busy clinician). A fixed "fewer false
// alarms" was false for a model whose points share their specificity; and with screening as specific as balanced
// and more sensitive on validation, the page offered balanced as its default without saying why.
import type { ModelInfo, OperatingPoint } from './api';
import { distinctOperatingPoints, percent } from './dom';

type Measure = 'sensitivity' | 'specificity';

/**
 * Equal on validation is not equal elsewhere: on any films, a lower threshold raises at least the false alarms of
 * a higher one, and a higher threshold misses at least the pneumonias of a lower one. Other sites' films score
 * differently, normal ones often higher (docs/generalisation.md, docs/robustness.md), so where two points tie on
 * validation the difference can show there. Said of the point on the side that can lose, in few words: the
 * hints sit beside the choice, read by a busy clinician (about 20 words each).
 */
const BUT: Record<Measure, string> = {
  specificity: "its lower threshold may raise more false alarms on other sites' films",
  sensitivity: "its higher threshold may miss more pneumonias on other sites' films",
};

/**
 * Why the default's threshold is where it is, by the rule that chose it (eval/operating_points.ts). The plateau
 * middle: Youden's J is flat over a wide range of thresholds on validation, and its exact best lands wherever one
 * or two hard films sit, near an edge of that range; the middle (in logit space) of the thresholds within 0.01 of
 * the best is the farthest from both edges, so that scores shifted either way on other sites' films change the
 * fewest calls.
 */
function ruleNote(op: OperatingPoint): string | null {
  if (op.rule === 'youden-plateau-middle')
    return 'mid-way among equally good thresholds, so shifted scores change fewest calls';
  if (op.rule === 'youden') return 'best sensitivity plus specificity on validation';
  return null;
}

/** The value as shown (a tenth of a percent): two points that read the same are not told apart. */
function shown(v: number | null | undefined): number | null {
  return v == null ? null : Math.round(v * 1000);
}

/**
 * The hint for the choice `names` (one threshold, maybe several names): "sensitivity 99.1 %, specificity
 * 97.0 % on validation; as specific as balanced, but its lower threshold may …"; for the default, why its
 * threshold. A tie is said on the side that can lose by it only; which point is higher reads from the numbers.
 * Null when the model has no measures for it.
 */
export function operatingPointHint(info: ModelInfo, names: readonly string[]): string | null {
  const mine = info.operatingPoints[names[0]];
  const others = distinctOperatingPoints(info)
    .filter((d) => !d.names.includes(names[0]))
    .map((d) => ({ names: d.names, op: info.operatingPoints[d.names[0]] }));
  const numbers: string[] = [];
  const compared: string[] = [];
  for (const m of ['sensitivity', 'specificity'] as const) {
    const v = mine[m];
    if (v == null) continue;
    numbers.push(`${m} ${percent(v)}`);
    const losers = others.filter(
      (o) =>
        shown(o.op[m]) === shown(v) &&
        (m === 'specificity' ? mine.threshold < o.op.threshold : mine.threshold > o.op.threshold),
    );
    if (!losers.length) continue;
    const whom = losers.map((o) => o.names.join(' = ')).join(' and ');
    const as = m === 'specificity' ? 'as specific' : 'as sensitive';
    compared.push(`${as} as ${whom}, but ${BUT[m]}`);
  }
  if (!numbers.length) return null;
  const why = names.includes(info.defaultOperatingPoint) ? ruleNote(mine) : null;
  return [`${numbers.join(', ')} on validation`, ...compared, ...(why ? [`the default: ${why}`] : [])].join('; ');
}
