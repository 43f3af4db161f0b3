// What a prediction may be used for: the one place that turns the OOD gate, the image checks and
// the DICOM header into the answer a clinician sees. A probability is only a finding when the
// image is a frontal chest X-ray of the population the model was trained on (children aged 1–5):
//   - 'cannot-assess': the image is not something the model can read (blank, tiny, stretched or
//     squashed out of any film's shape, inverted, colour, noise, lateral, not a radiograph, a DICOM FOR
//     PROCESSING image (raw detector data, not yet a film to read), or unlike any chest X-ray to the OOD gate).
//     The answer has no label (shownLabel): its model label is no finding.
//   - 'outside-population': a chest radiograph, but of a patient the model was not made for
//     (DICOM PatientAge, the age from its PatientBirthDate and StudyDate, or the age the user gave
//     with the image, under 1 or over 10 years; or a chest radiograph by its header that the gate
//     finds unlike the training films). The number is shown for reference only.
//   - 'assessed': none of the above; the label is a decision aid, never a diagnosis.
// Reasons are read by clinicians on the page and in History: each leads with plain words and ends
// with its numbers in brackets, for a technician ("gate score" is the OOD gate's score, "limit" its
// threshold); the acronym stays in the code ('OOD') and the API's field, never in a message.
// No Node imports: the web page bundles this module, so the browser's verdict is the server's.
import type { AgeFromDates } from '../data/dicom_age';
import { IMAGE_CHECK_CODES, type ImageCheck, type ImageFacts } from '../explain/image_checks';

export type VerdictStatus = 'assessed' | 'cannot-assess' | 'outside-population';

/** Every reason code a verdict may give: the image checks' own, then the verdict's (the API's schemas list them). */
export const VERDICT_REASON_CODES = [...IMAGE_CHECK_CODES, 'OOD', 'TOO_SMALL', 'ASPECT', 'AGE'] as const;
export type VerdictReasonCode = (typeof VERDICT_REASON_CODES)[number];

export interface VerdictReason {
  code: VerdictReasonCode;
  /** For people, e.g. "image is blank or nearly uniform (contrast 0.0 of 255)". */
  message: string;
}

export interface Verdict {
  status: VerdictStatus;
  /** Why the status is not 'assessed' (empty when it is). */
  reasons: VerdictReason[];
}

/** Ages above this are outside the population; the margin over 5 keeps borderline ages assessed. */
export const MAX_AGE_YEARS = 10;
/** The oldest training films' age: an answer in the margin above it is given, with a note that says so. */
export const INTENDED_MAX_YEARS = 5;
/**
 * Ages below this are outside the population: the youngest training films' (the Kermany films are of children
 * one to five years old), with no margin below. An infant's chest film differs from a toddler's more than a
 * ten-year-old's does from a five-year-old's (a large thymus that can mimic consolidation, other proportions of
 * heart, lungs and ribs), so a few months under 1 is already a film the model never saw the like of.
 */
export const MIN_AGE_YEARS = 1;
export const INTENDED_POPULATION = `children aged ${MIN_AGE_YEARS}–${INTENDED_MAX_YEARS}`;

/** The ages a caller may state (years; a newborn is 0). */
export const STATED_AGE_RANGE = { min: 0, max: 130 } as const;

