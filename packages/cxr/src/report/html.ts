// Shared pieces of the self-contained HTML pages: escaping, inline SVG, the page shell and its CSS.
// No scripts and no external resources, so a page can be mailed or opened from a USB stick.
import * as path from 'node:path';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

/**
 * Prepares a rendered SVG for inlining. Ids are prefixed because several SVGs share one document
 * and vega numbers its clip paths and gradients from the same counters in every chart.
 */
export function inlineSvg(svg: string, idPrefix: string, label: string): string {
  return svg
    .replace(/<\?xml[^>]*\?>\s*/, '')
    .replace(/\bid="([^"]+)"/g, `id="${idPrefix}-$1"`)
    .replace(/url\(#([^)]+)\)/g, `url(#${idPrefix}-$1)`)
    .replace(/href="#([^"]+)"/g, `href="#${idPrefix}-$1"`)
    .replace(/^<svg\b/, `<svg role="img" aria-label="${escapeHtml(label)}"`);
}

/**
 * The smallest share of its own size a chart is drawn at. Its text is 11–12 px, so at 0.7 it stays about 8 px; below
 * that a narrow column (a phone, the comparison page's side-by-side boxes) shrank a two-panel chart's ticks and
 * legend to 4 px, unreadable. Where the column is narrower, the chart scrolls sideways in its box instead.
 */
export const MIN_CHART_SCALE = 0.7;

/** ` style="min-width: …"` for a chart drawn from `svg` (its width attribute), or '' where it has none. */
function minWidthStyle(svg: string): string {
  const width = Number(/<svg\b[^>]*?\swidth="([\d.]+)"/.exec(svg)?.[1]);
  return width > 0 ? ` style="min-width: ${Math.round(width * MIN_CHART_SCALE)}px"` : '';
}

/**
 * A chart in its own horizontal scroll box (as `table`'s, and focusable for the same reason), drawn no smaller than
 * MIN_CHART_SCALE of its size: inlined (inlineSvg's arguments), or with `asImage` (its alt text) as an image, for an
 * SVG from elsewhere that must not run in the page.
 */
export function chartBox(svg: string, idPrefix: string, label: string, asImage = false): string {
  const chart = asImage
    ? `<img class="chart" src="data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}" ` +
      `alt="${escapeHtml(label)}"${minWidthStyle(svg)}>`
    : inlineSvg(svg, idPrefix, label).replace(/^<svg role="img" aria-label="[^"]*"/, (tag) => tag + minWidthStyle(svg));
  return `<div class="chart-box" tabindex="0">${chart}</div>`;
}

/**
 * A table in its own horizontal scroll box: on a phone a wide table (the metrics' four columns, a sha256) scrolls
 * inside its card instead of widening the whole page. The box takes keyboard focus (tabindex) so that its hidden
 * columns can be scrolled to without a mouse (WCAG 2.1.1; axe's scrollable-region-focusable).
 */
