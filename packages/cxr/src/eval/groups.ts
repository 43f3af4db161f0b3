// Metrics per group of films, the group read from each file's name by a regular expression
// (`cxr evaluate --groups`). A model's errors rarely spread evenly: on the official test split they
// sat in one file-name series, and in a hospital they may sit with one scanner or one site's folder.
// The whole-set figures hide that; this table shows it.
import * as path from 'node:path';
import { dec, pct } from './format';
import { type Interval, wilsonInterval } from './stats';

export interface GroupRow {
  group: string;
  n: number;
  normal: number;
  pneumonia: number;
  /** Share of the group's PNEUMONIA films called PNEUMONIA; null when it has none. */
  sensitivity: number | null;
  /** Share of the group's NORMAL films called NORMAL; null when it has none. */
  specificity: number | null;
  meanNormalScore: number | null;
  meanPneumoniaScore: number | null;
  /**
   * Wilson intervals of the two rates, as the whole set's: a group is often a handful of films (one scanner, one
   * ward), and "80 %" of 5 films says far less than of 500.
   */
  ci95: { sensitivity: Interval | null; specificity: Interval | null };
}

/** Films whose name the pattern does not match. */
export const UNMATCHED_GROUP = '(no match)';

/** The pattern from a command line, or a readable error. */
export function groupPattern(text: string): RegExp {
  if (!text) throw new Error('--groups: empty pattern');
  try {
    return new RegExp(text);
  } catch (e) {
    throw new Error(`--groups: '${text}' is not a regular expression (${(e as Error).message})`);
  }
}

/** The group of one file: the pattern's first capture group on the file's base name, else its whole match. */
export function groupOf(file: string, pattern: RegExp): string {
  const m = pattern.exec(path.basename(file));
  if (!m) return UNMATCHED_GROUP;
  return m[1] ?? m[0];
}

const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : null);

/** One row per group (sorted by name), each at the same threshold as the whole set. */
export function metricsByGroup(
  files: readonly string[],
  labels: ArrayLike<number>,
  probs: ArrayLike<number>,
  threshold: number,
  /** A pattern read by groupOf, or the group of the film at index i. */
  pattern: RegExp | ((file: string, i: number) => string),
): GroupRow[] {
  if (files.length !== labels.length || files.length !== probs.length)
    throw new RangeError(`metricsByGroup: ${files.length} files, ${labels.length} labels, ${probs.length} scores`);
  const scores = new Map<string, { normal: number[]; pneumonia: number[] }>();
  files.forEach((f, i) => {
    const g = typeof pattern === 'function' ? pattern(f, i) : groupOf(f, pattern);
    const s = scores.get(g) ?? { normal: [], pneumonia: [] };
    (labels[i] === 1 ? s.pneumonia : s.normal).push(probs[i]);
    scores.set(g, s);
  });
  return [...scores.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([group, s]) => {
      const tp = s.pneumonia.filter((p) => p >= threshold).length;
      const tn = s.normal.filter((p) => p < threshold).length;
      return {
        group,
        n: s.normal.length + s.pneumonia.length,
        normal: s.normal.length,
        pneumonia: s.pneumonia.length,
        sensitivity: s.pneumonia.length ? tp / s.pneumonia.length : null,
        specificity: s.normal.length ? tn / s.normal.length : null,
        meanNormalScore: mean(s.normal),
        meanPneumoniaScore: mean(s.pneumonia),
        ci95: { sensitivity: wilsonInterval(tp, s.pneumonia.length), specificity: wilsonInterval(tn, s.normal.length) },
      };
    });
}

/** A plain-text table for the terminal. */
export function formatGroupTable(rows: readonly GroupRow[]): string {
  const share = (v: number | null, n: number) => (v === null ? '—' : `${pct(v)} (${Math.round(v * n)}/${n})`);
  const interval = (ci: Interval | null) => (ci === null ? '—' : `${pct(ci[0], 0)}–${pct(ci[1], 0)}`);
  const num = (v: number | null) => (v === null ? '—' : dec(v));
  // Each rate's 95% interval, as the whole set's table gives them, in columns after the earlier ones.
  const head = [
    'group',
    'films',
    'specificity (NORMAL called NORMAL)',
    'sensitivity',
    'mean NORMAL score',
    'specificity 95% CI',
    'sensitivity 95% CI',
  ];
  const body = rows.map((r) => [
    r.group,
    String(r.n),
    share(r.specificity, r.normal),
    share(r.sensitivity, r.pneumonia),
    num(r.meanNormalScore),
    interval(r.ci95.specificity),
    interval(r.ci95.sensitivity),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(head), ...body.map(line)].join('\n');
}
