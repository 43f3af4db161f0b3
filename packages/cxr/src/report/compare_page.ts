// The page of `cxr compare --out DIR`: comparisons/<split>.html beside the comparison's JSON, with the two models,
// the paired table (each model's figures, B − A and its test), both ROC curves on one plot and each confusion matrix.
// Drawn with the report floor's own charts, cells and page shell, as `cxr report` and `cxr experiments` draw theirs.
import { writeFile } from 'node:fs/promises';
import { dec, formatInterval, pct, signed } from '../eval/format';
import { rocCurve } from '../eval/metrics';
import type { EvaluatedModel, Metrics } from '../eval/metrics_schema';
import type { PairedComparison, PairedRate } from '../eval/paired';
import type { OverlapRecord } from '../eval/training_overlap';
import { confusionChart, rocOverlayChart } from './charts';
import { type Cell, htmlCell } from './comparison_cells';
import { overlapNote } from './evaluation_notes';
import { escapeHtml, figureHtml, htmlPage, table } from './html';
import { writeChart } from './render';

/** One model of the comparison, as `cxr compare` scored it. */
export interface ComparedSide {
  dir: string;
  model: EvaluatedModel;
  operatingPoint: string;
  metrics: Pick<Metrics, 'n' | 'accuracy' | 'sensitivity' | 'specificity' | 'auc' | 'threshold' | 'confusion' | 'ci95'>;
  /** Everything its evaluation noted: the page has no stderr to have said the pipeline's notes on. */
  notes: string[];
  trainingOverlap: OverlapRecord;
  /** The training seed its cxr.json records; two seeds of one recipe share a name and differ in it alone. */
  seed?: number;
}

export type ComparedModels = PairedComparison & {
  source: string;
  split: string;
  a: ComparedSide;
  b: ComparedSide;
};

/** The films both models scored, in one order: their labels and each model's probabilities. */
export interface ComparedFilms {
  labels: readonly number[];
  probsA: readonly number[];
  probsB: readonly number[];
}

/** A model as a person tells it from the other: its name, version and, where recorded, its seed. */
export function sideName(s: ComparedSide): string {
  return `${s.model.name} v${s.model.version}${s.seed === undefined ? '' : `, seed ${s.seed}`}`;
}

const ratePair = (m: ComparedSide['metrics'], k: 'accuracy' | 'sensitivity' | 'specificity'): Cell => [
  pct(m[k]),
  formatInterval(m.ci95[k], true),
];
const aucCell = (m: ComparedSide['metrics']): Cell => [dec(m.auc), formatInterval(m.ci95.auc, false)];
/** A difference of two shares in percentage points, as the shares are shown in percent. */
const points = (a: number | null, b: number | null) =>
  a === null || b === null ? 'n/a' : `${signed(100 * (b - a), 1)} pp`;

function mcnemar(p: PairedRate, films: string): string {
  if (p.a === null || p.b === null) return `n/a (no ${films} films)`;
  return (
    `McNemar exact p = ${p.p === null ? 'n/a' : p.p.toPrecision(3)}: right by A alone ${p.onlyA}, ` +
    `by B alone ${p.onlyB}, of ${p.n} ${films} films`
  );
}

/** The paired table's rows: metric, A, B, B − A, and the test of the difference (HTML cells). */
function pairedRows(r: ComparedModels): string[][] {
  const a = r.a.metrics;
  const b = r.b.metrics;
  const d = r.aucDifference;
  const aucDiff: Cell = d
    ? [signed(d.difference), d.ci95 ? `${signed(d.ci95[0])} to ${signed(d.ci95[1])}` : '']
    : ['n/a', ''];
  return [
    [
      'ROC AUC',
      htmlCell(aucCell(a), false),
      htmlCell(aucCell(b), false),
      htmlCell(aucDiff, false),
      d ? 'paired bootstrap' : 'n/a (both classes needed)',
    ],
    [
      'Accuracy',
      htmlCell(ratePair(a, 'accuracy'), false),
      htmlCell(ratePair(b, 'accuracy'), false),
      escapeHtml(points(a.accuracy, b.accuracy)),
      '—',
    ],
    [
      'Sensitivity',
      htmlCell(ratePair(a, 'sensitivity'), false),
      htmlCell(ratePair(b, 'sensitivity'), false),
      escapeHtml(points(r.sensitivity.a, r.sensitivity.b)),
      escapeHtml(mcnemar(r.sensitivity, 'pneumonia')),
    ],
    [
      'Specificity',
      htmlCell(ratePair(a, 'specificity'), false),
      htmlCell(ratePair(b, 'specificity'), false),
      escapeHtml(points(r.specificity.a, r.specificity.b)),
      escapeHtml(mcnemar(r.specificity, 'normal')),
    ],
  ];
}

