// Vega-Lite specs for the report's plots. Pure functions of the data, so they can be tested and
// reused (the comparison page draws the same confusion matrix, smaller).
import type { Confusion } from '../eval/metrics_schema';
import type { PrPoint, ReliabilityBin, RocPoint } from '../eval/metrics';
import type { ChartSpec } from './render';

export type ClassNames = readonly [string, string];
export const DEFAULT_CLASS_NAMES: ClassNames = ['normal', 'pneumonia'];

/** A threshold shown on the curves: where the model would operate. */
export interface MarkedPoint {
  name: string;
  threshold: number;
  /** null where the split lacks the class the rate needs. */
  sensitivity: number | null;
  specificity: number | null;
  precision: number | null;
}

export interface EpochLog {
  epoch: number;
  loss?: number;
  val_loss?: number;
  val_auc?: number | null;
  val_accuracy?: number;
  seconds?: number;
}

const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';
const INK = '#1f2933';
const CURVE = '#1f6fb2';
const GRID = '#e4e7eb';
/** Colour-blind-safe (Okabe–Ito) colours for operating points, in a fixed order. */
const MARK_COLOURS = ['#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9'];

const config = {
  font: FONT,
  background: 'white',
  padding: 12,
  view: { stroke: '#9aa5b1' },
  title: {
    fontSize: 15,
    fontWeight: 600,
    color: INK,
    anchor: 'start',
    offset: 12,
    subtitleFontSize: 12,
    subtitleColor: '#52606d',
  },
  axis: {
    labelFontSize: 12,
    titleFontSize: 12.5,
    titleFontWeight: 500,
    titleColor: INK,
    labelColor: '#3e4c59',
    gridColor: GRID,
  },
  legend: { labelFontSize: 12, titleFontSize: 12, labelLimit: 360, symbolSize: 90 },
} as const;

const pct = (x: number | null) => (x === null ? 'n/a' : `${(100 * x).toFixed(1)}%`);

const markLabel = (m: MarkedPoint) =>
  `${m.name} (t = ${m.threshold.toFixed(3)}): sens ${pct(m.sensitivity)}, spec ${pct(m.specificity)}`;

function markLayer(marks: readonly MarkedPoint[], x: 'fpr' | 'recall', y: 'tpr' | 'precision') {
  const values = marks.map((m) => ({
    label: markLabel(m),
    fpr: m.specificity === null ? null : 1 - m.specificity,
    tpr: m.sensitivity,
    recall: m.sensitivity,
    precision: m.precision,
  }));
  return {
    data: { values },
    mark: { type: 'point', filled: true, size: 140, stroke: 'white', strokeWidth: 1.5, opacity: 1 },
    encoding: {
      x: { field: x, type: 'quantitative' },
      y: { field: y, type: 'quantitative' },
      color: {
        field: 'label',
        type: 'nominal',
        title: 'Operating points',
        scale: { domain: values.map((v) => v.label), range: MARK_COLOURS.slice(0, Math.max(1, values.length)) },
        // Below the plot rather than inside it, where it would hide part of some curves.
        legend: { orient: 'bottom', direction: 'vertical', offset: 14 },
      },
    },
  };
}

/** Lines of at most `max` characters, broken at spaces (a longer word keeps its own line). */
export function wrapText(text: string, max: number): string[] {
  const lines: string[] = [];
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + 1 + word.length <= max) lines[last] += ` ${word}`;
    else lines.push(word);
  }
  return lines.length ? lines : [''];
}

