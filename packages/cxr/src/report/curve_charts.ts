// The curve plots: ROC (one model, or several overlaid for the comparison page) and precision-recall.
import type { PrPoint, RocPoint } from '../eval/metrics';
import { pct } from '../eval/format';
import { CURVE, config, diagonal, type MarkedPoint, markLayer, seriesStyle, unitAxis } from './chart_style';
import type { ChartSpec } from './render';

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
  const style = seriesStyle(curves.map(label));
  // Symbols 30 px long (symbolSize is an area), where the default 10 px showed a dash as a solid line.
  // Every curve named (vega's default stops at 30 entries, "…19 entries" on the 48-run shift page), in two
  // columns past 24.
  const legend = {
    orient: 'bottom',
    direction: 'vertical',
    offset: 14,
    symbolSize: 900,
    symbolStrokeWidth: 2.2,
    symbolLimit: 0,
    // Whole names: `cxr experiments` names curves as its table names rows, up to ~120 characters, which the
    // config's 360 px cut off before the AUC.
    labelLimit: 900,
    ...(curves.length > 24 ? { columns: 2, columnPadding: 24 } : {}),
  };
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
          color: { field: 'model', type: 'nominal', title: null, scale: style.color, legend },
          ...(style.strokeDash
            ? { strokeDash: { field: 'model', type: 'nominal', title: null, scale: style.strokeDash, legend } }
            : {}),
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
