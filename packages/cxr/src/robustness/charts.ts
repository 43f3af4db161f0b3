// Vega-Lite specs of the robustness page: one metric against strength, one line per change,
// every line starting from the clean row at strength 0.
import { config as reportConfig, seriesStyle } from '../report/chart_style';
import type { ChartSpec } from '../report/render';
import { ECE_BINS, type RobustnessRow } from './metrics';

export type RowMetric = 'specificity' | 'sensitivity' | 'auc' | 'normalScoreShift' | 'pneumoniaScoreShift' | 'ece';

export const METRIC_LABELS: Record<RowMetric, string> = {
  specificity: 'Specificity',
  sensitivity: 'Sensitivity',
  auc: 'ROC AUC',
  normalScoreShift: 'Mean change of NORMAL scores',
  pneumoniaScoreShift: 'Mean change of PNEUMONIA scores',
  ece: `Expected calibration error (${ECE_BINS} bins)`,
};

// The report's look, with a two-column legend: one entry per change is a long list.
const config = { ...reportConfig, legend: { labelFontSize: 11, titleFontSize: 12, symbolSize: 60, columns: 2 } };

/** The points of one metric: each change's rows plus the clean row as its strength-0 point. */
export function strengthSeries(
  rows: readonly RobustnessRow[],
  metric: RowMetric,
): { change: string; strength: number; value: number }[] {
  const clean = rows.find((r) => r.strength === 0);
  const changes = [...new Set(rows.filter((r) => r.strength > 0).map((r) => r.change))];
  return changes.flatMap((change) =>
    [...(clean ? [clean] : []), ...rows.filter((r) => r.change === change && r.strength > 0)].flatMap((r) =>
      r[metric] === null ? [] : [{ change, strength: r.strength, value: r[metric] as number }],
    ),
  );
}

export function strengthChart(
  rows: readonly RobustnessRow[],
  metric: RowMetric,
  opts: { title: string; subtitle?: string },
): ChartSpec {
  const values = strengthSeries(rows, metric);
  const changes = [...new Set(values.map((v) => v.change))];
  // Every line dark enough to see on white (category20's pale half was not), past 8 changes with a dash too.
  const style = seriesStyle(changes);
  // Line symbols long enough to show a dash (symbolSize is an area; the default drew a 10 px circle).
  const legend = { orient: 'right', symbolType: 'stroke', symbolSize: 900, symbolStrokeWidth: 2 };
  const unit = metric === 'specificity' || metric === 'sensitivity' || metric === 'auc';
  const shift = metric === 'normalScoreShift' || metric === 'pneumoniaScoreShift';
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: opts.title, ...(opts.subtitle ? { subtitle: opts.subtitle } : {}) },
    config,
    width: 420,
    height: 300,
    layer: [
      ...(shift
        ? [
            {
              data: { values: [{ y: 0 }] },
              mark: { type: 'rule', color: '#9aa5b1', strokeDash: [4, 3] },
              encoding: { y: { field: 'y', type: 'quantitative' } },
            },
          ]
        : []),
      {
        data: { values },
        mark: { type: 'line', strokeWidth: 1.6, point: { filled: true, size: 28 } },
        encoding: {
          x: {
            field: 'strength',
            type: 'quantitative',
            title: 'Strength (0 = clean)',
            scale: { domain: [0, 1], nice: false },
            axis: { format: '.2f', tickCount: 4 },
          },
          y: {
            field: 'value',
            type: 'quantitative',
            title: METRIC_LABELS[metric],
            scale: unit ? { domainMax: 1, zero: false } : { zero: shift },
            axis: { format: shift ? '+.2f' : unit ? '.2f' : '.3f' },
          },
          color: {
            field: 'change',
            type: 'nominal',
            title: 'Change',
            scale: style.color,
            legend,
          },
          ...(style.strokeDash
            ? {
                strokeDash: {
                  field: 'change',
                  type: 'nominal',
                  title: 'Change',
                  scale: style.strokeDash,
                  legend,
                },
              }
            : {}),
          order: { field: 'strength', type: 'quantitative' },
        },
      },
    ],
  } as ChartSpec;
}
