// The look shared by every report plot: fonts, colours, Vega-Lite config, the operating-point layer
// and the unit axes. The chart builders (charts.ts, curve_charts.ts) only arrange data on top of it.
import { pct } from '../eval/format';

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
export const INK = '#1f2933';
export const CURVE = '#1f6fb2';
const GRID = '#e4e7eb';
/** Colour-blind-safe (Okabe–Ito) colours for operating points, in a fixed order. */
const MARK_COLOURS = ['#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9'];

/**
 * Line colours for plots of many series on white, each with a contrast of at least 3:1 against white (WCAG 2's
 * figure for graphics; test/reports-leftovers-s35): category20's second half is pale, and tableau10's yellow,
 * pink and grey reach 1.6-2.1:1. Okabe–Ito's colour-blind-safe colours that reach 3:1, then Paul Tol's muted
 * wine, olive and indigo. Past them the colours repeat with a dash pattern (seriesStyle).
 */
export const SERIES_COLOURS = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#000000', '#882255', '#999933', '#332288'];
/** Solid, then dashed, dotted, dash-dot... : one pattern per round of SERIES_COLOURS. */
export const SERIES_DASHES: readonly number[][] = [
  [1, 0],
  [7, 3],
  [2, 2],
  [9, 3, 2, 3],
  [14, 4],
  [2, 5],
];

/**
 * Colour and dash of each of `domain`'s series, as the scales of a line layer's `color` and `strokeDash`
 * channels: `strokeDash` is null while the colours alone tell the series apart. Both channels encode the same
 * field with the same domain, so Vega-Lite draws one legend whose symbols show colour and dash.
 */
export function seriesStyle(domain: readonly string[]): {
  color: { domain: string[]; range: string[] };
  strokeDash: { domain: string[]; range: number[][] } | null;
} {
  const n = SERIES_COLOURS.length;
  return {
    color: { domain: [...domain], range: domain.map((_, i) => SERIES_COLOURS[i % n]) },
    strokeDash:
      domain.length > n
        ? { domain: [...domain], range: domain.map((_, i) => SERIES_DASHES[Math.floor(i / n) % SERIES_DASHES.length]) }
        : null,
  };
}

export const config = {
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

const markLabel = (m: MarkedPoint) =>
  `${m.name} (t = ${m.threshold.toFixed(3)}): sens ${pct(m.sensitivity)}, spec ${pct(m.specificity)}`;

/**
 * Operating points at one threshold as one point named by each ("screening = balanced"): a model whose screening
 * point is its balanced one drew two dots on one spot, only the top one seen, while the legend listed two colours.
 */
export function mergeCoinciding(marks: readonly MarkedPoint[]): MarkedPoint[] {
  const byThreshold = new Map<number, MarkedPoint>();
  for (const m of marks) {
    const same = byThreshold.get(m.threshold);
    byThreshold.set(m.threshold, same ? { ...same, name: `${same.name} = ${m.name}` } : m);
  }
  return [...byThreshold.values()];
}

export function markLayer(marks: readonly MarkedPoint[], x: 'fpr' | 'recall', y: 'tpr' | 'precision') {
  const values = mergeCoinciding(marks).map((m) => ({
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

/**
 * Lines of at most `max` characters, broken at spaces (a longer word keeps its own line). With `atHyphens`, a word
 * longer than a line is also broken after its hyphens: a model's name ("cxr-shift-ema-period-mobilenet-…") is one
 * such word, and kept whole it widens the chart, which the page then shrinks below its neighbours.
 */
export function wrapText(text: string, max: number, opts: { atHyphens?: boolean } = {}): string[] {
  const lines: string[] = [];
  const fits = (s: string) => lines.length > 0 && lines[lines.length - 1].length + s.length <= max;
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const parts = opts.atHyphens && word.length > max ? word.split(/(?<=-)/) : [word];
    parts.forEach((part, i) => {
      // The word's first part follows a space; the rest continue the word where its hyphen broke it.
      const joined = i === 0 ? ` ${part}` : part;
      if (fits(joined)) lines[lines.length - 1] += joined;
      else lines.push(part);
    });
  }
  return lines.length ? lines : [''];
}

export const diagonal = {
  data: {
    values: [
      { a: 0, b: 0 },
      { a: 1, b: 1 },
    ],
  },
  mark: { type: 'line', strokeDash: [5, 4], color: '#9aa5b1', strokeWidth: 1.2 },
  encoding: { x: { field: 'a', type: 'quantitative' }, y: { field: 'b', type: 'quantitative' } },
};

export const unitAxis = (title: string) => ({
  type: 'quantitative',
  title,
  scale: { domain: [0, 1], nice: false },
  axis: { format: '.1f', tickCount: 5 },
});
