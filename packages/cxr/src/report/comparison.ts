// Side-by-side comparison of several experiments (`cxr experiments`): comparison.md for the
// repository and comparison.html for reading, each with one row per experiment and its confusion matrix.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { z } from 'zod';
import { dec, formatDuration, formatInterval, pct, signed } from '../eval/format';
import { Metrics } from '../eval/metrics_schema';
import { pairedAucDifference, rocCurve } from '../eval/metrics';
import { confusionChart, DEFAULT_CLASS_NAMES, rocOverlayChart, type ClassNames } from './charts';
import { type Cell, htmlCell, mdCell, mdEscape } from './comparison_cells';
import { RECIPE_NOTE, recipeTable } from './comparison_recipes';
import { RobustnessColumns, robustColumns } from './comparison_robust';
import { chartBox, downloadLinks, escapeHtml, htmlPage, slug, table } from './html';
import { writeChart } from './render';
import { makeOutputDir } from '../make_dirs';

export const ExperimentSummary = z.object({
  name: z.string().min(1),
  description: z.string().default(''),
  metrics: Metrics,
  /** null when the run did not record its duration. */
  trainingSeconds: z.number().nonnegative().nullable(),
  runDir: z.string(),
  /** Validation labels and probabilities, for the ROC curves drawn on one plot. */
  predictions: z
    .object({ labels: z.array(z.number()), probs: z.array(z.number()), files: z.array(z.string()).optional() })
    .optional(),
  robustness: RobustnessColumns.optional(),
  /** The recipe the run trained (one of several seeds): runs sharing one also get a per-recipe row. */
  group: z.string().min(1).optional(),
});
export type ExperimentSummary = z.input<typeof ExperimentSummary>;

export interface ComparisonOptions {
  title?: string;
  /** What the metrics were computed on, as a phrase completing "Metrics on …" (default "the test set"). */
  split?: string;
  classNames?: ClassNames;
  /** Name of the experiment every other one is compared with (paired AUC difference on the same cases). */
  reference?: string;
}

type Prediction = NonNullable<ExperimentSummary['predictions']>;

/**
 * A film's split, class folder and name: predictions files name films relative to the data root
 * ('train/NORMAL/x.jpeg'), older ones by absolute path, and both must match.
 */
const filmKey = (f: string) => f.split(/[\\/]/).slice(-3).join('/');

/**
 * AUC(e) − AUC(reference) when both scored the same cases: rows matched by file where both list
 * files, else by position; null when the case sets or their labels differ.
 */
function aucVersusReference(
  e: Prediction,
  ref: Prediction,
): { difference: number; ci95: [number, number] | null } | null {
  const byFile = e.files?.length && ref.files?.length ? new Map(ref.files.map((f, i) => [filmKey(f), i])) : null;
  const row = e.labels.map((_, i) => (byFile ? byFile.get(filmKey(e.files![i])) : i));
  if (e.labels.length !== ref.labels.length || row.some((j, i) => j === undefined || ref.labels[j] !== e.labels[i]))
    return null;
  return pairedAucDifference(
    e.labels,
    row.map((j) => ref.probs[j!]),
    e.probs,
  );
}

interface Column {
  label: string;
  value: (m: Metrics) => number | null;
  /** The value and its 95% CI as text ('' when there is none). */
  cell: (m: Metrics) => Cell;
}

const COLUMNS: Column[] = [
  {
    label: 'Accuracy',
    value: (m) => m.accuracy,
    cell: (m) => [pct(m.accuracy), formatInterval(m.ci95.accuracy, true)],
  },
  {
    label: 'Sensitivity',
    value: (m) => m.sensitivity,
    cell: (m) => [pct(m.sensitivity), formatInterval(m.ci95.sensitivity, true)],
  },
  {
    label: 'Specificity',
    value: (m) => m.specificity,
    cell: (m) => [pct(m.specificity), formatInterval(m.ci95.specificity, true)],
  },
  { label: 'ROC AUC', value: (m) => m.auc, cell: (m) => [dec(m.auc), formatInterval(m.ci95.auc, false)] },
];

