// The comparison's robustness columns: the three of `cxr experiments seed --robustness`, and the
// shift set of `cxr experiments shift` (sensitivity, AUC and NORMAL score shift under the changes,
// the outside check) only when some row carries it, so that tables without it keep their columns.
import { z } from 'zod';
import { dec, pct, signed } from '../eval/format';
import type { Cell } from './comparison_cells';

/** Clean figures on Kaggle's val folder (the `outside` block of a robustness result). */
export const OutsideSummary = z.object({
  n: z.number().int().positive(),
  /** NORMAL films among the n; null when the result did not record it. */
  normal: z.number().int().nonnegative().nullable(),
  specificity: z.number().nullable(),
  auc: z.number().nullable(),
});
export type OutsideSummary = z.infer<typeof OutsideSummary>;

export const ShiftSummary = z.object({
  robustSensitivity: z.number().nullable(),
  meanAuc: z.number().nullable(),
  meanNormalScoreShift: z.number().nullable(),
  /** null when the run has no outside check. */
  outside: OutsideSummary.nullable(),
});

/** The summary of the run's robustness.json (`cxr robustness`), when it has one. */
export const RobustnessColumns = z.object({
  robustSpecificity: z.number().nullable(),
  worstSpecificity: z.number().nullable(),
  meanEce: z.number(),
  /** The shift experiments' further columns. */
  shift: ShiftSummary.optional(),
});
export type RobustnessColumns = z.infer<typeof RobustnessColumns>;

/** NORMAL films of the outside check called PNEUMONIA, from its specificity; null when unknown. */
export function normalCalledPneumonia(o: OutsideSummary): number | null {
  return o.normal === null || o.specificity === null ? null : o.normal - Math.round(o.specificity * o.normal);
}

const dash: Cell = ['—', ''];

export interface RobustColumnSet {
  labels: string[];
  cells: (r: RobustnessColumns | undefined) => Cell[];
  /** Markdown paragraphs that explain the columns, each followed by a blank line. */
  notes: string[];
}

export function robustColumns(rows: readonly { robustness?: RobustnessColumns }[]): RobustColumnSet {
  // Columns only when some run was benchmarked (a missing one shows a dash).
  if (!rows.some((e) => e.robustness)) return { labels: [], cells: () => [], notes: [] };
  const shift = rows.some((e) => e.robustness?.shift);
  const labels = [
    'Robust specificity',
    'Worst specificity',
    'Mean ECE (shifted)',
    ...(shift
      ? ['Robust sensitivity', 'Mean AUC (shifted)', 'NORMAL score shift', 'Kaggle val specificity', 'Kaggle val AUC']
      : []),
  ];
  const cells = (r: RobustnessColumns | undefined): Cell[] => {
    if (!r) return labels.map(() => dash);
    const base: Cell[] = [
      [pct(r.robustSpecificity), ''],
      [pct(r.worstSpecificity), ''],
      [r.meanEce.toFixed(3), ''],
    ];
    if (!shift) return base;
    const s = r.shift;
    if (!s) return [...base, dash, dash, dash, dash, dash];
    const o = s.outside;
    const k = o && normalCalledPneumonia(o);
    return [
      ...base,
      [pct(s.robustSensitivity), ''],
      [dec(s.meanAuc), ''],
      [signed(s.meanNormalScoreShift), ''],
      o ? [pct(o.specificity), k === null ? '' : `NORMAL called PNEUMONIA ${k}/${o.normal}`] : dash,
      o ? [dec(o.auc), ''] : dash,
    ];
  };
  const notes = [
    'Robust specificity: mean specificity over every nuisance change and strength of `cxr robustness` ' +
      '(its own images and operating point); worst: the lowest of them; mean ECE over the same rows.',
    '',
    ...(shift
      ? [
          'Robust sensitivity and mean AUC (shifted): the same means of sensitivity and AUC; NORMAL score shift: ' +
            "the NORMAL films' mean change of score under the changes (positive: towards PNEUMONIA). " +
            "Kaggle val: the outside check on Kaggle's 16-film val folder, clean, used for no choice.",
          '',
        ]
      : []),
  ];
  return { labels, cells, notes };
}
