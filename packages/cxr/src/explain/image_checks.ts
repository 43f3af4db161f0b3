// Image checks that need no fitting (blank, noise, inverted, colour, DICOM header facts). Pure
// functions with no Node imports: the web page bundles this module, so an image analysed in the
// browser is checked by the same code as on the server.
import { layoutDecision } from './film_layout';
import type { AgeFromDates } from '../data/dicom_age';

export interface ImageFacts {
  /** The model input: size × size grayscale. */
  pixels: Uint8Array;
  size: number;
  /** Fraction of pixels with saturated colour in the original (0 for grayscale sources). */
  colourFraction?: number;
  /** From a DICOM header, upper-case. */
  modality?: string;
  viewPosition?: string;
  bodyPart?: string;
  /** A DICOM image FOR PROCESSING (data/dicom.ts): raw detector data, not a film processed for reading. */
  forProcessing?: boolean;
  /** (0010,1010) PatientAge as written, e.g. '004Y' or '62'; read by predict/verdict.ts, not here. */
  patientAge?: string;
  /** The age from PatientBirthDate and the study's date (data/dicom_age.ts); read by predict/verdict.ts, not here. */
  ageFromDates?: AgeFromDates;
}

/** The checks' codes, as a list for the schemas that name them (predict/verdict.ts VERDICT_REASON_CODES). */
export const IMAGE_CHECK_CODES = [
  'BLANK',
  'LOW_CONTRAST',
  'NOISE',
  'INVERTED',
  'LAYOUT',
  'COLOUR',
  'LATERAL',
  'BODY_PART',
  'MODALITY',
  'FOR_PROCESSING',
] as const;

export interface ImageCheck {
  code: (typeof IMAGE_CHECK_CODES)[number];
  message: string;
}

// The contrast (mediastinum − lung fields) / std at 160 px: ≥ 0.05 on every training film (≥ 0.26
// on 99.5%), ≥ 0.01 on every validation film under the benchmark's mild changes; a negative has
// it the other way round. Zero also stops flat textures and pages with no chest layout at all.
const INVERTED_BELOW = 0;
// Mean neighbour difference / std: radiographs are smooth (at most 0.23 at 64 px, less at larger
// sizes), white noise is about 1.15, grass or gravel photos 0.6-0.9.
const ROUGHNESS_ABOVE = 0.5;
const BLANK_STD_BELOW = 6;
// The gray levels from the 1st to the 99th percentile span at least 85 of 255 on every one of the
// 5,232 films of train/ and val/ at 160 px (at least 102 on all but three, all pneumonia films;
// scripts/level-spans.js). Squeezed below that (a film washed out or nearly black), NORMAL films can
// score as PNEUMONIA with confidence and nothing else flags them: such a film cannot be read, rather
// than read wrongly. The bound leaves room for a mild contrast loss on the flattest real film.
const LEVEL_SPAN_BELOW = 70;
const COLOUR_FRACTION_ABOVE = 0.05;
/** A share as the page writes one: "90 %", a no-break space before the sign (web/client/dom.ts percent). */
const percent = (fraction: number) => `${Math.round(fraction * 100)}\u00a0%`;
/** ViewPosition values read as no frontal view (the LATERAL warning; the PACS skips such films, pacs/filter.ts). */
export const LATERAL_VIEWS = new Set(['LL', 'RL', 'LAT', 'LATERAL', 'RLD', 'LLD', 'XTABLE']);
/**
 * The modalities of a plain film, the kind the model was trained on: computed and digital radiography (DR, which
 * vendors still write) and RG, a film digitised from a radiographic plate. Also the films `cxr orthanc sync` and
 * `cxr enqueue --orthanc-all` take from the PACS (pacs/filter.ts): one rule, so that a film `cxr predict` reads
 * without a warning is never skipped there, and one the PACS skips is warned about here.
 */
export const FILM_MODALITIES: readonly string[] = ['CR', 'DX', 'DR', 'RG'];
const FILM_MODALITY = new Set(FILM_MODALITIES);
/**
 * X-ray modalities that are no plain film (fluoroscopy, dental panoramic and intra-oral, angiography,
 * mammography): warned about in other words than "not a radiograph", which they are.
 */