/** Each side's notes and the films it has seen, each said once and prefixed with the side it is of. */
function sideNotes(tag: string, s: ComparedSide): string[] {
  return [...new Set(s.notes)]
    .map((n) => `${tag}: ${n}`)
    .concat(s.trainingOverlap ? [`${tag}: ${overlapNote(s.trainingOverlap)}`] : []);
}

/**
 * Writes `<base>.html` and its figures (`<base>-roc`, `<base>-confusion-a`, `-b`, each .svg and .png) for a
 * comparison of `films`; returns every file written, the page last.
 */
export async function writeComparePage(
  r: ComparedModels,
  films: ComparedFilms,
  base: string,
): Promise<{ files: string[] }> {
  const files: string[] = [];
  const figure = async (suffix: string, spec: Parameters<typeof writeChart>[0], caption: string) => {
    const out = await writeChart(spec, `${base}-${suffix}`);
    files.push(...out.files);
    return figureHtml({ base: `${base}-${suffix}`, svg: out.svg, caption });
  };
  const sides = [
    ['A', r.a, films.probsA],
    ['B', r.b, films.probsB],
  ] as const;
  const positives = films.labels.filter((y) => y === 1).length;
  const normals = films.labels.length - positives;
  // A curve needs both classes: without them it would only mislead.
  const roc =
    positives > 0 && normals > 0
      ? await figure(
          'roc',
          rocOverlayChart(
            sides.map(([tag, s, probs]) => ({
              name: `${tag}: ${sideName(s)}`,
              auc: s.metrics.auc,
              points: rocCurve(films.labels, probs),
            })),
            { title: 'ROC curves of A and B', subtitle: `${r.n} films of ${r.source}, the same for both` },
          ),
          'ROC curves of A and B. Each point of a curve is one threshold; the higher and further left, the ' +
            'better. Both models are scored on the same films, so where the curves cross neither is better everywhere.',
        )
      : '<p class="note">No ROC curves: the films hold one class only.</p>';
  const confusions: string[] = [];
  for (const [tag, s] of sides)
    confusions.push(
      await figure(
        `confusion-${tag.toLowerCase()}`,
        confusionChart(s.metrics.confusion, {
          title: `${tag}: ${sideName(s)}`,
          subtitle: `${s.operatingPoint}, threshold ${s.metrics.threshold.toFixed(3)}`,
          cell: 80,
        }),
        `Confusion matrix of ${tag}, at its operating point ${s.operatingPoint}`,
      ),
    );

  const title = `Comparison — A: ${sideName(r.a)} · B: ${sideName(r.b)}`;
  const generated = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const modelRows = sides.map(([tag, s]) =>
    [
      tag,
      s.model.name,
      s.model.version,
      s.seed === undefined ? '—' : String(s.seed),
      s.dir,
      `${s.operatingPoint} (${s.metrics.threshold.toFixed(3)})`,
    ].map(escapeHtml),
  );
  const notes = [...sideNotes('A', r.a), ...sideNotes('B', r.b)];
  const body =
    `<header>
<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(`${r.n} films (${positives} pneumonia, ${normals} normal) of ${r.source}, the same films for both`)}` +
    ` · generated ${escapeHtml(generated)} UTC</p>
</header>
<section class="card">
<h2>The two models</h2>
${table(['', 'Name', 'Version', 'Training seed', 'Folder', 'Operating point (threshold)'], modelRows)}
</section>
<section class="card">
<h2>Paired figures</h2>
<p>${escapeHtml(
      'Each model at its own threshold, on the same films; 95% intervals below each value (Wilson for proportions, ' +
        'bootstrap for AUC). B − A: the AUC difference with a paired bootstrap 95% interval (an interval that ' +
        'excludes 0 is a difference these films can tell apart); for sensitivity and specificity the difference ' +
        'in percentage points (pp) and the exact McNemar test, which counts only the films the two call differently.',
    )}</p>
${table(['Metric', 'A', 'B', 'B − A', 'Paired test'], pairedRows(r), 'comparison')}
${notes.map((n) => `<p class="note">${escapeHtml(n)}</p>`).join('\n')}
</section>
<h2>ROC curves</h2>
${roc}
<h2>Confusion matrices</h2>
<div class="side">
${confusions.join('\n')}
</div>`;
  const page = `${base}.html`;
  await writeFile(page, htmlPage(title, body));
  files.push(page);
  return { files };
}