/** Whether `years` is an age a caller may state (every edge that takes one checks it here). */
export function isStatedAge(years: number): boolean {
  return Number.isFinite(years) && years >= STATED_AGE_RANGE.min && years <= STATED_AGE_RANGE.max;
}
/** A shorter side below this has too little detail for a 1-pixel-per-structure reading (e.g. a 1×1 image). */
export const MIN_SIDE = 64;
/**
 * A long side over this many times the short side is no chest film's shape. Squashed to the model's square,
 * such an image's anatomy is distorted beyond anything the model saw, and the image checks and the gate, which
 * read the square, cannot tell (a validation film stretched to 64×5000 was read as PNEUMONIA, assessed). The
 * real films run from 0.84 (256×306, taller than wide) to 3.18 (445×140, wider than tall) width over height:
 * all 5,232 of train/ and val/, the 12 of samples-fullres and the 6 of dicom-samples, measured as decoded (EXIF
 * orientation applied) with `sharp(file).metadata()` (autoOrient) for JPEG/PNG and predict/decode_input.ts for
 * DICOM (a loop over /work/shared/data/chest_xray/{train,val}, samples-fullres and dicom-samples). 6 leaves
 * almost twice the widest real film's ratio (a tall image has its own bound, MAX_TALL_ASPECT). The robustness
 * benchmark's 'aspect' change (data/perturb_catalog.ts: width × 0.9, 0.8, 0.7 at strengths 1/3, 2/3, 1) squashes
 * the content inside the square, as a film of ratio up to 1/0.7 = 1.43 would be: far inside both bounds, and it
 * never changes the size of the file, which is what this reads.
 */
export const MAX_ASPECT = 6;
/**
 * The bound for an image taller than wide, tighter: the tallest real film is 1.19 times as tall as wide (a
 * portrait 14×17-inch cassette is 1.21), and a tall strip such as 64×224 (3.5 to 1) was assessed under the
 * wide bound. 3 leaves two and a half times the tallest real film's ratio.
 */
export const MAX_TALL_ASPECT = 3;
export interface VerdictEvidence {
  /** The statistical OOD gate's result; null when the model has no gate. */
  ood: { score: number; threshold: number; outOfDistribution: boolean } | null;
  checks: readonly ImageCheck[];
  /** The input's size as decoded. */
  width: number;
  height: number;
  /** DICOM header facts (absent for JPEG/PNG). */
  facts: Pick<ImageFacts, 'modality' | 'bodyPart' | 'viewPosition' | 'patientAge'> & {
    /** The age from PatientBirthDate and the study's date (data/dicom_age.ts), used when PatientAge is unreadable. */
    ageFromDates?: AgeFromDates;
  };
  /**
   * The patient's age in years as the user gave it with the image (a JPEG or PNG carries none). The DICOM
   * header's own ages are trusted first, but any of them outside the bounds makes the film outside-population.
   */
  statedAgeYears?: number;
}

export interface AgeSource {
  years: number;
  /**
   * A PatientAge counts completed units ('052W': 52 weeks and up to six days more), so the age lies from `years` up
   * to (not including) this; absent for an age that is one number (the dates, a typed age).
   */
  untilYears?: number;
  source: 'header' | 'dates' | 'stated';
  /** For people, as the AGE reason words it: "the DICOM header gives" (a patient age over 10 years). */
  gives: string;
  /** For people, as ageWarnings (verdict_notes.ts) words it: "the age from PatientBirthDate and StudyDate". */
  what: string;
}

/** The ages a film comes with, most trusted first: the header's PatientAge, its dates, the age given with it. */
function ageSources(e: Pick<VerdictEvidence, 'facts' | 'statedAgeYears'>): AgeSource[] {
  const out: AgeSource[] = [];
  const header = ageSpanInYears(e.facts.patientAge);
  if (header !== null)
    out.push({ ...header, source: 'header', gives: 'the DICOM header gives', what: 'the PatientAge' });
  const dates = e.facts.ageFromDates;
  if (dates && dates.years !== null) {
    out.push({
      years: dates.years,
      source: 'dates',
      gives: `the DICOM header's PatientBirthDate and ${dates.from} give`,
      what: `the age from PatientBirthDate and ${dates.from}`,
    });
  }
  if (e.statedAgeYears !== undefined) {
    const what = 'the age given with the image';
    out.push({ years: e.statedAgeYears, source: 'stated', gives: `${what} is`, what });
  }
  return out;
}