export function table(head: readonly string[], rows: readonly (readonly string[])[], className = ''): string {
  const th = head.map((h) => `<th>${h}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n');
  const open = className ? `<table class="${className}">` : '<table>';
  return `<div class="wide" tabindex="0">${open}<thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table></div>`;
}

// One rule a line; a rule too long for the source is split with `+`: the page gets it whole.
const CSS = [
  '',
  ':root { --ink: #1f2933; --muted: #52606d; --line: #e4e7eb; --accent: #1f6fb2; --bg: #f5f7fa; }',
  '* { box-sizing: border-box; }',
  'body { margin: 0; background: var(--bg); color: var(--ink);',
  '  font: 15px/1.55 "DejaVu Sans", system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }',
  'main { max-width: 1180px; margin: 0 auto; padding: 28px 24px 60px; }',
  'header h1 { font-size: 26px; margin: 0 0 4px; }',
  'header p { margin: 0; color: var(--muted); }',
  'h2 { font-size: 20px; margin: 36px 0 12px; padding-bottom: 6px; border-bottom: 2px solid var(--line); }',
  'h3 { font-size: 16px; margin: 22px 0 8px; }',
  'section.card, div.card { background: white; border: 1px solid var(--line); border-radius: 10px; ' +
    'padding: 18px 22px; margin: 16px 0; }',
  '.lead { font-size: 16px; }',
  '.kpis { display: flex; flex-wrap: wrap; gap: 14px; margin: 14px 0 4px; }',
  '.kpi { flex: 1 1 170px; background: #f0f5fa; border-radius: 8px; padding: 12px 16px; }',
  '.kpi .v { font-size: 26px; font-weight: 700; color: var(--accent); }',
  '.kpi .l { font-size: 13px; color: var(--muted); }',
  '.kpi .ci { font-size: 12px; color: var(--muted); }',
  'table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 14px; }',
  'th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }',
  'th { font-weight: 600; background: #f8fafc; }',
  'td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }',
  'table.kv td:first-child { width: 28%; font-weight: 500; }',
  'table.metrics th:nth-child(2), table.metrics th:nth-child(3),',
  'table.metrics td:nth-child(2), table.metrics td:nth-child(3) { text-align: right; ' +
    'font-variant-numeric: tabular-nums; white-space: nowrap; }',
  // min-width: on a phone the table scrolls rather than squeezing the explanation to a word a line.
  'table.metrics td:nth-child(4) { color: var(--muted); min-width: 12em; }',
  // min(): a column is never wider than the page, or a 390 px phone scrolls the whole page sideways.
  '.figs { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(430px, 100%), 1fr)); gap: 16px; }',
  // A two-panel chart (training curves) a row each: two to a row would draw it below MIN_CHART_SCALE.
  '.figs.one-col { grid-template-columns: 1fr; }',
  // min-width 0: a grid or flex item otherwise grows to its chart's min-width and widens the page on a phone.
  'figure { margin: 0; min-width: 0; display: flex; flex-direction: column; justify-content: space-between; ' +
    'background: white; border: 1px solid var(--line); border-radius: 10px; padding: 12px; }',
  'figure svg, figure img.chart { display: block; max-width: 100%; height: auto; margin: 0 auto; }',
  '.chart-box { overflow-x: auto; }',
  'figcaption { font-size: 13px; color: var(--muted); margin-top: 6px; }',
  'figcaption a { color: var(--accent); }',
  '.note { background: #fffbea; border-left: 4px solid #f0b429; padding: 8px 12px; margin: 8px 0; font-size: 14px; }',
  '.disclaimer { font-size: 13px; color: var(--muted); }',
  'dl.glossary dt { font-weight: 600; margin-top: 8px; }',
  'dl.glossary dd { margin: 2px 0 0 0; color: var(--muted); }',
  'pre { background: #f8fafc; border: 1px solid var(--line); border-radius: 6px; padding: 10px; ' +
    'overflow-x: auto; font-size: 12.5px; }',
  '.wide { overflow-x: auto; }',
  // A command or path in the text (the robustness page's "Run it again") is one long word: it breaks anywhere
  // rather than widening a phone's page.
  'code { overflow-wrap: anywhere; }',
  '.desc { color: var(--muted); font-size: 13px; }',
  'span.ci { color: var(--muted); font-size: 12px; }',
  'table.comparison td:first-child { min-width: 220px; }',
  // Figures stay on one line; headings ("Training time", "ΔAUC vs cxr") wrap: kept on one line they made the seed
  // comparison 35 px wider than a 1280 px screen's card, which cut off its Run column.
  'table.comparison td:not(:first-child):not(:last-child), ' +
    'table.comparison th:not(:first-child):not(:last-child) ' +
    '{ text-align: right; font-variant-numeric: tabular-nums; }',
  'table.comparison td:not(:first-child):not(:last-child) { white-space: nowrap; }',
  // Nine columns or more: a narrower gutter leaves the widest of them room on a 1280 px screen.
  'table.comparison th, table.comparison td { padding: 7px 8px; }',
  '.side { display: flex; flex-wrap: wrap; gap: 16px; }',
  '.side figure { flex: 0 1 300px; }',
  // A phone's width goes to the content: the side margins of a desktop page would cost a chart a fifth of its size.
  '@media (max-width: 480px) { main { padding: 20px 12px 48px; } section.card, div.card { padding: 14px 12px; } }',
  // On paper nothing scrolls: a table's or chart's scroll box would cut off its last columns.
  '@media print { body { background: white; } figure, .card { break-inside: avoid; } ' +
    '.wide, .chart-box { overflow: visible; } }',
  '',
].join('\n');

/** A figure's links to its PNG and SVG files, written next to the page as BASE.png and BASE.svg. */
export function downloadLinks(base: string): string {
  return `<a href="${base}.png">PNG</a> · <a href="${base}.svg">SVG</a>`;
}

/** A chart written as `base`.svg and `base`.png, with its caption (also its accessible name). */
export interface Figure {
  base: string;
  svg: string;
  caption: string;
}

/** A chart inlined with its caption and links to its files, which lie next to the page. */
export function figureHtml(f: Figure): string {
  const name = path.basename(f.base);
  return (
    `<figure>${chartBox(f.svg, name, f.caption)}\n` +
    `<figcaption>${escapeHtml(f.caption)} · ${downloadLinks(name)}</figcaption></figure>`
  );
}

/** One headline figure: its value, what it is, and a note below (each already HTML). */
export function kpiBox(value: string, label: string, note: string): string {
  return (
    `<div class="kpi"><div class="v">${value}</div>` +
    `<div class="l">${label}</div><div class="ci">${note}</div></div>`
  );
}

export function htmlPage(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

/** File-name-safe version of a split or experiment name. */
export function slug(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9_-]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'x'
  );
}