/** Index sets of the best experiment(s) per column, so the tables can highlight them. */
function bestPerColumn(list: readonly { metrics: Metrics }[]): Set<number>[] {
  return COLUMNS.map((c) => {
    const values = list.map((e) => c.value(e.metrics));
    const top = Math.max(...values.map((v) => v ?? -Infinity));
    return new Set(list.length > 1 && Number.isFinite(top) ? values.flatMap((v, i) => (v === top ? [i] : [])) : []);
  });
}

const duration = (s: number | null) => (s === null ? '—' : formatDuration(s));
const relLink = (from: string, to: string) => path.relative(from, to).split(path.sep).join('/') || '.';

/**
 * The page's Run cell: the run's folder, as the Markdown table names it (the word "report" alone told a reader
 * nothing of which run it was), and a link to its report where the folder has one when the page is drawn, else to
 * its model card. The committed run folders (docs/experiments/seed-recipes, shift) hold no report, and a link to one
 * was dead.
 */
function runLink(outDir: string, runDir: string): string {
  const folder = escapeHtml(relLink(outDir, runDir));
  const target = [
    ['report', path.join(runDir, 'report', 'index.html')],
    ['model card', path.join(runDir, 'MODEL_CARD.md')],
  ].find(([, file]) => existsSync(file));
  if (!target) return folder;
  return `${folder} (<a href="${escapeHtml(relLink(outDir, target[1]))}">${target[0]}</a>)`;
}

