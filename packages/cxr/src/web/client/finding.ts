// How an answer's finding is shown, one rule for the Analyze cards, the History rows and what a
// screen reader is told: a finding (green/red) only for an assessed image; an image outside the
// intended population gets the warning style and its number "for reference only", never a red
// PNEUMONIA; one that cannot be assessed gets no finding and no number.
import { INTENDED_POPULATION, type VerdictStatus, verdictHeadline } from '../../predict/verdict';
import { percent } from './dom';

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
  if (view.tone === 'cannot-assess') return `${a.name}: cannot assess: ${a.reasons[0] ?? 'the image is not readable'}.`;
  if (view.tone === 'outside-population') {
    return (
      `${a.name}: outside the intended population (${INTENDED_POPULATION}); ` +
      `${percent(a.probability)} probability of pneumonia, for reference only.`
    );
  }
  const side = a.probability >= a.threshold ? 'above' : 'below';
  return (
    `${a.name}: ${view.headline}, ${percent(a.probability)}, ${side} the ${percent(a.threshold)} ` +
    `threshold (${a.operatingPoint}).`
  );
}
