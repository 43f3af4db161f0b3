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
  'figure { margin: 0; display: flex; flex-direction: column; justify-content: space-between; ' +
    'background: white; border: 1px solid var(--line); border-radius: 10px; padding: 12px; }',
  'figure svg, figure img.chart { display: block; max-width: 100%; height: auto; margin: 0 auto; }',
  'figcaption { font-size: 13px; color: var(--muted); margin-top: 6px; }',
  'figcaption a { color: var(--accent); }',
  '.note { background: #fffbea; border-left: 4px solid #f0b429; padding: 8px 12px; margin: 8px 0; font-size: 14px; }',
  '.disclaimer { font-size: 13px; color: var(--muted); }',
  'dl.glossary dt { font-weight: 600; margin-top: 8px; }',
  'dl.glossary dd { margin: 2px 0 0 0; color: var(--muted); }',
  'pre { background: #f8fafc; border: 1px solid var(--line); border-radius: 6px; padding: 10px; ' +
    'overflow-x: auto; font-size: 12.5px; }',
  '.wide { overflow-x: auto; }',
  '.desc { color: var(--muted); font-size: 13px; }',
  'span.ci { color: var(--muted); font-size: 12px; }',
  'table.comparison td:first-child { min-width: 220px; }',
  'table.comparison td:not(:first-child):not(:last-child), ' +
    'table.comparison th:not(:first-child):not(:last-child) ' +
    '{ text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }',
  '.side { display: flex; flex-wrap: wrap; gap: 16px; }',
  '.side figure { flex: 0 1 300px; }',
  // On paper nothing scrolls: a table's scroll box would cut off its last columns.
  '@media print { body { background: white; } figure, .card { break-inside: avoid; } .wide { overflow: visible; } }',
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
    `<figure>${inlineSvg(f.svg, name, f.caption)}\n` +
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