export function confusionChart(
  c: Confusion,
  opts: { title: string; subtitle?: string; classNames?: ClassNames; cell?: number },
): ChartSpec {
  const [neg, pos] = opts.classNames ?? DEFAULT_CLASS_NAMES;
  const cell = opts.cell ?? 130;
  const rows = [
    {
      actual: neg,
      cells: [
        { predicted: neg, count: c.tn },
        { predicted: pos, count: c.fp },
      ],
    },
    {
      actual: pos,
      cells: [
        { predicted: neg, count: c.fn },
        { predicted: pos, count: c.tp },
      ],
    },
  ];
  const values = rows.flatMap((r) => {
    const total = r.cells[0].count + r.cells[1].count;
    return r.cells.map((k) => ({
      actual: r.actual,
      predicted: k.predicted,
      count: k.count,
      share: total > 0 ? k.count / total : 0,
      // Small cells (the comparison page) have room for the number only.
      shareText: total > 0 ? `${pct(k.count / total)}${cell >= 110 ? ' of row' : ''}` : '—',
    }));
  });
  const big = Math.round(cell / 5.5);
  const small = Math.max(9, Math.round(cell / 11));
  const dark = { test: 'datum.share > 0.55', value: 'white' };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    // Wrapped to the plot's width, so that a long experiment name does not widen (and so shrink) the matrix.
    title: {
      text: wrapText(opts.title, Math.max(24, Math.round((cell * 2 + 60) / 8))),
      ...(opts.subtitle ? { subtitle: opts.subtitle } : {}),
    },
    config: { ...config, axis: { ...config.axis, grid: false, ticks: false, domain: false, labelPadding: 6 } },
    width: cell * 2,
    height: cell * 2,
    data: { values },
    encoding: {
      x: {
        field: 'predicted',
        type: 'nominal',
        sort: [neg, pos],
        title: 'Predicted',
        axis: { orient: 'top', labelAngle: 0 },
      },
      y: {
        field: 'actual',
        type: 'nominal',
        sort: [neg, pos],
        title: 'Actual',
        axis: { labelAngle: -90, labelAlign: 'center', labelBaseline: 'bottom' },
      },
    },
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 2 },
        encoding: {
          color: { field: 'share', type: 'quantitative', scale: { domain: [0, 1], scheme: 'blues' }, legend: null },
        },
      },
      {
        mark: { type: 'text', fontSize: big, fontWeight: 700, dy: -small * 0.7 },
        encoding: { text: { field: 'count', type: 'quantitative' }, color: { condition: dark, value: INK } },
      },
      {
        mark: { type: 'text', fontSize: small, dy: big * 0.75 },
        encoding: { text: { field: 'shareText', type: 'nominal' }, color: { condition: dark, value: INK } },
      },
    ],
  } as ChartSpec;
}

const diagonal = {
  data: {
    values: [
      { a: 0, b: 0 },
      { a: 1, b: 1 },
    ],
  },
  mark: { type: 'line', strokeDash: [5, 4], color: '#9aa5b1', strokeWidth: 1.2 },
  encoding: { x: { field: 'a', type: 'quantitative' }, y: { field: 'b', type: 'quantitative' } },
};

const unitAxis = (title: string) => ({
  type: 'quantitative',
  title,
  scale: { domain: [0, 1], nice: false },
  axis: { format: '.1f', tickCount: 5 },
});

export function rocChart(
  points: readonly RocPoint[],
  opts: { title: string; subtitle?: string; marks?: readonly MarkedPoint[] },
): ChartSpec {
  const values = points.map((p, i) => ({ i, fpr: p.fpr, tpr: p.tpr }));
  const marks = opts.marks ?? [];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: opts.title, ...(opts.subtitle ? { subtitle: opts.subtitle } : {}) },
    config,
    width: 380,
    height: 380,
    encoding: {
      x: unitAxis('False positive rate (1 − specificity)'),
      y: unitAxis('True positive rate (sensitivity)'),
    },
    layer: [
      diagonal,
      {
        data: { values },
        mark: { type: 'line', color: CURVE, strokeWidth: 2.2, interpolate: 'linear' },
        encoding: { x: { field: 'fpr' }, y: { field: 'tpr' }, order: { field: 'i', type: 'quantitative' } },
      },
      ...(marks.length > 0 ? [markLayer(marks, 'fpr', 'tpr')] : []),
    ],
  } as ChartSpec;
}

/**
 * Several ROC curves, one colour per model (the comparison page): the whole curve, and beside it
 * the top-left corner where good models differ.
 */
