// What the user set for a batch (operating point, patient age, "Process on this computer"), read once
// when its files are taken: a queued film must not pick up the next patient's age, another operating
// point or another processing place typed while it waits its turn.
import * as api from './api';
import { STATED_AGE_RANGE } from '../../predict/verdict';
import { $ } from './dom';
import { announce } from './status_line';

export interface BatchSettings {
  operatingPoint: string;
  /**
   * The typed age in years (undefined: none) and, typed in months, the months as typed (the grey line says both);
   * or why the field cannot be read, said on every card.
   */
  age: StatedAge | { years: undefined } | { error: string };
  local: boolean;
}

/** An age read from the field: years, as the API takes it; `months` where it was typed in months. */
export interface StatedAge {
  years: number;
  months?: number;
}

function globalOperatingPoint(): string {
  return document.querySelector<HTMLInputElement>('input[name="op-global"]:checked')?.value ?? 'balanced';
}

/** The ages the server takes; it checks them again. */
const AGE_MIN = STATED_AGE_RANGE.min;
const AGE_MAX = STATED_AGE_RANGE.max;

/** The units the field takes after a number (any case): years, or months as paediatric ages are often said. */
const YEAR_UNITS = ['y', 'yr', 'yrs', 'year', 'years'];
const MONTH_UNITS = ['mo', 'mos', 'month', 'months'];

/**
 * The age in `text` as typed: decimal digits with a dot or a comma as the decimal separator ("0,5" is half a
 * year in much of the world; a number field in an English browser made it "05", five years), in years, or in
 * months with the unit ("18 months", "18 mo"; a child's age is often said so, and was refused). A bare number is
 * years. Anything else is an error that says why, never a guess: "18 m" may be months or a typo, and an infant's
 * film read as an 18-year-old's would be assessed.
 */
export function parseAge(text: string): StatedAge | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  const rule =
    `Patient age must be a number of years from ${AGE_MIN} to ${AGE_MAX}, such as 3, 0.5 or 2 years, or of months ` +
    'with the unit, such as 18 months (or left empty)';
  const m = /^(\d+)(?:[.,](\d+))?\s*([a-z]*)$/i.exec(t);
  const unit = m?.[3].toLowerCase() ?? '';
  const inMonths = MONTH_UNITS.includes(unit);
  if (!m || !(unit === '' || inMonths || YEAR_UNITS.includes(unit))) throw new Error(`${rule}; "${t}" is not one.`);
  if (/^0\d/.test(m[1])) {
    const n = Number(m[1]);
    const say = inMonths ? `${n} months` : `${n} for ${n} years, or 0.5 for half a year`;
    throw new Error(`${rule}; "${t}" starts with a zero: type ${say}.`);
  }
  const value = Number(`${m[1]}.${m[2] ?? '0'}`);
  const years = inMonths ? value / 12 : value;
  if (years < AGE_MIN || years > AGE_MAX)
    throw new Error(`${rule}; ${t}${inMonths ? ` (${Math.round(years * 10) / 10} years)` : ''} is out of that range.`);
  return inMonths ? { years, months: value } : { years };
}

/** The age typed on the page (undefined: none); the field says inline what is wrong with it. */
function statedAge(): StatedAge | undefined {
  const field = $('#patient-age') as HTMLInputElement;
  const error = $('#patient-age-error');
  try {
    const age = parseAge(field.value);
    field.removeAttribute('aria-invalid');
    error.hidden = true;
    return age;
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
    age = statedAge() ?? { years: undefined };
  } catch (e) {
    age = { error: api.humanError(e) };
  }
  return { operatingPoint: globalOperatingPoint(), age, local: localMode() };
}

/** The batch's age in years; an age that was invalid when the files were taken fails each of its films. */
export function batchAge(settings: BatchSettings): number | undefined {
  if ('error' in settings.age) throw new Error(settings.age.error);
  return settings.age.years;
}

/** The batch's age in months as typed, where it was typed in months (the grey line says it in those words). */
export function batchAgeMonths(settings: BatchSettings): number | undefined {
  return 'months' in settings.age ? settings.age.months : undefined;
}
