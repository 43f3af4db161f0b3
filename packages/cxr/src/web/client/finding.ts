// How an answer's finding is shown, one rule for the Analyze cards, the History rows and what a
// screen reader is told: a finding (green/red) only for an assessed image; an image outside the
// intended population gets the warning style and its number "for reference only", never a red
// PNEUMONIA; one that cannot be assessed gets no finding and no number.
import { thresholdHeadline } from '../../predict/result_words';
import { INTENDED_POPULATION, type VerdictStatus, verdictHeadline } from '../../predict/verdict';
import { percent, percentPair } from './dom';
import { warningText } from './warning_text';

export type Label = 'NORMAL' | 'PNEUMONIA';

export interface FindingView {
  /** The CSS class of the badge or tag: the label's colours only for an assessed image. */
  tone: Label | 'cannot-assess' | 'outside-population';
  /** The card's headline ("Signs of pneumonia detected", "Outside the intended population (…)"). */
  headline: string;
  /** The History table's short form: the label, "Cannot assess" or "Outside the intended population". */
  short: string;
  /** Whether the probability is shown at all. */
  showsProbability: boolean;
  /** Said after the probability, or null: why the number is not a finding. */
  probabilityNote: string | null;
}

export function findingView(status: VerdictStatus, label: Label | null): FindingView {
  if (status === 'cannot-assess' || (status === 'assessed' && label === null)) {
    return {
      tone: 'cannot-assess',
      headline: verdictHeadline('cannot-assess', null),
      short: 'Cannot assess',
      showsProbability: false,
      probabilityNote: null,
    };
  }
  if (status === 'outside-population') {
    return {
      tone: 'outside-population',
      headline: verdictHeadline(status, label),
      short: 'Outside the intended population',
      showsProbability: true,
      probabilityNote: 'for reference only: not validated for this patient',
    };
  }
  const l = label as Label;
  return { tone: l, headline: verdictHeadline(status, l), short: l, showsProbability: true, probabilityNote: null };
}

/**
 * How far from its threshold a probability is "close to the threshold": within a factor of 1.5 of it on the odds
 * scale (|logit p − logit threshold| ≤ ln 1.5 ≈ 0.41; with the shipped balanced threshold, 15.7 %, from 11.1 % to
 * 21.9 %), on either side. On the odds scale because calibrated probabilities crowd near 0 and near 1, where
 * 3 points are a large step, and a site's films shift logits roughly additively (eval/operating_points.ts). Why
 * 1.5: the robustness benchmark's changes of a film that should not change its reading (exposure, blur,
 * re-encoding, framing) move the shipped model's NORMAL scores up by 0.03 on average (docs/robustness.md), about
 * 0.2 in logit at that threshold; the margin is twice that mean, for the single films that move more than the
 * average (the benchmark reports the mean only). A film this close could come out on the other side from another
 * exposure of the same chest: its finding is a weak one either way.
 */
export const NEAR_ODDS_FACTOR = 1.5;

function logit(p: number): number {
  const q = Math.min(1 - 1e-12, Math.max(1e-12, p));
  return Math.log(q / (1 - q));
}

/** Whether `probability` is close to `threshold` (NEAR_ODDS_FACTOR), on either side. */
export function nearThreshold(probability: number, threshold: number): boolean {
  return Math.abs(logit(probability) - logit(threshold)) <= Math.log(NEAR_ODDS_FACTOR);
}

/** The card's note for a finding close to its threshold, or null: on which side, and what that means. */
export function nearThresholdNote(a: {
  status: VerdictStatus;
  label: Label | null;
  probability: number;
  threshold: number;
}): string | null {
  // Only for a finding: an answer outside the intended population has none, whatever its number.
  const tone = findingView(a.status, a.label).tone;
  if ((tone !== 'NORMAL' && tone !== 'PNEUMONIA') || !nearThreshold(a.probability, a.threshold)) return null;
  const side = a.probability >= a.threshold ? 'above' : 'below';
  // Short, for a busy reader; no "read with particular care", which implied other films need less. The rule
  // is said with its numbers for this threshold: a reader saw the note at 14.9 % and 18.1 % and not at 31 %, and
  // could not tell why (a fixed distance in points would be wrong near 0 and 1, NEAR_ODDS_FACTOR).
  const range = nearRange(a.threshold);
  return (
    `Close to the threshold (${side} it): a weak finding — a slightly different image could fall on the ` +
    `other side. "Close" here is ${range.from} to ${range.to} (within ${NEAR_ODDS_FACTOR} times the ` +
    "threshold's odds either way); further from it the finding is not marked weak."
  );
}