export function rocOverlayChart(
  curves: readonly { name: string; auc: number | null; points: readonly RocPoint[] }[],
  opts: { title: string; subtitle?: string },
): ChartSpec {
  const label = (c: { name: string; auc: number | null }) =>
    `${c.name} (AUC ${c.auc === null ? 'n/a' : c.auc.toFixed(3)})`;
  const values = curves.flatMap((c) => c.points.map((p, i) => ({ model: label(c), i, fpr: p.fpr, tpr: p.tpr })));
  const panel = (
    title: string,
    x: [number, number],
    y: [number, number],
    format = x[1] - x[0] < 1 ? '.2f' : '.1f',
  ) => ({
    title: { text: title, fontSize: 13, fontWeight: 500 },
    width: 340,
    height: 340,
    layer: [
      ...(x[0] === 0 && x[1] === 1 ? [diagonal] : []),
      {
        data: { values },
        mark: { type: 'line', strokeWidth: 1.8, interpolate: 'linear', clip: true },
        encoding: {
          x: {
            ...unitAxis('False positive rate (1 − specificity)'),
            field: 'fpr',
            scale: { domain: x, nice: false },
            axis: { format, tickCount: 5 },
          },
          y: {
            ...unitAxis('True positive rate (sensitivity)'),
            field: 'tpr',
            scale: { domain: y, nice: false },
            axis: { format, tickCount: 5 },
          },
          order: { field: 'i', type: 'quantitative' },
          color: {
            field: 'model',
            type: 'nominal',
            title: null,
            scale: { domain: curves.map(label), scheme: curves.length > 10 ? 'category20' : 'tableau10' },
            legend: { orient: 'bottom', direction: 'vertical', offset: 14 },
          },
        },
      },
    ],
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: opts.title, ...(opts.subtitle ? { subtitle: opts.subtitle } : {}) },
    config,
    hconcat: [panel('Whole curve', [0, 1], [0, 1]), panel('Top-left corner', [0, 0.3], [0.7, 1])],
  } as ChartSpec;
}

export function prChart(
  points: readonly PrPoint[],
  opts: { title: string; subtitle?: string; prevalence: number; marks?: readonly MarkedPoint[] },
): ChartSpec {
  const values = points.map((p, i) => ({ i, recall: p.recall, precision: p.precision }));
  const marks = (opts.marks ?? []).filter((m) => m.precision !== null);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: opts.title, ...(opts.subtitle ? { subtitle: opts.subtitle } : {}) },
    config,
    width: 380,
    height: 380,
    encoding: {
      x: unitAxis('Recall (sensitivity)'),
      y: unitAxis('Precision (positive predictive value)'),
    },
    layer: [
      {
        data: { values: [{ prevalence: opts.prevalence, label: `chance level (prevalence ${pct(opts.prevalence)})` }] },
        layer: [
          {
            mark: { type: 'rule', strokeDash: [5, 4], color: '#9aa5b1' },
            encoding: { y: { field: 'prevalence', type: 'quantitative' } },
          },
          {
            mark: { type: 'text', align: 'left', dx: 4, dy: -7, fontSize: 11, color: '#7b8794' },
            encoding: { x: { datum: 0 }, y: { field: 'prevalence', type: 'quantitative' }, text: { field: 'label' } },
          },
        ],
      },
      {
        data: { values },
        mark: { type: 'line', color: CURVE, strokeWidth: 2.2, interpolate: 'step-before' },
        encoding: { x: { field: 'recall' }, y: { field: 'precision' }, order: { field: 'i', type: 'quantitative' } },
      },
      ...(marks.length > 0 ? [markLayer(marks, 'recall', 'precision')] : []),
    ],
  } as ChartSpec;
}