const OTHER_XRAY_MODALITIES = new Set(['RF', 'PX', 'IO', 'XA', 'MG']);
// A header's free text is quoted in a warning only when it is one of these DICOM defined terms: warnings
// are stored in the audit log, which keeps no patient data, and a file may hold anything in these tags (a
// name, a birth year, a line break that would forge a line of `cxr history`). A code-string shape alone
// ([A-Z0-9_ ]{1,16}) would still let 'SMITH JOHN' through. Modality: PS3.3 C.7.3.1.1.1 (current and
// retired terms, and DR, which vendors still write); BodyPartExamined: PS3.16 Annex L's terms.
export const MODALITY_TERMS: ReadonlySet<string> = new Set(
  (
    'AR AS ASMT AU BDUS BI BMD CD CF CFM CP CR CS CT CTPROTOCOL DD DF DG DM DMS DOC DR DS DX EC ECG EEG EMG EOG EPS ' +
    'ES FA FID FS GM HC HD IO IOL IVOCT IVUS KER KO LEN LP LS MA MG MR MS M3D NM OAM OCT OP OPM OPR OPT OPTBSV ' +
    'OPTENF OPV OSS OT PLAN POS PR PT PX REG RESP RF RG RTDOSE RTIMAGE RTINTENT RTPLAN RTRAD RTRECORD RTSEGANN ' +
    'RTSTRUCT RWV SEG SM SMR SR SRF ST STAIN TEXTUREMAP TG US VA VF XA XAPROTOCOL XC'
  ).split(' '),
);
export const BODY_PART_TERMS: ReadonlySet<string> = new Set(
  (
    'ABDOMEN ABDOMENPELVIS ACJOINT ADRENAL AMNIOTICFLUID ANKLE ANUS AORTA APPENDIX ARM AXILLA BACK BILEDUCT ' +
    'BLADDER BRAIN BREAST BRONCHUS BUTTOCK CALCANEUS CALF CAROTID CEREBELLUM CERVIX CHEEK CHEST CHESTABDOMEN ' +
    'CHESTABDPELVIS CIRCLEOFWILLIS CLAVICLE COCCYX COLON CORNEA CORONARYARTERY CSPINE CTSPINE DUODENUM EAR ELBOW ' +
    'ESOPHAGUS EXTREMITY EYE EYELID FACE FEMUR FINGER FOOT FOREARM GALLBLADDER HAND HEAD HEADNECK HEART HIP ' +
    'HUMERUS IAC ILEUM ILIUM JAW JEJUNUM KIDNEY KNEE LARYNX LEG LIVER LSPINE LSSPINE LUNG MAXILLA MEDIASTINUM ' +
    'MOUTH NECK NECKCHEST NECKCHESTABDOMEN NECKCHESTABDPELV NOSE ORBIT OVARY PANCREAS PAROTID PATELLA PELVIS PENIS ' +
    'PHARYNX PROSTATE RADIUS RECTUM RIB SCALP SCAPULA SCLERA SCROTUM SHOULDER SKULL SPINE SPLEEN SSPINE STERNUM ' +
    'STOMACH SUBMANDIBULAR TESTIS THIGH THORAX THUMB THYMUS THYROID TIBIA TLSPINE TMJ TOE TONGUE TRACHEA TSPINE ' +
    'ULNA URETER URETHRA UTERUS VAGINA VULVA WHOLEBODY WRIST ZYGOMA'
  ).split(' '),
);

/** The plain-film modalities as a sentence names them: "CR, DX, DR or RG". */
export function modalityList(): string {
  return `${FILM_MODALITIES.slice(0, -1).join(', ')} or ${FILM_MODALITIES[FILM_MODALITIES.length - 1]}`;
}

/** A BodyPartExamined the model reads as a chest: also the films `cxr orthanc sync` takes from the PACS. */
export const CHEST_BODY_PART = /CHEST|THORAX|LUNG/;

