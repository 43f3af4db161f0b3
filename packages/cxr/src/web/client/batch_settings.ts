// What the user set for a batch (operating point, patient age, "Process on this computer"), read once
// when its files are taken: a queued film must not pick up the next patient's age, another operating
// point or another processing place typed while it waits its turn.
import * as api from './api';
import {
  type AnswerAge,
  INTENDED_POPULATION,
  MAX_AGE_YEARS,
  MIN_AGE_YEARS,
  STATED_AGE_RANGE,
} from '../../predict/verdict';
import { $ } from './dom';
import { announce } from './status_line';

export interface BatchSettings {
  operatingPoint: string;
  /** The typed age in years (undefined: none), or why the field cannot be read, said on every card. */
  age: { years: number | undefined } | { error: string };
  local: boolean;
}

function globalOperatingPoint(): string {
  return document.querySelector<HTMLInputElement>('input[name="op-global"]:checked')?.value ?? 'balanced';
}

/** The ages the server takes; it checks them again. */
const AGE_MIN = STATED_AGE_RANGE.min;
const AGE_MAX = STATED_AGE_RANGE.max;

/**
 * The years in `text` as typed: decimal digits with a dot or a comma as the decimal separator ("0,5" is
 * half a year in much of the world; a number field in an English browser made it "05", five years). Anything
 * else is an error that says why, never a guess: an infant's film read as a 5-year-old's would be assessed.
 */
export function parseAge(text: string): number | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  const rule = `Patient age must be a number of years from ${AGE_MIN} to ${AGE_MAX}, such as 3 or 0.5 (or left empty)`;
  const m = /^(\d+)(?:[.,](\d+))?$/.exec(t);
  if (!m) throw new Error(`${rule}; "${t}" is not one.`);
  if (/^0\d/.test(m[1]))
    throw new Error(
      `${rule}; "${t}" starts with a zero: type ${Number(m[1])} for ${Number(m[1])} years, or 0.5 for half a year.`,
    );
  const years = Number(`${m[1]}.${m[2] ?? '0'}`);
  if (years < AGE_MIN || years > AGE_MAX) throw new Error(`${rule}; ${t} is out of that range.`);
  return years;
}

/** The age typed on the page, in years (undefined: none); the field says inline what is wrong with it. */
function statedAge(): number | undefined {
  const field = $('#patient-age') as HTMLInputElement;
  const error = $('#patient-age-error');
  try {
    const years = parseAge(field.value);
    field.removeAttribute('aria-invalid');
    error.hidden = true;
    return years;
  } catch (e) {
    field.setAttribute('aria-invalid', 'true');
    error.textContent = api.humanError(e);
    error.hidden = false;
    throw e;
  }
}

/** The field's error is said when the user leaves it (not at each key: "0," is on its way to "0,5"), and
 * goes as soon as what is typed is an age. */
export function watchAgeField(): void {
  const field = $('#patient-age') as HTMLInputElement;
  const check = () => {
    try {
      statedAge();
    } catch {
      // shown inline by statedAge
    }
  };
  field.addEventListener('change', () => {
    check();
    // Said aloud as well: the field is left when the error appears, so a screen reader, already on the next
    // control, would not hear the text beside the field (aria-describedby is read only on coming back to it).
    if (field.getAttribute('aria-invalid') === 'true') announce($('#patient-age-error').textContent ?? '');
  });
  field.addEventListener('input', () => {
    if (field.getAttribute('aria-invalid') === 'true') check();
  });
}

export function localMode(): boolean {
  return ($('#local-mode') as HTMLInputElement).checked;
}

export function readSettings(): BatchSettings {
  let age: BatchSettings['age'];
  try {
    age = { years: statedAge() };
  } catch (e) {
    age = { error: api.humanError(e) };
  }
  return { operatingPoint: globalOperatingPoint(), age, local: localMode() };
}

/** The batch's age; an age that was invalid when the files were taken fails each of its films. */
export function batchAge(settings: BatchSettings): number | undefined {
  if ('error' in settings.age) throw new Error(settings.age.error);
  return settings.age.years;
}

/** The age a card was computed with, on the card: it decides whether a finding is shown at all. */
export function ageNote(age: number | undefined, dicom: boolean): string {
  if (age === undefined) return 'no age typed';
  const typed = `age typed ${age} ${age === 1 ? 'year' : 'years'}`;
  return dicom
    ? `${typed} (with the DICOM's own ages: any under ${MIN_AGE_YEARS} or over ${MAX_AGE_YEARS} years decides)`
    : typed;
}

/** Where an answer's age came from, in words. */
const AGE_SOURCE: Record<AnswerAge['source'], string> = {
  header: 'from the DICOM header',
  dates: "from the film's birth and study dates",
  stated: 'as typed on this page',
};

const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;

/**
 * An age in years as people say it: completed years from 2 up (a typed age as typed), completed months under 2,
 * weeks under a month, days under a week. The fraction is the verdict's arithmetic, not a figure to read.
 */
export function ageWords(years: number, typed = false): string {
  // A hair over: 3 years' worth of days divided out is 2.9999… years.
  const whole = (n: number) => Math.floor(n + 1e-6);
  if (years >= 2) return plural(typed ? Math.round(years * 100) / 100 : whole(years), 'year');
  if (years >= 1 / 12) return plural(whole(years * 12), 'month');
  if (years >= 7 / 365.25) return plural(whole((years * 365.25) / 7), 'week');
  return plural(whole(years * 365.25), 'day');
}

/**
 * What a card with a finding says about the age its answer was judged at, and whether that is a caution. The
 * answer says the age it took and where from (`age`); an answer from an older server says nothing (undefined),
 * and the page then says what it knows: the age typed with the batch, and whether the film was a DICOM, whose
 * header the server reads for its own age. Without any age the model's answer is given all the same (a JPEG or
 * PNG carries none), and a reader saw "Signs of pneumonia detected" on an adult's film with only "no age typed"
 * in grey: the model is validated for its intended population only (predict/verdict.ts, the model card's
 * intended use), so an unknown age is a caution, said beside the finding.
 */
export function ageUsed(
  answered: AnswerAge | null | undefined,
  years: number | undefined,
  dicom: boolean,
): { text: string; caution: boolean } {
  if (answered) {
    const words = ageWords(answered.years, answered.source === 'stated');
    return { text: `Age ${words}, ${AGE_SOURCE[answered.source]}.`, caution: false };
  }
  const only = `The model is validated only for ${INTENDED_POPULATION}`;
  if (answered === null && years === undefined)
    return {
      text: dicom
        ? 'Age unknown: no age was typed, and the DICOM header gives none (no age, no birth date). ' +
          `${only}: check the patient's age, or type it and analyze the film again.`
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
