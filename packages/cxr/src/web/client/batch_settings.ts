// What the user set for a batch (operating point, patient age, "Process on this computer"), read once
// when its files are taken: a queued film must not pick up the next patient's age, another operating
// point or another processing place typed while it waits its turn.
import * as api from './api';
import { $ } from './dom';

export interface BatchSettings {
  operatingPoint: string;
  /** The typed age in years (undefined: none), or why the field cannot be read, said on every card. */
  age: { years: number | undefined } | { error: string };
  local: boolean;
}

function globalOperatingPoint(): string {
  return document.querySelector<HTMLInputElement>('input[name="op-global"]:checked')?.value ?? 'balanced';
}

/** The age typed on the page, in years; undefined when the field is empty. An invalid age is an error, not ignored. */
function statedAge(): number | undefined {
  const field = $('#patient-age') as HTMLInputElement;
  // A number field reports text it cannot read as empty, with badInput set.
  if (field.value === '' && !field.validity.badInput) return undefined;
  if (!field.checkValidity())
    throw new Error(`Patient age must be a number of years from ${field.min} to ${field.max} (or left empty).`);
  return field.valueAsNumber;
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
  return dicom
    ? `age typed ${age} years (with the DICOM's own ages: any under 1 or over 10 years decides)`
    : `age typed ${age} years`;
}
