// CSV cells for files that people open in spreadsheets. RFC 4180 quoting, plus the OWASP defence
// against formula injection: a text cell that starts with = + - @ (or tab / carriage return, which
// some spreadsheets skip before reading a formula) is prefixed with ', so a file named
// '=HYPERLINK(...).jpeg' or a crafted warning is shown as text, never evaluated. Numbers are
// written as they are (a negative logit stays a number).

const FORMULA_START = /^[=+\-@\t\r]/;

export type CsvValue = string | number | boolean | null | undefined;

export function csvCell(v: CsvValue): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const text = FORMULA_START.test(v) ? `'${v}` : v;
  // ';' quoted too: Excel where ';' is the list separator (much of Europe) splits an unquoted 'x;=1+1' there and
  // reads the '=1+1' after it as a formula; quoted, the cell is one text whatever the separator.
  return /[",;\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvLine(cells: CsvValue[]): string {
  return cells.map(csvCell).join(',');
}

/** C0, DEL, C1, U+2028/2029 and the bidirectional embeddings, overrides and isolates. */
function unprintable(code: number): boolean {
  return (
    code < 0x20 ||
    (code >= 0x7f && code <= 0x9f) ||
    (code >= 0x2028 && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069)
  );
}

const ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * `text` for a terminal: its control characters, line and paragraph separators and bidirectional overrides written
 * as escapes (\n, \u001b). A file name comes from whoever named the file: its escape sequences must not move the
 * cursor or recolour what the terminal shows (write over another film's row), nor its line breaks start a line
 * that reads as another row.
 */
export function printable(text: string): string {
  let out = '';
  for (const c of text) {
    const code = c.codePointAt(0)!;
    out += unprintable(code) ? (ESCAPES[c] ?? `\\u${code.toString(16).padStart(4, '0')}`) : c;
  }
  return out;
}
