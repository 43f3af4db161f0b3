// The age an answer was judged at, as a card says it: on the age line beside the finding (ageUsed), and in the grey
// line under it (ageMeta). Both say the age the answer took and where it came from (the DICOM header, the film's
// dates, or the age typed), not the age the batch sent: the server reads a DICOM's own age, and a card that said
// "no age typed" beside "Age 3 years, from the DICOM header" left a reader asking which one counted.
import { type AnswerAge, INTENDED_POPULATION, MAX_AGE_YEARS, MIN_AGE_YEARS, sideOf } from '../../predict/verdict';

/** Where an answer's age came from, in words. */
const AGE_SOURCE: Record<AnswerAge['source'], string> = {
  header: 'from the DICOM header',
  dates: "from the film's birth and study dates",
  stated: 'as typed on this page',
};

const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;

/** A DICOM PatientAge's unit, from the span it counts (verdict.ts ageSpanInYears: one unit). */
const HEADER_UNITS: [perYear: number, unit: string][] = [
  [365.25, 'day'],
  [52.18, 'week'],
  [12, 'month'],
  [1, 'year'],
];

/**
 * An answer's age as people say it. A header's PatientAge in its own unit ('052W' is "52 weeks"; in completed
 * months it read "11 months" on a film the verdict counts as a first birthday, and a reader took the model to be
 * misapplied). A typed age as typed where it is whole ("1 year", not "12 months"), else in the units people use;
 * the dates' in completed years from 2 up, months under 2, weeks under a month, days under a week. The fraction
 * is the verdict's arithmetic, not a figure to read.
 */
export function ageWords(age: AnswerAge): string {
  const { years, untilYears, source } = age;
  if (source === 'header' && untilYears !== undefined) {
    const perYear = 1 / (untilYears - years);
    const [per, unit] = HEADER_UNITS.reduce((a, b) => (Math.abs(b[0] - perYear) < Math.abs(a[0] - perYear) ? b : a));
    return plural(Math.round(years * per), unit);
  }
  if (source === 'stated' && (Number.isInteger(years) || years >= 2))
    return plural(Math.round(years * 100) / 100, 'year');
  // A hair over: 3 years' worth of days divided out is 2.9999… years, and 13 months sent to the server as
  // 1.083333 years (api.ts: six decimals) comes back as 12.999996 months.
  const whole = (n: number) => Math.floor(n + 1e-3);
  if (years >= 2) return plural(whole(years), 'year');
  if (years >= 1 / 12) return plural(whole(years * 12), 'month');
  if (years >= 7 / 365.25) return plural(whole((years * 365.25) / 7), 'week');
  return plural(whole(years * 365.25), 'day');
}

/**
 * Where an answer's age falls outside the ages the model answers for, as the verdict decides it: a PatientAge is
 * under the lower bound only when all of its span is ('052W' reaches a first birthday).
 */
function outsideSide(age: AnswerAge): 'under' | 'over' | null {
  const side = sideOf(age.years);
  return side === 'under' && age.untilYears !== undefined && age.untilYears > MIN_AGE_YEARS ? null : side;
}

/**
 * An age outside the population: why the film has no finding, and what to do. The film's own age (header, dates)
 * decides over a typed one (verdict.ts patientAge), so typing another age does not help there.
 */
function outsideWords(age: AnswerAge, side: 'under' | 'over'): string {
  const why =
    side === 'over'
      ? `over ${MAX_AGE_YEARS} years, older than any patient this model answers for`
      : `under ${MIN_AGE_YEARS} year: an infant's chest film differs from those of the older children it learned from`;
  const fix =
    age.source === 'stated'
      ? 'If the age typed is wrong, correct it and analyze the film again.'
      : "If the film's age is wrong, have the patient's details corrected in the PACS: an age typed here does not " +
        "override the film's own.";
  return (
    `Age ${ageWords(age)}, ${AGE_SOURCE[age.source]}: ${why} (it answers for ${MIN_AGE_YEARS} to ${MAX_AGE_YEARS} ` +
    `years, and was trained on ${INTENDED_POPULATION}). Read this film without the model: its number is no ` +
    `finding for this patient. ${fix}`
  );
}

