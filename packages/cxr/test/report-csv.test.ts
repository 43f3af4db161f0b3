// CSV cells: RFC 4180 quoting and the formula-injection prefix for text cells.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { csvCell, csvLine } from '../src/report/csv';

test('text starting with = + - @ tab or CR is prefixed with a quote; numbers stay numbers', () => {
  assert.equal(csvCell('=1+2'), "'=1+2");
  assert.equal(csvCell('+49 30'), "'+49 30");
  assert.equal(csvCell('-2+3'), "'-2+3");
  assert.equal(csvCell('@SUM(A1:A9)'), "'@SUM(A1:A9)");
  assert.equal(csvCell('\t=cmd'), "'\t=cmd");
  assert.equal(csvCell('=HYPERLINK("http://x","y")'), '"\'=HYPERLINK(""http://x"",""y"")"');
  assert.equal(csvCell('a=b'), 'a=b');
  assert.equal(csvCell('/data/x.jpeg'), '/data/x.jpeg');
  assert.equal(csvCell(-1.5), '-1.5');
  assert.equal(csvCell(null), '');
  assert.equal(csvLine(['a, b', 'say "hi"', 0.25, undefined]), '"a, b","say ""hi""",0.25,');
});
