// One table cell of the comparison (a value and the text of its interval) as Markdown and as HTML,
// shared by the per-run table (comparison.ts) and its optional column sets and tables.
import { escapeHtml } from './html';

/** The value, and its interval or note ('' when there is none). */
export type Cell = [string, string];

export const mdCell = ([value, ci]: Cell, bold: boolean) => {
  const v = bold ? `**${value}**` : value;
  return ci ? `${v} (${ci.replace(' – ', '–')})` : v;
};

export const htmlCell = ([value, ci]: Cell, bold: boolean) => {
  const v = bold ? `<b>${escapeHtml(value)}</b>` : escapeHtml(value);
  return ci ? `${v}<br><span class="ci">${escapeHtml(ci)}</span>` : v;
};

export const mdEscape = (s: string) => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