export function reliabilityChart(
  bins: readonly ReliabilityBin[],
  opts: { title: string; subtitle?: string },
): ChartSpec {
  const filled = bins.filter((b) => b.count > 0);
  const width = 380;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: opts.title, ...(opts.subtitle ? { subtitle: opts.subtitle } : {}) },
    config,
    spacing: 8,
    vconcat: [
      {
        width,
        height: 300,
        encoding: {
          x: { ...unitAxis(''), axis: { format: '.1f', tickCount: 5, labels: false } },
          y: unitAxis('Observed share with pneumonia'),
        },
        layer: [
          diagonal,
          {
            data: { values: filled },
            mark: { type: 'line', color: CURVE, strokeWidth: 2, point: { filled: true, size: 60, color: CURVE } },
            encoding: {
              x: { field: 'meanProb' },
              y: { field: 'fracPositive' },
              tooltip: [{ field: 'count', type: 'quantitative' }],
            },
          },
        ],
      },
      {
        width,
        height: 90,
        data: { values: bins.map((b) => ({ lo: b.lo, hi: b.hi, count: b.count })) },
        mark: { type: 'rect', color: '#9fb3c8', stroke: 'white', strokeWidth: 1 },
        encoding: {
          x: { field: 'lo', ...unitAxis('Predicted probability of pneumonia') },
          x2: { field: 'hi' },
          y: { field: 'count', type: 'quantitative', title: 'Images', axis: { tickCount: 3 } },
          y2: { datum: 0 },
        },
      },
    ],
  } as ChartSpec;
}

export function trainingChart(log: readonly EpochLog[], opts: { title: string; subtitle?: string }): ChartSpec {
  const series = (panel: string, key: keyof EpochLog, label: string) =>
    log.flatMap((e) =>
      typeof e[key] === 'number' && Number.isFinite(e[key])
        ? [{ epoch: e.epoch, panel, series: label, value: e[key] }]
        : [],
    );
  const loss = [...series('loss', 'loss', 'training loss'), ...series('loss', 'val_loss', 'validation loss')];
  const quality = [
    ...series('quality', 'val_auc', 'validation AUC'),
    ...series('quality', 'val_accuracy', 'validation accuracy'),
  ];
  const withAuc = log.filter((e) => typeof e.val_auc === 'number');
  const best =
    withAuc.length > 0 ? withAuc.reduce((a, b) => ((b.val_auc as number) > (a.val_auc as number) ? b : a)) : null;
  const xAxis = { field: 'epoch', type: 'quantitative', title: 'Epoch', axis: { tickMinStep: 1, format: 'd' } };
  const panel = (values: object[], title: string, yTitle: string, colours: string[], yScale: object) => ({
    width: 340,
    height: 260,
    title: { text: title, fontSize: 13, fontWeight: 500 },
    layer: [
      {
        data: { values },
        mark: { type: 'line', strokeWidth: 2, point: { filled: true, size: 30 } },
        encoding: {
          x: xAxis,
          y: { field: 'value', type: 'quantitative', title: yTitle, scale: yScale },
          color: {
            field: 'series',
            type: 'nominal',
            title: null,
            scale: { range: colours },
            legend: { orient: 'top', direction: 'horizontal' },
          },
        },
      },
      ...(best
        ? [
            {
              data: { values: [{ epoch: best.epoch, label: 'best val AUC' }] },
              layer: [
                {
                  mark: { type: 'rule', strokeDash: [3, 3], color: '#7b8794' },
                  encoding: { x: { field: 'epoch', type: 'quantitative' } },
                },
                {
                  mark: {
                    type: 'text',
                    align: 'right',
                    baseline: 'top',
                    dx: -4,
                    dy: 4,
                    fontSize: 11,
                    color: '#7b8794',
                  },
                  encoding: { x: { field: 'epoch', type: 'quantitative' }, y: { value: 0 }, text: { field: 'label' } },
                },
              ],
            },
          ]
        : []),
    ],
    resolve: { scale: { color: 'independent' } },
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: opts.title, ...(opts.subtitle ? { subtitle: opts.subtitle } : {}) },
    config,
    hconcat: [
      panel(loss, 'Loss (lower is better)', 'Binary cross-entropy', ['#1f6fb2', '#d55e00'], { zero: false }),
      panel(quality, 'Validation (higher is better)', 'Score', ['#009e73', '#cc79a7'], { zero: false, domainMax: 1 }),
    ],
    resolve: { scale: { color: 'independent' } },
  } as ChartSpec;
}
