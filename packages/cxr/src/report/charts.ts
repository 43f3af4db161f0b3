// Vega-Lite specs for the report's plots. Pure functions of the data, so they can be tested and
// reused (the comparison page draws the same confusion matrix, smaller). The shared look is in
// chart_style.ts, the ROC and precision-recall curves in curve_charts.ts.
import type { Confusion } from '../eval/metrics_schema';
import type { ReliabilityBin } from '../eval/metrics';
import {
  type ClassNames,
  CURVE,
  config,
  DEFAULT_CLASS_NAMES,
  diagonal,
  type EpochLog,
  INK,
  unitAxis,
  wrapText,
} from './chart_style';
import type { ChartSpec } from './render';
import { pct } from '../eval/format';

export * from './chart_style';
export * from './curve_charts';

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
      text: wrapText(opts.title, Math.max(24, Math.round((cell * 2 + 60) / 8)), { atHyphens: true }),
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
          // tickMinStep: counts are whole images; with few films (a bin of 2) vega would tick 0.5, 1.5.
          y: { field: 'count', type: 'quantitative', title: 'Images', axis: { tickCount: 3, tickMinStep: 1 } },
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
  // The label goes left of the best epoch's rule, but at the first epoch that is left of the plot, over the y
  // axis's tick labels (a short run, or one whose first epoch was its best): there it goes right of the rule.
  const bestFirst = best !== null && log.every((e) => e.epoch >= best.epoch);
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
                    align: bestFirst ? 'left' : 'right',
                    baseline: 'top',
                    dx: bestFirst ? 4 : -4,
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