/** Which side of the intended population an age falls on: under MIN_AGE_YEARS, over MAX_AGE_YEARS, or within. */
export function sideOf(years: number): 'under' | 'over' | null {
  return years < MIN_AGE_YEARS ? 'under' : years > MAX_AGE_YEARS ? 'over' : null;
}

/**
 * sideOf for a source: a PatientAge is under the lower bound only when all of its span is ('052W' reaches 364
 * to 370 days: a first birthday, as '012M' is; '051W' and '364D' stay under). Over the upper bound its lowest
 * age already decides, as for one number.
 */
function sideOfSource(a: AgeSource): 'under' | 'over' | null {
  const side = sideOf(a.years);
  return side === 'under' && a.untilYears !== undefined && a.untilYears > MIN_AGE_YEARS ? null : side;
}

export type TakenAge = AgeSource & {
  /** Where the age falls outside the intended population; absent when within it. */
  outside?: 'under' | 'over';
  /** A source whose age is within the population while the taken one is not (the ages disagree). */
  within?: AgeSource;
};

/**
 * The patient's age as the verdict takes it: the most trusted one, unless another source puts the patient
 * outside the intended population (under 1 or over 10 years). Ages disagree (a date shifted by an anonymiser,
 * a header copied from another study, an age typed for the film): the film is then judged outside the
 * population, its number for reference only, rather than read as a child's on the strength of one source.
 * Two sources outside on opposite sides (an adult's header, an infant's typed age) leave the film outside
 * either way: the most trusted is named.
 */
export function patientAge(e: Pick<VerdictEvidence, 'facts' | 'statedAgeYears'>): TakenAge | null {
  const all = ageSources(e);
  if (!all.length) return null;
  const taken = all.find((a) => sideOfSource(a) !== null);
  if (!taken) return all[0];
  const outside = sideOfSource(taken)!;
  // A PatientAge counts completed units ('010Y': ten years and up to one more; '052W': 364 to 370 days): dates
  // within its span ('010Y' and 10.4; '052W' and 364 days) only say it more precisely, and the reason must not
  // call the two at odds. '001Y' with dates that give 0.9 do disagree.
  const agrees = (a: AgeSource) => {
    if (a.source !== 'header' || taken.source !== 'dates' || a.untilYears === undefined) return false;
    // Years are counted as the dates count them; months, weeks and days are average ones against the dates'
    // real ones (a leap year, a February): a few days of slack.
    const slack = a.untilYears - a.years < 1 ? SPAN_SLACK_YEARS : 0;
    return taken.years >= a.years - slack && taken.years < a.untilYears + slack;
  };
  const within = all.find((a) => sideOfSource(a) === null && !agrees(a));
  return { ...taken, outside, ...(within ? { within } : {}) };
}

/** The age an answer says it was judged at (prediction_schema.ts ageSchema): no dates, no words, only the age. */
export interface AnswerAge {
  years: number;
  untilYears?: number;
  source: AgeSource['source'];
}

/** patientAge as an answer carries it (Predictor.predict): null when the film has no age. */
export function answerAge(e: Pick<VerdictEvidence, 'facts' | 'statedAgeYears'>): AnswerAge | null {
  const a = patientAge(e);
  if (a === null) return null;
  return { years: a.years, ...(a.untilYears !== undefined ? { untilYears: a.untilYears } : {}), source: a.source };
}

/** How far dates may fall outside a PatientAge's span in months, weeks or days and still agree with it. */
const SPAN_SLACK_YEARS = 3 / 365.25;

/** DICOM AS value ('004Y', '018M', '010W', '003D', or a bare number of years) in years; null when unreadable. */
export function ageInYears(as: string | undefined): number | null {
  return ageSpanInYears(as)?.years ?? null;
}

