// Plain-text rendering of evaluate() output for the terminal (`cxr evaluate` without --json).
import { ECE_BINS } from './metrics';
import type { Metrics, UnreadableFiles } from './metrics_schema';
import type { Interval } from './stats';

export const pct = (x: number | null, digits = 1): string => (x === null ? 'n/a' : `${(100 * x).toFixed(digits)}%`);
export const dec = (x: number | null, digits = 3): string => (x === null ? 'n/a' : x.toFixed(digits));
/** A difference with its sign always written, a true minus for a fall: '+0.094', '−0.250'. */
export const signed = (x: number | null, digits = 3): string =>
  x === null ? 'n/a' : `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(digits)}`;

/** Human-readable duration: "42 s", "19 min", "2 h 5 min". */
export function formatDuration(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  const min = Math.round(seconds / 60);
  return min < 90 ? `${min} min` : `${Math.floor(min / 60)} h ${min % 60} min`;
}

export function formatInterval(ci: Interval | null, asPercent: boolean): string {
  if (ci === null) return '';
  return asPercent ? `${pct(ci[0])} – ${pct(ci[1])}` : `${dec(ci[0])} – ${dec(ci[1])}`;
}

export interface MetricRow {
  label: string;
  value: string;
  ci: string;
  help: string;
}

/** The rows shown to people, in reading order; shared by the terminal table and the HTML report. */
export function metricRows(m: Metrics): MetricRow[] {
  return [
    {
      label: 'Accuracy',
      value: pct(m.accuracy),
      ci: formatInterval(m.ci95.accuracy, true),
      help: 'share of all images classified correctly',
    },
    {
      label: 'Sensitivity',
      value: pct(m.sensitivity),
      ci: formatInterval(m.ci95.sensitivity, true),
      help: 'share of pneumonia images flagged (recall)',
    },
    {
      label: 'Specificity',
      value: pct(m.specificity),
      ci: formatInterval(m.ci95.specificity, true),
      help: 'share of normal images not flagged',
    },
    { label: 'Precision', value: pct(m.precision), ci: '', help: 'share of flagged images that are pneumonia (PPV)' },
    { label: 'F1', value: dec(m.f1), ci: '', help: 'harmonic mean of precision and sensitivity' },
    {
      label: 'ROC AUC',
      value: dec(m.auc),
      ci: formatInterval(m.ci95.auc, false),
      help: 'chance a pneumonia image scores above a normal one',
    },
    { label: 'PR AUC', value: dec(m.pr_auc), ci: '', help: 'average precision over all thresholds' },
    {
      label: 'Brier score',
      value: dec(m.brier),
      ci: '',
      help: 'mean squared error of the probabilities (lower is better)',
    },
    { label: 'ECE', value: dec(m.ece), ci: '', help: `expected calibration error, ${ECE_BINS} bins (lower is better)` },
  ];
}

const pad = (s: string, w: number, right = false) => (right ? s.padStart(w) : s.padEnd(w));

export interface FormatOptions {
  title?: string;
  classNames?: readonly [string, string];
}

export function formatMetricsTable(m: Metrics, opts: FormatOptions = {}): string {
  const [neg, pos] = opts.classNames ?? ['normal', 'pneumonia'];
  const rows = metricRows(m);
  const w0 = Math.max(...rows.map((r) => r.label.length));
  const w1 = Math.max(5, ...rows.map((r) => r.value.length));
  const w2 = Math.max(6, ...rows.map((r) => r.ci.length));
  const lines: string[] = [];
  if (opts.title) lines.push(opts.title, '');
  lines.push(`${m.n} images, threshold ${m.threshold.toFixed(3)} (called ${pos} when probability >= threshold)`, '');
  lines.push(`${pad('Metric', w0)}  ${pad('Value', w1, true)}  95% CI`);
  lines.push(`${'─'.repeat(w0)}  ${'─'.repeat(w1)}  ${'─'.repeat(w2)}`);
  for (const r of rows) lines.push(`${pad(r.label, w0)}  ${pad(r.value, w1, true)}  ${pad(r.ci, w2)}`.trimEnd());

  const c = m.confusion;
  const head = ['', `predicted ${neg}`, `predicted ${pos}`];
  const body = [
    [`actual ${neg}`, String(c.tn), String(c.fp)],
    [`actual ${pos}`, String(c.fn), String(c.tp)],
  ];
  const widths = head.map((h, j) => Math.max(h.length, ...body.map((r) => r[j].length)));
  lines.push('', 'Confusion matrix');
  for (const r of [head, ...body]) lines.push(r.map((cell, j) => pad(cell, widths[j], j > 0)).join('  '));
  for (const note of m.notes ?? []) lines.push(`note: ${note}`);
  return lines.join('\n');
}

/** How many files of a stored evaluation could not be read, and which (the first few), for its report. */
export function unreadableNote(u: UnreadableFiles, shown = 10): string {
  const listed = u.files.slice(0, shown).map((f) => `${f.file} (${f.error})`);
  const more = u.count - listed.length;
  const rest = more > 0 ? `; and ${more} more` : '';
  return (
    `${u.count} ${u.count === 1 ? 'file' : 'files'} in the evaluated folders could not be read and ` +
    `${u.count === 1 ? 'is' : 'are'} in none of these numbers: ${listed.join('; ')}${rest}`
  );
}
