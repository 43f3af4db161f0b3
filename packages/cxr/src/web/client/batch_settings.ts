// What the user set for a batch (operating point, patient age, "Process on this computer"), read once
// when its files are taken: a queued film must not pick up the next patient's age, another operating
// point or another processing place typed while it waits its turn.
import * as api from './api';
import { STATED_AGE_RANGE } from '../../predict/verdict';
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