/** DICOM AS value as the span of ages it counts: `years` completed units, up to one unit more. */
function ageSpanInYears(as: string | undefined): { years: number; untilYears: number } | null {
  const m = /^\s*(\d{1,3})\s*([DWMY]?)\s*$/i.exec(as ?? '');
  if (!m) return null;
  const n = Number(m[1]);
  const per = { D: 365.25, W: 52.18, M: 12, Y: 1, '': 1 }[m[2].toUpperCase() as 'D' | 'W' | 'M' | 'Y' | ''];
  return { years: n / per, untilYears: (n + 1) / per };
}

/**
 * What the OOD gate measures, in a clinician's words: every OOD reason says it. The gate scores the network's
 * own features of the image (explain/ood.ts), not the picture's statistics as the layout check does
 * (explain/image_checks.ts LAYOUT), and the two reasons often come together: each says what it measured.
 */
const FEATURES_FAR = "the model's own features of the image are far from";
const UNLIKE_TRAINING = `${FEATURES_FAR} those of the chest films it was trained on`;

/** The gate's score and its threshold, the trailing detail of every OOD reason (for a technician). */
const oodScore = (ood: NonNullable<VerdictEvidence['ood']>) =>
  `gate score ${ood.score.toFixed(1)}, limit ${ood.threshold.toFixed(1)}`;

/** The gate's finding, as the API and the page word it. */
export function oodReason(ood: VerdictEvidence['ood']): VerdictReason | null {
  if (!ood?.outOfDistribution) return null;
  return {
    code: 'OOD',
    message: `does not look like a frontal chest X-ray to the model: ${UNLIKE_TRAINING} (${oodScore(ood)})`,
  };
}

/** A ratio rounded up to two decimals: one just past a bound never reads as the bound itself (3073/512 not "6.00"). */
export const ratioText = (aspect: number) => (Math.ceil(aspect * 100) / 100).toFixed(2);

/**
 * What an image's size alone rules out: too small to read, or a shape no chest film has. Predictions and the
 * films site adaptation screens (Predictor.screen) both apply it.
 */
export function shapeReasons(width: number, height: number): VerdictReason[] {
  const out: VerdictReason[] = [];
  const side = Math.min(width, height);
  if (side < MIN_SIDE) {
    out.push({
      code: 'TOO_SMALL',
      message: `image is too small to read (${width}×${height} pixels; at least ${MIN_SIDE} on the shorter side)`,
    });
  }
  const aspect = Math.max(width, height) / Math.max(1, side);
  const tall = height > width;
  const bound = tall ? MAX_TALL_ASPECT : MAX_ASPECT;
  if (side > 0 && aspect > bound) {
    const [long, short] = tall ? ['tall', 'wide'] : ['wide', 'tall'];
    const ratio = ratioText(aspect);
    out.push({
      code: 'ASPECT',
      message:
        `image is ${width}×${height} pixels, ${ratio} times as ${long} as it is ${short}: no chest film ` +
        `has that shape (more than ${bound} to 1 ${long} is not read), and squashed to the square the model ` +
        'reads it would be distorted beyond reading. Send the film as taken, not stretched or cut to a strip',
    });
  }
  return out;
}