/** The probabilities counted as close to `threshold` (nearThreshold), as the card says them. */
export function nearRange(threshold: number): { from: string; to: string } {
  const odds = threshold / (1 - threshold);
  const at = (o: number) => o / (1 + o);
  return { from: percent(at(odds / NEAR_ODDS_FACTOR)), to: percent(at(odds * NEAR_ODDS_FACTOR)) };
}

/**
 * The card's headline for an assessed answer, worded as what the number is measured against: "Signs of pneumonia
 * detected" beside "18.1 % probability of pneumonia" read as a contradiction to a clinician (18 % sounds
 * unlikely). The label is the number over or under the operating point's threshold, and the headline says so;
 * other answers keep their headline (findingView). The screen reader's sentence (announcement) says the same.
 */
export function cardHeadline(view: FindingView, a: { probability: number; threshold: number }): string {
  if (view.tone !== 'NORMAL' && view.tone !== 'PNEUMONIA') return view.headline;
  // The wording is shared with the report and heat map written into the PACS (predict/result_words.ts).
  return thresholdHeadline(view.tone, a.probability, a.threshold);
}

/**
 * The one sentence a screen reader hears when a card is finished: the file, the finding and the number
 * against the threshold, or why there is none.
 */
export function announcement(a: {
  name: string;
  status: VerdictStatus;
  label: Label | null;
  probability: number;
  threshold: number;
  operatingPoint: string;
  reasons: readonly string[];
}): string {
  const view = findingView(a.status, a.label);
  // Said in plain words, as the card shows them (warning_text.ts): the figures are on the card only.
  const reasons = a.reasons.map((r) => warningText(r).plain);
  if (view.tone === 'cannot-assess') return `${a.name}: cannot assess: ${reasons[0] ?? 'the image is not readable'}.`;
  if (view.tone === 'outside-population') {
    // Why, as the card says it ("... the age given with the image is a patient age over 10 years"): a listener
    // otherwise heard the population and not what put the film outside it.
    const why = reasons.find((r) => r.startsWith('outside the intended population'))?.replace(/\.$/, '');
    return (
      `${a.name}: ${why ?? `outside the intended population (${INTENDED_POPULATION})`}; ` +
      `${percent(a.probability)} probability of pneumonia, for reference only.`
    );
  }
  // Worded as the card's headline (cardHeadline): the side of the threshold, then the two numbers. "Signs of
  // pneumonia detected" before "18.1 %" was what the headline stopped saying, and a listener heard it still.
  const near = nearThreshold(a.probability, a.threshold);
  const side = view.tone === 'PNEUMONIA' ? 'Above' : 'Below';
  const shown = percentPair(a.probability, a.threshold);
  return (
    `${a.name}: ${side} the pneumonia threshold: ${shown.probability} probability of pneumonia, threshold ` +
    `${shown.threshold} (${a.operatingPoint})${near ? ': close to the threshold, a weak finding' : ''}.` +
    warningsSaid(reasons)
  );
}

/**
 * A finding's warnings as said after it: the card shows them under the finding ("unusually wide image … check the
 * film as exported"), and a listener who heard the finding alone took it as unqualified. The first in full, the
 * others counted: each is a sentence long.
 */
function warningsSaid(warnings: readonly string[]): string {
  if (warnings.length === 0) return '';
  const more = warnings.length - 1;
  const first = warnings[0].replace(/\.$/, '');
  return ` Warning: ${first}.${more ? ` ${more} more on the card.` : ''}`;
}