/**
 * How a warning names a DICOM header value: the value when every one of its values (a CS may hold several,
 * split by backslashes) is a defined term, else only the tag: a value that is not a code is not shown.
 */
export function headerValue(tag: string, value: string, terms: ReadonlySet<string>): string {
  // The terms as read, not the raw value: padding and line breaks around a term are not quoted either.
  const parts = value.split('\\').map((v) => v.trim());
  const known = parts.every((v) => terms.has(v));
  return known ? `${tag} ${parts.join('\\')}` : `${tag} (its value is not a DICOM defined term, not shown)`;
}

/** The statistics the pixel checks read, of a size × size grayscale square. */
export interface SquareStats {
  mean: number;
  std: number;
  /** Gray levels from the 1st to the 99th percentile. */
  levelSpan: number;
  /** Mean neighbour difference / std. */
  roughness: number;
  /** (mediastinum − lung fields) / std: positive on a frontal chest film shown the right way round. */
  contrast: number;
}

export function squareStats(pixels: Uint8Array, size: number): SquareStats {
  let sum = 0;
  let sq = 0;
  for (const v of pixels) {
    sum += v;
    sq += v * v;
  }
  const mean = sum / pixels.length;
  const std = Math.sqrt(Math.max(0, sq / pixels.length - mean * mean));
  const histogram = new Array<number>(256).fill(0);
  for (const v of pixels) histogram[v]++;
  const level = (fraction: number) => {
    let seen = 0;
    for (let v = 0; v < 256; v++) {
      seen += histogram[v];
      if (seen > fraction * pixels.length) return v;
    }
    return 255;
  };
  const region = (x0: number, x1: number, y0: number, y1: number) => {
    let s = 0;
    let n = 0;
    for (let y = Math.floor(y0 * size); y < Math.ceil(y1 * size); y++) {
      for (let x = Math.floor(x0 * size); x < Math.ceil(x1 * size); x++) {
        s += pixels[y * size + x];
        n++;
      }
    }
    return s / Math.max(1, n);
  };
  let diff = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const v = pixels[y * size + x];
      if (x + 1 < size) diff += Math.abs(v - pixels[y * size + x + 1]);
      if (y + 1 < size) diff += Math.abs(v - pixels[(y + 1) * size + x]);
    }
  }
  const roughness = diff / (2 * size * (size - 1)) / (std + 1);
  const lungs = (region(0.18, 0.38, 0.25, 0.65) + region(0.62, 0.82, 0.25, 0.65)) / 2;
  const mediastinum = region(0.44, 0.56, 0.2, 0.8);
  return { mean, std, levelSpan: level(0.99) - level(0.01), roughness, contrast: (mediastinum - lungs) / (std + 1) };
}

/**
 * The checks' findings, as clinicians read them on the page and in History: each message leads with plain words
 * and ends with its measure in brackets (the value and where the check draws the line), for a technician.
 */