export function deriveVerdict(e: VerdictEvidence): Verdict {
  // The most concrete reason first: the image's size (which also distorts what the checks read of its square),
  // then colour, blank, inverted, the DICOM header, and the layout check's catch-all last, then the gate: a
  // colour photo's card led with its layout, which says less than "colour image".
  const checks = e.checks.map((c): VerdictReason => ({ code: c.code, message: c.message }));
  const unreadable: VerdictReason[] = [
    ...shapeReasons(e.width, e.height),
    ...checks.filter((c) => c.code !== 'LAYOUT'),
    ...checks.filter((c) => c.code === 'LAYOUT'),
  ];
  const age = patientAge(e);
  const fromFile = age !== null && age.source !== 'stated';
  const ageReason: VerdictReason | null = age?.outside
    ? // The bound, not the age: warnings are stored in the audit log, which keeps no patient data.
      {
        code: 'AGE',
        message:
          `outside the intended population (${INTENDED_POPULATION}): ${age.gives} a patient age ` +
          (age.outside === 'over' ? `over ${MAX_AGE_YEARS} years` : `under ${MIN_AGE_YEARS} year`) +
          (age.within
            ? ` (${age.within.what} does not; of ages that disagree the one outside the intended population is taken)`
            : ''),
      }
    : null;
  const ood = oodReason(e.ood);
  if (unreadable.length) {
    return {
      status: 'cannot-assess',
      reasons: [...unreadable, ...(ood ? [ood] : []), ...(ageReason ? [ageReason] : [])],
    };
  }
  // A header that says chest radiograph (DICOM, no header check fired) makes an OOD score mean
  // "a chest film unlike the training films" (an adult's, another site's), not "not a chest X-ray".
  const chestByHeader = e.facts.modality !== undefined || e.facts.bodyPart !== undefined;
  // An age typed with a file the gate rejects says nothing about what the file is: still not a chest X-ray.
  if (ageReason && ood && !fromFile && !chestByHeader) return { status: 'cannot-assess', reasons: [ood, ageReason] };
  if (ageReason) {
    const unlike = ood && {
      code: 'OOD' as const,
      message: `unlike the children's films the model was trained on: ${FEATURES_FAR} theirs (${oodScore(e.ood!)})`,
    };
    return { status: 'outside-population', reasons: [ageReason, ...(unlike ? [unlike] : [])] };
  }
  if (ood && chestByHeader && age === null) {
    return {
      status: 'outside-population',
      reasons: [
        {
          code: 'OOD',
          message:
            `outside the intended population (${INTENDED_POPULATION}): a chest radiograph by its DICOM header, ` +
            `but ${FEATURES_FAR} those of the children's films it was trained on (${oodScore(e.ood!)})`,
        },
      ],
    };
  }
  if (ood) return { status: 'cannot-assess', reasons: [ood] };
  return { status: 'assessed', reasons: [] };
}

/**
 * The status of an answer as a reader is shown it: its verdict, or, for an answer without one (a row
 * logged before schema v4 of the audit log, an older server), "cannot assess" when it carries warnings.
 * One rule for the page's Analyze and History views and for `cxr history`.
 */
export function statusOf(r: { verdict?: { status: VerdictStatus }; warnings: readonly string[] }): VerdictStatus {
  return r.verdict?.status ?? (r.warnings.length ? 'cannot-assess' : 'assessed');
}

/**
 * Whether a heat map is shown with an answer (the page's Analyze and History views, `cxr predict
 * --heatmaps`): not over an image the model cannot assess, whose colours would invite reading them as a
 * finding.
 */
export function showsHeatmap(status: VerdictStatus): boolean {
  return status !== 'cannot-assess';
}

/**
 * The label an answer shows, one rule for every way it is given (Predictor.predict, the API and its history,
 * `cxr predict`, `cxr history`, the page): none (null) when the image cannot be assessed, whose model label is
 * no finding; the label otherwise, for reference only when outside the population. Read through statusOf, so
 * an audit row logged before this rule, which kept the model label of every answer, reads the same; the
 * history's label filter agrees (serve/audit_sql.ts).
 */
export function shownLabel<L extends string>(r: {
  verdict?: { status: VerdictStatus };
  warnings: readonly string[];
  label: L | null;
}): L | null {
  return statusOf(r) === 'cannot-assess' ? null : r.label;
}

/**
 * The headline shown for a result: a decision aid's wording, never a diagnosis ("no signs of
 * pneumonia detected", not "no pneumonia"), and no finding at all when the image cannot be assessed.
 */
export function verdictHeadline(status: VerdictStatus, label: 'NORMAL' | 'PNEUMONIA' | null): string {
  if (status === 'cannot-assess') return 'Cannot assess this image';
  if (status === 'outside-population') return `Outside the intended population (${INTENDED_POPULATION})`;
  return label === 'PNEUMONIA' ? 'Signs of pneumonia detected' : 'No signs of pneumonia detected';
}
