// The comparison's per-recipe table: runs that share a `group` (a recipe trained with several
// seeds) summarised as mean (min–max) of each figure a recipe is chosen on, plus the outside check.
import { dec, pct } from '../eval/format';
import type { Metrics } from '../eval/metrics_schema';
import type { Cell } from './comparison_cells';
import { normalCalledPneumonia, type RobustnessColumns } from './comparison_robust';

interface Run {
  group?: string;
  metrics: Metrics;
  robustness?: RobustnessColumns;
}

interface Figure {
  label: string;
  value: (e: Run) => number | null | undefined;
  format: (x: number) => string;
}

const ece = (x: number) => x.toFixed(3);

export const RECIPE_FIGURES: readonly Figure[] = [
  { label: 'Validation AUC', value: (e) => e.metrics.auc, format: dec },
  { label: 'Validation ECE', value: (e) => e.metrics.ece, format: ece },
  { label: 'Robust specificity', value: (e) => e.robustness?.robustSpecificity, format: pct },
  { label: 'Robust sensitivity', value: (e) => e.robustness?.shift?.robustSensitivity, format: pct },
  { label: 'Mean AUC (shifted)', value: (e) => e.robustness?.shift?.meanAuc, format: dec },
  { label: 'Mean ECE (shifted)', value: (e) => e.robustness?.meanEce, format: ece },
  { label: 'Kaggle val specificity', value: (e) => e.robustness?.shift?.outside?.specificity, format: pct },
  { label: 'Kaggle val AUC', value: (e) => e.robustness?.shift?.outside?.auc, format: dec },
];

/** Mean of the runs' values, their range, and how many runs lack the figure. */
function summaryCell(runs: readonly Run[], f: Figure): Cell {
  const xs = runs.flatMap((e) => {
    const v = f.value(e);
    return v === null || v === undefined ? [] : [v];
  });
  if (xs.length === 0) return ['—', ''];
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const range = xs.length > 1 ? `${f.format(Math.min(...xs))} – ${f.format(Math.max(...xs))}` : '';
  const partial = xs.length < runs.length ? `${xs.length} of ${runs.length} runs` : '';
  return [f.format(mean), [range, partial].filter(Boolean).join('; ')];
}

/** NORMAL films of the outside check called PNEUMONIA, summed over the runs that recorded it. */
function outsideCount(runs: readonly Run[]): Cell {
  let k = 0;
  let n = 0;
  for (const e of runs) {
    const o = e.robustness?.shift?.outside;
    const called = o ? normalCalledPneumonia(o) : null;
    if (!o || called === null || o.normal === null) continue;
    k += called;
    n += o.normal;
  }
  return n > 0 ? [`${k}/${n}`, ''] : ['—', ''];
}

export const RECIPE_NOTE =
  'Recipes are chosen on the validation split and the robustness benchmark only; ' +
  "Kaggle's val folder is an outside check, used for no choice. " +
  "Each cell is the mean over the recipe's runs (one per seed), with the lowest and highest in brackets; " +
  'the last column counts the NORMAL films of the val folder called PNEUMONIA over all the runs together ' +
  '(every run scores the same films, so 6/16 over two runs is 3 of the 8 NORMAL films per run on average).';

/** One row per group in the order groups first appear; null when no run belongs to a group. */
export function recipeTable(
  list: readonly Run[],
): { head: string[]; rows: { group: string; runs: number; cells: Cell[] }[] } | null {
  const groups = new Map<string, Run[]>();
  for (const e of list) if (e.group !== undefined) groups.set(e.group, [...(groups.get(e.group) ?? []), e]);
  if (groups.size === 0) return null;
  // Summed, not averaged like the other cells: the header says so (a reader took 6/16 for 6 of the 16 films).
  const head = [
    'Recipe',
    'Runs',
    ...RECIPE_FIGURES.map((f) => f.label),
    'Kaggle val NORMAL called PNEUMONIA, all runs',
  ];
  const rows = [...groups].map(([group, runs]) => ({
    group,
    runs: runs.length,
    cells: [...RECIPE_FIGURES.map((f) => summaryCell(runs, f)), outsideCount(runs)],
  }));
  return { head, rows };
}
