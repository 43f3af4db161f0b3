// The patient's age from a DICOM header's dates (PatientAge (0010,1010) is optional, type 3, in CR and DX
// files): years from PatientBirthDate (0010,0030) to the study's date, with the part of the year since the
// last birthday (10 years and 11 months is 10.9, as '131M' is). No imports: predict/verdict.ts, which the
// web page bundles, reads the AgeFromDates type.

/** The dates an age counts to, in order: the study's, then the image's own (PS3.3 C.7.2.1, C.7.6.1, C.7.3.1). */
const AGE_DATES = [
  ['StudyDate', 'x00080020'],
  ['AcquisitionDate', 'x00080022'],
  ['ContentDate', 'x00080023'],
  ['SeriesDate', 'x00080021'],
] as const;

export type AgeDate = (typeof AGE_DATES)[number][0];

/** Years (with their fraction) from PatientBirthDate to `from`, or why the header's dates give no age. */
export type AgeFromDates =
  /** `unreadable`: dates before `from` in the order that are given but are not dates (said in a warning). */
  { years: number; from: AgeDate; unreadable?: AgeDate[] } | { years: null; problem: string };

/** Older than anyone: a birth date this far back is a placeholder or a typo, not an age. */
const MAX_AGE_FROM_DATES = 130;

/** A DA value (YYYYMMDD, or ACR-NEMA's YYYY.MM.DD) as a calendar date; null when it is not one. */
function parseDate(text: string): { y: number; m: number; d: number } | null {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(text) ?? /^(\d{4})\.(\d{2})\.(\d{2})$/.exec(text);
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  // Date.UTC rolls 20230231 over into March: a real date reads back unchanged.
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return null;
  return { y, m: mo, d };
}

/** The part of a year from the birthday `whole` years on to `on` (a 29 February birthday falls on 1 March). */
function yearFraction(
  birth: { y: number; m: number; d: number },
  whole: number,
  on: { y: number; m: number; d: number },
) {
  const day = (y: number, m: number, d: number) => Date.UTC(y, m - 1, d);
  const last = day(birth.y + whole, birth.m, birth.d);
  const next = day(birth.y + whole + 1, birth.m, birth.d);
  return (day(on.y, on.m, on.d) - last) / (next - last);
}

const tagName = (tag: string) => `(${tag.slice(1, 5)},${tag.slice(5)})`.toUpperCase();

/**
 * The patient's age in years (with their fraction) on the study's date, from a data set's dates (`ds.string` is
 * dicom-parser's DataSet.string); undefined when it has no PatientBirthDate.
 */
export function ageFromDates(ds: { string(tag: string): string | undefined }): AgeFromDates | undefined {
  const birthText = ds.string('x00100030')?.trim();
  if (!birthText) return undefined;
  const birth = parseDate(birthText);
  // The problems name tags, never dates: they end up in warnings, which the audit log keeps.
  if (!birth) return { years: null, problem: 'PatientBirthDate (0010,0030) is not a date (YYYYMMDD)' };
  const given = AGE_DATES.filter(([, tag]) => ds.string(tag)?.trim());
  if (!given.length) {
    const names = AGE_DATES.map(([name]) => name);
    return {
      years: null,
      problem: `PatientBirthDate (0010,0030) is given, but no ${names.slice(0, -1).join(', ')} or ${names.at(-1)}`,
    };
  }
  const unreadable: AgeDate[] = [];
  for (const [name, tag] of given) {
    const on = parseDate(ds.string(tag)!.trim());
    if (!on) {
      unreadable.push(name);
      continue;
    }
    // A birthday not yet reached in the study's year does not count (born 20150610, studied 20200609: 4.99).
    const whole = on.y - birth.y - (on.m < birth.m || (on.m === birth.m && on.d < birth.d) ? 1 : 0);
    const years = whole + yearFraction(birth, whole, on);
    if (whole < 0) return { years: null, problem: `PatientBirthDate (0010,0030) is after ${name} ${tagName(tag)}` };
    if (years > MAX_AGE_FROM_DATES) {
      return {
        years: null,
        problem: `PatientBirthDate (0010,0030) is over ${MAX_AGE_FROM_DATES} years before ${name} ${tagName(tag)}`,
      };
    }
    return unreadable.length ? { years, from: name, unreadable } : { years, from: name };
  }
  const [name, tag] = given[0];
  return { years: null, problem: `${name} ${tagName(tag)} is not a date (YYYYMMDD)` };
}
