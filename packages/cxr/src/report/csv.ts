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
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvLine(cells: CsvValue[]): string {
  return cells.map(csvCell).join(',');
}