export async function writeComparison(
  experiments: readonly ExperimentSummary[],
  outDir: string,
  opts: ComparisonOptions = {},
): Promise<{ files: string[] }> {
  const list = z.array(ExperimentSummary).min(1, 'nothing to compare').parse(experiments);
  const classNames = opts.classNames ?? DEFAULT_CLASS_NAMES;
  const title = opts.title ?? 'Experiment comparison';
  const split = opts.split ?? 'the test set';
  makeOutputDir(outDir, 'comparison folder');
  const files: string[] = [];

  // Unique file names even when two experiment names slug alike. A numbered name is checked against every name
  // taken too: 'x', 'x-2' and 'X' gave 'X' the file of 'x-2', whose matrix the Markdown then showed as X's.
  const taken = new Set<string>();
  const bases = list.map((e) => {
    const s = slug(e.name);
    let name = s;
    for (let n = 2; taken.has(name); n++) name = `${s}-${n}`;
    taken.add(name);
    return `confusion-${name}`;
  });
  const svgs: string[] = [];
  for (const [i, e] of list.entries()) {
    const spec = confusionChart(e.metrics.confusion, {
      title: e.name,
      subtitle: `threshold ${e.metrics.threshold.toFixed(3)}`,
      classNames,
      cell: 80,
    });
    const r = await writeChart(spec, path.join(outDir, bases[i]));
    files.push(...r.files);
    svgs.push(r.svg);
  }

  const withRoc = list.filter((e) => e.predictions && e.predictions.labels.length > 0);
  // Each curve named as its row and confusion matrix are (the legend named runs by folder, the table by title, and a
  // reader could not tell which curve was which row); a name two runs share gets its folder too, or their curves
  // would be drawn as one series.
  const legendNames = new Map(
    withRoc.map((e) => {
      const shared = withRoc.filter((o) => o.name === e.name).length > 1;
      return [e, shared ? `${e.name} (${relLink(outDir, e.runDir)})` : e.name] as const;
    }),
  );
  let rocSvg: string | null = null;
  if (withRoc.length > 0) {
    const spec = rocOverlayChart(
      withRoc.map((e) => ({
        name: legendNames.get(e)!,
        auc: e.metrics.auc,
        points: rocCurve(e.predictions!.labels, e.predictions!.probs),
      })),
      { title: 'ROC curves', subtitle: split },
    );
    const r = await writeChart(spec, path.join(outDir, 'roc-comparison'));
    files.push(...r.files);
    rocSvg = r.svg;
  }
  // Each run's own training curves, where its report has them.
  const curves = await Promise.all(
    list.map(async (e) => {
      const base = path.join(e.runDir, 'report', 'training');
      return existsSync(`${base}.svg`) ? { png: `${base}.png`, svg: await readFile(`${base}.svg`, 'utf8') } : null;
    }),
  );

  const ref = opts.reference === undefined ? undefined : list.find((e) => e.name === opts.reference);
  const deltas = list.map((e) =>
    ref?.predictions && e.predictions && e !== ref ? aucVersusReference(e.predictions, ref.predictions) : null,
  );
  const deltaText = (i: number): Cell => {
    const d = deltas[i];
    if (list[i] === ref) return ['reference', ''];
    if (!d) return ['—', ''];
    return [signed(d.difference, 4), d.ci95 ? `${signed(d.ci95[0], 4)} to ${signed(d.ci95[1], 4)}` : ''];
  };
  const deltaLabel = ref ? [`ΔAUC vs ${ref.name.split(':')[0]}`] : [];
  const robust = robustColumns(list);
  const robustLabel = robust.labels;
  const robustCells = (e: (typeof list)[number]) => robust.cells(e.robustness);
  const recipes = recipeTable(list);

  const best = bestPerColumn(list);
  const intro =
    `Metrics on ${split}, each model at its own threshold; ` +
    '95% confidence intervals in brackets or below (Wilson for proportions, bootstrap for AUC). ' +
    'The best value per column is in bold.';
  const generated = new Date().toISOString().slice(0, 16).replace('T', ' ');

  // The reference's name in the ΔAUC header is text, escaped for each format: a '|' split the Markdown table, and
  // a '<' or '&' went into the page as markup (table() writes its header cells as they are).
  const headWith = (esc: (s: string) => string) => [
    'Experiment',
    ...COLUMNS.map((c) => c.label),
    ...deltaLabel.map(esc),
    ...robustLabel,
    'Threshold',
    'Training time',
    'Run',
  ];
  const head = headWith(mdEscape);
  const md: string[] = [
    `# ${title}`,
    '',
    `${intro} Generated ${generated} UTC.`,
    '',
    ...(ref
      ? [
          `ΔAUC: this row's validation AUC minus that of "${ref.name}" on the same images, ` +
            'with a paired bootstrap 95% interval ' +
            '(an interval that excludes 0 is a difference the validation set can tell apart).',
          '',
        ]
      : []),
    ...robust.notes,
    ...(recipes
      ? [
          '## Per recipe, over its seeds',
          '',
          RECIPE_NOTE,
          '',
          `| ${recipes.head.join(' | ')} |`,
          `|---|${recipes.head
            .slice(1)
            .map(() => '---:')
            .join('|')}|`,
          ...recipes.rows.map(
            (r) => `| ${[`**${mdEscape(r.group)}**`, r.runs, ...r.cells.map((c) => mdCell(c, false))].join(' | ')} |`,
          ),
          '',
          '## Per run',
          '',
        ]
      : []),
    `| ${head.join(' | ')} |`,
    `|---|${[...COLUMNS, ...deltaLabel, ...robustLabel].map(() => '---:').join('|')}|---:|---:|---|`,
    ...list.map((e, i) => {
      const cells = [
        ...COLUMNS.map((c, j) => mdCell(c.cell(e.metrics), best[j].has(i))),
        ...(ref ? [mdCell(deltaText(i), false)] : []),
        ...robustCells(e).map((c) => mdCell(c, false)),
      ];
      const name = `**${mdEscape(e.name)}**${e.description ? `<br>${mdEscape(e.description)}` : ''}`;
      const run = `[${mdEscape(relLink(outDir, e.runDir))}](${relLink(outDir, e.runDir)})`;
      return `| ${[name, ...cells, e.metrics.threshold.toFixed(3), duration(e.trainingSeconds), run].join(' | ')} |`;
    }),
    '',
    '## Confusion matrices',
    '',
    // Four to a table, so that a page of many experiments does not scroll sideways.
    ...Array.from({ length: Math.ceil(list.length / 4) }, (_, g) => list.slice(4 * g, 4 * g + 4)).flatMap(
      (group, g) => [
        `| ${group.map((e) => mdEscape(e.name)).join(' | ')} |`,
        `|${group.map(() => ':---:').join('|')}|`,
        `| ${group.map((e, k) => `![${mdEscape(e.name)}](${bases[4 * g + k]}.png)`).join(' | ')} |`,
        '',
      ],
    ),
    ...(rocSvg ? ['## ROC curves', '', '![ROC curves of every experiment](roc-comparison.png)', ''] : []),
    ...(curves.some(Boolean)
      ? [
          '## Training curves',
          '',
          ...list.flatMap((e, i) =>
            curves[i]
              ? [`### ${mdEscape(e.name)}`, '', `![training curves](${relLink(outDir, curves[i]!.png)})`, '']
              : [],
          ),
        ]
      : []),
  ];
  const mdFile = path.join(outDir, 'comparison.md');
  await writeFile(mdFile, md.join('\n'));
  files.push(mdFile);

  const rows = list.map((e, i) => [
    `<b>${escapeHtml(e.name)}</b>${e.description ? `<br><span class="desc">${escapeHtml(e.description)}</span>` : ''}`,
    ...COLUMNS.map((c, j) => htmlCell(c.cell(e.metrics), best[j].has(i))),
    ...(ref ? [htmlCell(deltaText(i), false)] : []),
    ...robustCells(e).map((c) => htmlCell(c, false)),
    e.metrics.threshold.toFixed(3),
    escapeHtml(duration(e.trainingSeconds)),
    runLink(outDir, e.runDir),
  ]);
  const confusionFigures = list.map((e, i) => {
    const svg = chartBox(svgs[i], bases[i], `Confusion matrix of ${e.name}`);
    return `<figure>${svg}<figcaption>${downloadLinks(bases[i])}</figcaption></figure>`;
  });
  // One entry per experiment, empty where a run has no training curves (as the page always had).
  const curveFigures = list.map((e, i) => {
    const c = curves[i];
    if (!c) return '';
    // The run folder's own file, which may come from anywhere (a colleague's archive): an SVG is a document that can
    // hold a script, which inlined would run in this page. As an image it is only drawn; the page stays self-contained.
    const img = chartBox(c.svg, '', `Training curves of ${e.name}`, true);
    return `<figure>${img}<figcaption>${escapeHtml(e.name)}</figcaption></figure>`;
  });
  const recipeSection = recipes
    ? `<section class="card">
<h2>Per recipe, over its seeds</h2>
<p>${escapeHtml(RECIPE_NOTE)}</p>
${table(
  recipes.head,
  recipes.rows.map((r) => [`<b>${escapeHtml(r.group)}</b>`, String(r.runs), ...r.cells.map((c) => htmlCell(c, false))]),
  'comparison recipes',
)}
</section>
`
    : '';
  const body = `<header><h1>${escapeHtml(title)}</h1><p>Generated ${escapeHtml(generated)} UTC</p></header>
${recipeSection}<section class="card">
${recipes ? '<h2>Per run</h2>\n' : ''}<p>${escapeHtml(intro)}</p>
${table(headWith(escapeHtml), rows, 'comparison')}
</section>
<h2>Confusion matrices</h2>
<div class="side">
${confusionFigures.join('\n')}
</div>${
    rocSvg
      ? `
<h2>ROC curves</h2>
<figure>${chartBox(rocSvg, 'roc-comparison', 'ROC curves of every experiment')}</figure>`
      : ''
  }${
    curves.some(Boolean)
      ? `
<h2>Training curves</h2>
<div class="figs one-col">
${curveFigures.join('\n')}
</div>`
      : ''
  }`;
  const htmlFile = path.join(outDir, 'comparison.html');
  await writeFile(htmlFile, htmlPage(title, body));
  files.push(htmlFile);
  return { files };
}
