// What a stored evaluation (`cxr evaluate --out`) records beside its numbers, as the report's notes on its split:
// which films and operating point it is of, the films the model trained or was validated on (its figures are then
// optimistic), the files no reader could read, the films the pipeline sets aside.
import { unreadableNote } from '../eval/format';
import type { SetAsideFiles } from '../eval/metrics_schema';
import type { OverlapRecord } from '../eval/training_overlap';
import type { SplitData } from './run_dir';

/** The statuses in words, as `cxr evaluate` says them. */
export const STATUS_WORDS: Record<SetAsideFiles['files'][number]['status'], string> = {
  'cannot-assess': 'cannot assess',
  'outside-population': 'outside the intended population',
  refused: 'refused with an input error',
};

/**
 * The set-aside films a summary names (`shown` of them): the first of each status, then the rest in order, so that
 * one outside-population film is not hidden behind a run of blank ones; in the list's order.
 */
export function setAsideShown(files: SetAsideFiles['files'], shown: number): SetAsideFiles['files'] {
  const firsts = new Set([...new Set(files.map((f) => f.status))].map((s) => files.find((f) => f.status === s)));
  const picked = new Set([...new Set([...firsts, ...files])].slice(0, shown));
  return files.filter((f) => picked.has(f));
}

/** The set-aside films in one note: the first `shown` with status and reasons, then how many more. */
export function setAsideNote(s: SetAsideFiles, shown = 10): string {
  const listed = setAsideShown(s.files, shown).map(
    // The status in brackets: an outside-population reason opens with the same words.
    (f) => `${f.file} [${STATUS_WORDS[f.status]}]${f.reasons.length ? `: ${f.reasons.join(' / ')}` : ''}`,
  );
  const more = s.count - listed.length;
  return (
    `${s.count} ${s.count === 1 ? 'film' : 'films'} the prediction pipeline (cxr predict, the server) would not ` +
    `assess ${s.count === 1 ? 'is' : 'are'} in these numbers but not in the assessed films' metrics: ` +
    `${listed.join('; ')}${more > 0 ? `; and ${more} more (listed in the metrics file)` : ''}`
  );
}

/**
 * The films of an evaluation the model has seen, in one note: how many of each split, how they were matched, the
 * first `shown` of them. A figure on films a model learned reads like one on new films, unless the report says so.
 */
export function overlapNote(o: NonNullable<OverlapRecord>, shown = 5): string {
  const seen = o.training.count + o.validation.count;
  const parts = [
    ...(o.training.count ? [`${o.training.count} in its training split (it learned them)`] : []),
    ...(o.validation.count
      ? [`${o.validation.count} in its validation split (its operating points and best epoch were chosen on them)`]
      : []),
  ];
  const how =
    o.matchedBy === 'fingerprint'
      ? 'confirmed by the fingerprint it records'
      : o.unconfirmed === 'fingerprint-differs'
        ? 'not confirmed: the films there no longer give the fingerprint it records'
        : 'not confirmed: it records no fingerprint';
  const files = [...o.training.files, ...o.validation.files];
  const more = seen - Math.min(shown, files.length);
  return (
    `OPTIMISTIC: the model has seen ${seen} of these films, ${parts.join(' and ')}: these figures are not what ` +
    `it does on films it never saw. Matched by their bytes against its split made again in ${o.root} (${how}): ` +
    `${files.slice(0, shown).join('; ')}${more > 0 ? `; and ${more} more (listed in the metrics file)` : ''}.`
  );
}

/** The notes a split's section opens with, from what its metrics file records (none for training's own files). */
export function recordedNotes(split: SplitData): string[] {
  const { source, operatingPoint } = split.origin ?? {};
  const of = [
    ...(source ? [`the films of ${source}`] : []),
    ...(operatingPoint ? [`at operating point ${operatingPoint}`] : []),
  ];
  return [
    ...(of.length ? [`Evaluated on ${of.join(', ')} (cxr evaluate --out).`] : []),
    ...(split.trainingOverlap ? [overlapNote(split.trainingOverlap)] : []),
    ...(split.unreadable?.count ? [unreadableNote(split.unreadable)] : []),
    ...(split.setAside?.count ? [setAsideNote(split.setAside)] : []),
  ];
}
