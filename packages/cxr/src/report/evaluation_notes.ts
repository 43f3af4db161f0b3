// What a stored evaluation (`cxr evaluate --out`) records beside its numbers, as the report's notes on its split:
// which films and operating point it is of, the files no reader could read, the films the pipeline sets aside.
import { unreadableNote } from '../eval/format';
import type { SetAsideFiles } from '../eval/metrics_schema';
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

/** The notes a split's section opens with, from what its metrics file records (none for training's own files). */
export function recordedNotes(split: SplitData): string[] {
  const { source, operatingPoint } = split.origin ?? {};
  const of = [
    ...(source ? [`the films of ${source}`] : []),
    ...(operatingPoint ? [`at operating point ${operatingPoint}`] : []),
  ];
  return [
    ...(of.length ? [`Evaluated on ${of.join(', ')} (cxr evaluate --out).`] : []),
    ...(split.unreadable?.count ? [unreadableNote(split.unreadable)] : []),
    ...(split.setAside?.count ? [setAsideNote(split.setAside)] : []),
  ];
}
