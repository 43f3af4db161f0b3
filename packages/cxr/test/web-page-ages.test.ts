// The page's fixed words about ages (index.html, served as written) against the bounds the server's verdict
// applies (predict/verdict.ts): the intended-use box, and the age field's hint, which said only "under 1 or over
// 10" while the box said "children aged 1–5", leaving ages 6 to 10 unexplained (they are answered, with a note), and
// "a DICOM's own is used", as if an age typed with a DICOM were not checked.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { INTENDED_MAX_YEARS, MAX_AGE_YEARS, MIN_AGE_YEARS } from '../src/predict/verdict';

const PAGE = path.join(__dirname, '..', 'src', 'web', 'static', 'index.html');

/** The text of the element with this id, its tags dropped and its spaces collapsed. */
function textOf(html: string, id: string): string {
  const m = new RegExp(`<([a-z]+)[^>]*\\bid="${id}"[^>]*>([\\s\\S]*?)</\\1>`).exec(html);
  assert.ok(m, `#${id} on the page`);
  return m[2].replace(/<[^>]+>/g, '').replace(/\s+/g, ' ');
}

test("the page's age words are the verdict's bounds", () => {
  const html = fs.readFileSync(PAGE, 'utf8');
  const help = textOf(html, 'patient-age-help');
  assert.match(help, new RegExp(`Under ${MIN_AGE_YEARS} or over ${MAX_AGE_YEARS}: marked outside`));
  assert.match(help, new RegExp(`${INTENDED_MAX_YEARS + 1} to ${MAX_AGE_YEARS}: answered, with a note`));
  // A typed age counts for a DICOM too (any age outside the bounds decides), not only the header's.
  assert.match(help, /a DICOM's own is checked too/);
  const use = html.replace(/<[^>]+>/g, '').replace(/\s+/g, ' ');
  assert.match(use, new RegExp(`children aged ${MIN_AGE_YEARS}–${INTENDED_MAX_YEARS}, as a second reader`));
});
