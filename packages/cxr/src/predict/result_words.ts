// How a result is said, in one wording wherever a reader meets it: the page's card and History rows
// (web/client/finding.ts cardHeadline), and the report and heat map cxr stores in the PACS (dicom_out). An
// assessed answer is said as its number against the operating point's threshold ("Above the pneumonia threshold
// (p ≥ 15.7 %)"): "Signs of pneumonia detected" beside "18 % probability" read as a contradiction to clinicians.
// Numbers are percentages with as many decimals as the probability and the threshold need to read apart.
// No Node imports: the web page bundles this module.
import { type VerdictStatus, verdictHeadline } from './verdict';

/**
 * Between a number and its "%": a no-break space, so that a narrow screen never breaks "98.8" from its "%" (nor
 * "<" from its number).
 */
export const NBSP = '\u00a0';

/**
 * `digits` decimals (one unless said); never rounds to a certainty the model did not state (0.9996 is
 * "> 99.9 %", not "100.0 %").
 */
export function percent(p: number, digits = 1): string {
  const step = 10 ** -digits;
  if (p > 1 - step / 100 && p < 1) return `>${NBSP}${(100 - step).toFixed(digits)}${NBSP}%`;
  if (p < step / 100 && p > 0) return `<${NBSP}${step.toFixed(digits)}${NBSP}%`;
  return `${(p * 100).toFixed(digits)}${NBSP}%`;
}

/** The most decimals a probability and its threshold are shown with: 0.0001 % apart is no difference to read. */
const MAX_DIGITS = 4;

/**
 * A probability and the threshold it was compared with, with as many decimals as it takes for them to read
 * differently (one where one does): "15.7 %, below the 15.7 % threshold" says nothing, "15.730 %, below the
 * 15.735 % threshold" does. Rounding keeps order, so two numbers that read differently read in the right
 * direction. Equal ones (the probability on the threshold, which counts as above it) keep one decimal; two within
 * 0.0001 % of each other may still read alike (the headline then says on which side the probability is).
 */
export function percentPair(probability: number, threshold: number): { probability: string; threshold: string } {
  const at = (d: number) => ({ probability: percent(probability, d), threshold: percent(threshold, d) });
  let pair = at(1);
  for (let d = 2; d <= MAX_DIGITS && pair.probability === pair.threshold && probability !== threshold; d++)
    pair = at(d);
  return pair;
}

/**
 * The headline of an assessed answer: on which side of the operating point's threshold its probability is (the
 * label is exactly that), the threshold written as the card writes it.
 */
export function thresholdHeadline(label: 'NORMAL' | 'PNEUMONIA', probability: number, threshold: number): string {
  const t = percentPair(probability, threshold).threshold;
  return label === 'PNEUMONIA'
    ? `Above the pneumonia threshold (p${NBSP}≥${NBSP}${t})`
    : `Below the pneumonia threshold (p${NBSP}<${NBSP}${t})`;
}

/**
 * The headline of any answer as the card shows it: an assessed one against its threshold (thresholdHeadline),
 * otherwise its status's words (cannot assess, outside the intended population).
 */
export function resultHeadline(r: ShownResult): string {
  if (r.status === 'assessed' && r.label !== null) return thresholdHeadline(r.label, r.probability, r.threshold);
  return verdictHeadline(r.status === 'assessed' ? 'cannot-assess' : r.status, r.label);
}

export interface ShownResult {
  status: VerdictStatus;
  label: 'NORMAL' | 'PNEUMONIA' | null;
  probability: number;
  threshold: number;
  operatingPoint: string;
}

/**
 * A result in one line, for where there is no card around it (the PACS report's text, the line burned into the
 * heat map): the card's headline, then the number and the operating point. Still a decision aid's words; an image
 * that cannot be assessed gets no number (its probability is no finding), one outside the intended population
 * its number for reference only, with no side of the threshold (the threshold was not validated for it).
 */
export function resultLine(r: ShownResult): string {
  // An assessed answer without a label (an older server's) is shown as the card shows it: no finding.
  if (r.status === 'cannot-assess' || r.label === null) return verdictHeadline('cannot-assess', null);
  const shown = percentPair(r.probability, r.threshold);
  if (r.status === 'outside-population') {
    return (
      `${verdictHeadline(r.status, r.label)}: ${shown.probability} probability of pneumonia, for reference only: ` +
      `not validated for this patient (${r.operatingPoint} threshold ${shown.threshold})`
    );
  }
  return (
    `${thresholdHeadline(r.label, r.probability, r.threshold)}: ${shown.probability} probability of pneumonia ` +
    `(${r.operatingPoint} operating point)`
  );
}