/**
 * What a card with a finding, or outside the population, says about the age its answer was judged at, and whether
 * that is a caution. The answer says the age it took and where from (`age`); an answer from an older server says
 * nothing (undefined), and the page then says what it knows: the age typed with the batch, and whether the film was
 * a DICOM, whose header the server reads for its own age. Without any age the model's answer is given all the same
 * (a JPEG or PNG carries none), and a reader saw "Signs of pneumonia detected" on an adult's film with only "no age
 * typed" in grey: the model is validated for its intended population only (predict/verdict.ts, the model card's
 * intended use), so an unknown age is a caution, said beside the finding; so is an age outside the population,
 * with why and what to do.
 */
export function ageUsed(
  answered: AnswerAge | null | undefined,
  years: number | undefined,
  dicom: boolean,
): { text: string; caution: boolean } {
  if (answered) {
    const side = outsideSide(answered);
    if (side) return { text: outsideWords(answered, side), caution: true };
    return { text: `Age ${ageWords(answered)}, ${AGE_SOURCE[answered.source]}.`, caution: false };
  }
  const only = `The model is validated only for ${INTENDED_POPULATION}`;
  if (answered === null && years === undefined)
    return {
      text: dicom
        ? // "None" may be one it could not read: the warnings under the card say so (verdict_notes.ts ageWarnings).
          'Age unknown: no age was typed, and the DICOM header gives none that can be read (no age or birth date, ' +
          `or one not written as DICOM writes it). ${only}: check the patient's age, or type it and analyze the ` +
          'film again.'
        : 'Age unknown: no age was typed, and a JPEG or PNG carries none. ' +
          `${only}: type the patient's age and analyze the film again.`,
      caution: true,
    };
  return olderServerAge(years, dicom, only);
}

/** ageUsed for an answer that does not say its age (a server from before `age`). */
function olderServerAge(years: number | undefined, dicom: boolean, only: string): { text: string; caution: boolean } {
  const bounds = `under ${MIN_AGE_YEARS} or over ${MAX_AGE_YEARS} years`;
  if (years !== undefined) {
    const typed = `Age: ${years} ${years === 1 ? 'year' : 'years'}, as typed on this page`;
    return {
      text: dicom
        ? `${typed}; the DICOM header's own age, if it gives one, is checked too (any age ${bounds} decides).`
        : `${typed}.`,
      caution: false,
    };
  }
  return dicom
    ? {
        text:
          'Age not confirmed: no age was typed, and the answer does not say whether the DICOM header gave one. ' +
          `${only}: check the patient's age, or type it and analyze the film again.`,
        caution: true,
      }
    : {
        text:
          'Age unknown: no age was typed, and a JPEG or PNG carries none. ' +
          `${only}: type the patient's age and analyze the film again.`,
        caution: true,
      };
}

/**
 * The age in the card's grey line: the one the answer took and where from; for an older server's answer, which
 * does not say it, the age the batch sent (`years`) and, with a DICOM, that the header's own ages are checked too.
 * An age typed in months (`months`) and used is said in those words and in the years the model was given
 * ("18 months (1.5 years)"), so that the reader sees both the age typed and how it was read.
 */
export function ageMeta(
  answered: AnswerAge | null | undefined,
  years: number | undefined,
  dicom: boolean,
  months?: number,
): string {
  if (answered?.source === 'stated' && months !== undefined) {
    const years = plural(Math.round(answered.years * 100) / 100, 'year');
    return `age used ${plural(months, 'month')} (${years}), ${AGE_SOURCE.stated}`;
  }
  if (answered) return `age used ${ageWords(answered)}, ${AGE_SOURCE[answered.source]}`;
  if (answered === null)
    return dicom ? 'age unknown (none typed, none in the DICOM header)' : 'age unknown (none typed)';
  if (years === undefined) return 'no age typed';
  const typed = `age typed ${years} ${years === 1 ? 'year' : 'years'}`;
  return dicom
    ? `${typed} (with the DICOM's own ages: any under ${MIN_AGE_YEARS} or over ${MAX_AGE_YEARS} years decides)`
    : typed;
}
