// Notes that qualify an answer without changing its verdict (predict/verdict.ts): an age the header could
// not give, an age in the margin above the training ages, a shape no normal training film had. Short and
// plain, as the page, History and `cxr predict` show them under the answer; the numbers stay in them.
// No Node imports: the web page bundles this module with verdict.ts, so its local mode notes the same.
import {
  ageInYears,
  INTENDED_MAX_YEARS,
  MAX_AGE_YEARS,
  MIN_AGE_YEARS,
  patientAge,
  ratioText,
  shapeReasons,
  type Verdict,
  type VerdictEvidence,
} from './verdict';

/**
 * Wider than this many times its height, an answer is still given but carries a note (shapeNotes). Measured on
 * the 5,216 films of /work/shared/data/chest_xray/train as decoded (`sharp(file).metadata()`, EXIF orientation
 * applied): the widest is 3.18 to 1 (445×140, PNEUMONIA/person325_virus_659), but only 36 are wider than 2 to 1
 * and every one of them is a pneumonia film; the widest normal film is 1.81 to 1 (463×256, NORMAL/IM-0199-0001,
 * the next 1.57). Past 2 to 1 the model has seen no normal film of that shape, so its answer may follow the
 * shape rather than the lungs (a normal film stretched to 1500×300 read NORMAL 0.9 %, the 445×140 training strip
 * PNEUMONIA 100 %), and no accuracy was measured on films of that shape. 2 sits just above the widest normal
 * film; "just above the widest film" (3.18) would leave 36 of these strips, person325's among them, unnoted.
 */
export const NOTE_WIDE_ASPECT = 2;
/** The widest training film, width over height (445×140, see NOTE_WIDE_ASPECT): wider is wider than any. */
export const WIDEST_TRAINING_ASPECT = 445 / 140;

/**
 * Warnings about the patient's age that leave the verdict as it is: a DICOM header whose PatientAge, or
 * whose dates, could not be read, so that the age is unknown (or comes from the next source). Without
 * them such a film is assessed as if its header had no age at all, and nobody learns why.
 */
export function ageWarnings(e: Pick<VerdictEvidence, 'facts' | 'statedAgeYears'>): string[] {
  const raw = e.facts.patientAge;
  const dates = e.facts.ageFromDates;
  const age = patientAge(e);
  const instead = age === null ? "the patient's age is unknown" : `${age.what} is used`;
  const out: string[] = [];
  if (raw !== undefined && ageInYears(raw) === null) {
    // Never the value, not even with its digits hidden: the warning is kept in the audit log, which keeps
    // no patient data, and an age written in words ('FORTY', 'ABOUT 5 YEARS') is an age all the same.
    // Its length says enough to tell a padded or garbled field from a sentence.
    const n = raw.trim().length;
    out.push(
      `the DICOM's PatientAge (0010,1010) is not in the nnnD, nnnW, nnnM or nnnY form in which DICOM writes an ` +
        `age (its value, ${n} character${n === 1 ? '' : 's'}, is not shown): ${instead}`,
    );
  }
  if (dates && dates.years === null) {
    out.push(`the patient's age could not be worked out from the DICOM's dates (${dates.problem}): ${instead}`);
  }
  if (dates && dates.years !== null && dates.unreadable?.length) {
    out.push(
      `the DICOM's ${dates.unreadable.join(', ')} could not be read as a date (YYYYMMDD): the age from ` +
        `PatientBirthDate counts to ${dates.from}`,
    );
  }
  // The margin: answered (assessed), but the page says "for children aged 1-5", so the answer says it too. The
  // bound, not the age (the audit log keeps no patient data); its source named ("the PatientAge", "the age
  // given with the image"), so a typed age is told from the header's.
  if (age !== null && age.years > INTENDED_MAX_YEARS && !age.outside) {
    out.push(
      `${age.what} is over ${INTENDED_MAX_YEARS} years: older than the children the model was trained on ` +
        `(ages ${MIN_AGE_YEARS}–${INTENDED_MAX_YEARS}); answered up to ${MAX_AGE_YEARS} years, but not validated ` +
        'at this age',
    );
  }
  return out;
}

/** The note on an image wider than NOTE_WIDE_ASPECT, within MAX_ASPECT: answered, as the age margin is. */
export function shapeNotes(width: number, height: number): string[] {
  const aspect = width / Math.max(1, height);
  if (!(aspect > NOTE_WIDE_ASPECT) || shapeReasons(width, height).length) return [];
  const ratio = `${ratioText(aspect)} to 1`;
  // Short: it sits under the answer with the other notes (the page shows the image's size beside it).
  const lead =
    aspect > WIDEST_TRAINING_ASPECT
      ? `image wider than any training film (${ratio}, widest ${ratioText(WIDEST_TRAINING_ASPECT)}): every one`
      : `unusually wide image (${ratio}): every training film`;
  return [
    `${lead} wider than ${NOTE_WIDE_ASPECT} to 1 showed pneumonia, so this answer may follow the shape; check the ` +
      'film as exported',
  ];
}

/**
 * The notes that leave the verdict as it is: the age's (ageWarnings), then the shape's (shapeNotes, not where
 * the image cannot be assessed). For every way an answer is given (Predictor.predict, the page's local mode).
 */
export function verdictNotes(
  e: Pick<VerdictEvidence, 'facts' | 'statedAgeYears' | 'width' | 'height'>,
  verdict: Pick<Verdict, 'status'>,
): string[] {
  return [...ageWarnings(e), ...(verdict.status === 'cannot-assess' ? [] : shapeNotes(e.width, e.height))];
}