export function imageChecks(f: ImageFacts): ImageCheck[] {
  const out: ImageCheck[] = [];
  const { std, levelSpan, roughness, contrast } = squareStats(f.pixels, f.size);
  // The most concrete finding first (a clinician reads the first reason as the why): colour, then what the
  // pixels show, the header's facts, and the layout check's catch-all last.
  if ((f.colourFraction ?? 0) > COLOUR_FRACTION_ABOVE) {
    out.push({
      code: 'COLOUR',
      message:
        'colour image: X-rays are grayscale ' +
        `(${percent(f.colourFraction!)} of pixels strongly coloured, limit ${percent(COLOUR_FRACTION_ABOVE)})`,
    });
  }
  let layout: ImageCheck | null = null;
  if (std < BLANK_STD_BELOW) {
    out.push({
      code: 'BLANK',
      message:
        'image is blank or nearly uniform: there is no film to read ' +
        `(gray-level spread ${std.toFixed(1)} of 255, a film's at least ${BLANK_STD_BELOW})`,
    });
  } else if (levelSpan < LEVEL_SPAN_BELOW) {
    out.push({
      code: 'LOW_CONTRAST',
      message:
        'too little contrast to read: the film is washed out, too dark, or shown in a narrow window ' +
        `(gray levels span ${levelSpan} of 255 from the 1st to the 99th percentile, every training film's at least 85)`,
    });
  } else {
    if (roughness > ROUGHNESS_ABOVE) {
      out.push({
        code: 'NOISE',
        message:
          'image is mostly noise or fine texture, unlike a radiograph ' +
          `(roughness ${roughness.toFixed(2)}, a radiograph's at most ${ROUGHNESS_ABOVE.toFixed(2)})`,
      });
    }
    if (contrast < INVERTED_BELOW) {
      out.push({
        code: 'INVERTED',
        message:
          // What was measured, not a cause: the two side bands, where an upright frontal film has its lungs,
          // against the middle band. A negative, a film turned on its side (its middle band then runs across
          // the lungs) and an image with no chest layout all fail it; nothing here tells these apart.
          'looks inverted (a negative), turned on its side, or has no chest layout: the sides of the image, where ' +
          'an upright film has its lungs, are not darker than its middle ' +
          `(lung-to-mediastinum contrast ${contrast.toFixed(2)}, a chest film's at least ${INVERTED_BELOW})`,
      });
    }
    // The catch-all for what the specific checks let through (flat textures, drawings, gray
    // photos): statistics unlike those of training films (explain/film_layout.ts).
    const found = out.some((c) => c.code === 'NOISE' || c.code === 'INVERTED');
    const decision = found ? null : layoutDecision(f.pixels, f.size);
    if (decision?.unlike) {
      layout = {
        code: 'LAYOUT',
        // Worded apart from the gate's reason (predict/verdict.ts oodReason), which often fires with it: this
        // one reads the picture's statistics, the gate the model's own features.
        message:
          "its layout is unlike a chest film's: its brightness, contrast, texture and arrangement of light and " +
          'dark areas are far from those of the films the model was trained on ' +
          `(layout score ${decision.score.toFixed(1)}, limit ${decision.threshold.toFixed(1)})`,
      };
    }
  }
  if (f.viewPosition && LATERAL_VIEWS.has(f.viewPosition)) {
    out.push({
      code: 'LATERAL',
      message: `DICOM view position ${f.viewPosition}: the model reads frontal (PA/AP) views only`,
    });
  }
  if (f.bodyPart && !CHEST_BODY_PART.test(f.bodyPart)) {
    const what = headerValue('body part (0018,0015)', f.bodyPart, BODY_PART_TERMS);
    out.push({ code: 'BODY_PART', message: `DICOM ${what}: not a chest image` });
  }
  if (f.modality && !FILM_MODALITY.has(f.modality)) {
    const what = headerValue('modality (0008,0060)', f.modality, MODALITY_TERMS);
    const not = OTHER_XRAY_MODALITIES.has(f.modality)
      ? `not a plain film (modality ${modalityList()})`
      : 'not a radiograph';
    out.push({ code: 'MODALITY', message: `DICOM ${what}: ${not}` });
  }
  if (f.forProcessing) {
    out.push({
      code: 'FOR_PROCESSING',
      message:
        'raw detector data, not a film processed for reading: the model reads films as they are shown to a ' +
        'reader. Send the image FOR PRESENTATION instead (DICOM presentation intent FOR PROCESSING)',
    });
  }
  if (layout) out.push(layout);
  return out;
}

/** Fraction of pixels whose colour is clearly saturated (HSV saturation > 0.3 and not near black). */
export function saturatedFraction(rgb: Uint8Array, channels: number): number {
  if (channels < 3) return 0;
  const n = Math.floor(rgb.length / channels);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const r = rgb[i * channels];
    const g = rgb[i * channels + 1];
    const b = rgb[i * channels + 2];
    const max = Math.max(r, g, b);
    const min = Math.min(r, g, b);
    if (max > 40 && (max - min) / max > 0.3) count++;
  }
  return n ? count / n : 0;
}
