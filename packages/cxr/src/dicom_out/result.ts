// What a result file is made from, and the identity (UIDs) of each result. The UIDs depend only
// on the source image, the model (its sha256) and the operating point: writing the same result
// again yields the same instance, which the PACS stores once. Also where results sit in a study's
// viewer: their Instance Numbers, and their dates and times on the clock the film's are on.
import * as crypto from 'node:crypto';
import type { Prediction } from '../predict/predictor';
import { type Dataset } from './part10';
import { MANUFACTURER, SERIES_NUMBER, seriesDescription } from './identity';
import type { SourceImage } from './source';
import { derivedUid } from './uids';

export interface ResultModel {
  name: string;
  version: string;
  sha256: string;
}

export interface ResultInput {
  source: SourceImage;
  prediction: Pick<Prediction, 'probability' | 'label' | 'operatingPoint' | 'threshold' | 'warnings' | 'verdict'>;
  model: ResultModel;
  /** Content date and time; default now. */
  now?: Date;
}

/** A written result: the Part-10 bytes and the identifiers a caller stores or looks up. */
export interface DicomObject {
  bytes: Buffer;
  sopClassUid: string;
  sopInstanceUid: string;
  seriesInstanceUid: string;
  studyInstanceUid: string;
}

export interface ResultUids {
  seriesInstanceUid: string;
  sopInstanceUid: string;
}

/** The source identity the result UIDs derive from (the PACS's tags carry it, before any download). */
export type SourceRef = Pick<SourceImage, 'studyInstanceUid' | 'sopInstanceUid'>;

export function srUids(source: SourceRef, model: ResultModel, operatingPoint: string): ResultUids {
  return {
    // One series per model version within the study.
    seriesInstanceUid: derivedUid('cxr-sr-series', source.studyInstanceUid, model.sha256),
    sopInstanceUid: derivedUid('cxr-sr', source.sopInstanceUid, model.sha256, operatingPoint),
  };
}

/**
 * The heat map's identity. The operating point is part of it because the result line burned into the
 * pixels names the operating point, its threshold and the headline: one heat map shared by the reports
 * of two operating points would say "No signs of pneumonia" under a screening report that says Yes.
 * The series stays one per model version, like the report's.
 */
export function scUids(source: SourceRef, model: ResultModel, operatingPoint: string): ResultUids {
  return {
    seriesInstanceUid: derivedUid('cxr-sc-series', source.studyInstanceUid, model.sha256),
    sopInstanceUid: derivedUid('cxr-sc', source.sopInstanceUid, model.sha256, operatingPoint),
  };
}

// Where each operating point's result sits among a film's results: the usual reading first, then the
// more sensitive one. Other names get a stable place after them (two may share it: only the order is
// ambiguous then, the UIDs stay distinct).
const OPERATING_POINT_ORDER: Record<string, number> = { balanced: 1, screening: 2 };
const hashNumber = (s: string) => Number.parseInt(crypto.createHash('sha256').update(s).digest('hex').slice(0, 12), 16);
const opIndex = (name: string) => OPERATING_POINT_ORDER[name] ?? 3 + (hashNumber(name) % 7);

/** IS holds a signed 32-bit integer (PS3.5 6.2). */
const IS_MAX = 2_147_483_647;
// Series 199999, image 999, point 9 is 1_999_999_999: the numbers from the film stay below the fallback's.
const FALLBACK_BASE = 2_000_000_000;
const SERIES_MAX = 199_999;

/**
 * Instance Number of a film's result (the same for its report and its heat map): a reader scrolling the
 * result series sees the results in the order of the films they are about, each film's operating points
 * side by side. Digits: source Series Number, source Instance Number (3 digits), operating point (1 digit);
 * e.g. series 2, image 1, screening is 20012. The series number is part of it because chest films are often
 * one series per view, each image number 1. A pure function of the inputs, so a re-run writes the same number.
 * A film without an Instance Number, or with numbers too large to fit, gets a stable number above 2e9 from
 * its SOP Instance UID: after the others, and distinct from them but by a one-in-millions chance.
 */
export function instanceNumber(
  source: Pick<SourceImage, 'sopInstanceUid' | 'seriesNumber' | 'instanceNumber'>,
  operatingPoint: string,
): number {
  const op = opIndex(operatingPoint);
  const series = source.seriesNumber ?? 0;
  const image = source.instanceNumber;
  const fits = (n: number, max: number) => Number.isInteger(n) && n >= 0 && n <= max;
  if (image !== undefined && fits(image, 999) && fits(series, SERIES_MAX)) {
    return series * 10_000 + image * 10 + op;
  }
  const slots = Math.floor((IS_MAX - FALLBACK_BASE - 9) / 10);
  return FALLBACK_BASE + (hashNumber(source.sopInstanceUid) % slots) * 10 + op;
}

const OFFSET_RE = /^([+-])(\d{2})(\d{2})$/;

/** Minutes east of UTC from a Timezone Offset From UTC (±HHMM); undefined when it is not a valid one. */
export function parseTimezoneOffset(s: string | undefined): number | undefined {
  const m = OFFSET_RE.exec(s?.trim() ?? '');
  if (!m) return undefined;
  const minutes = Number(m[2]) * 60 + Number(m[3]);
  const signed = m[1] === '-' ? -minutes : minutes;
  return Number(m[3]) < 60 && signed >= -12 * 60 && signed <= 14 * 60 ? signed : undefined;
}

/**
 * DICOM DA and TM of a moment at an offset from UTC (minutes east; default the machine's local time at
 * that moment, which follows TZ and daylight saving), and that offset as ±HHMM (written as Timezone Offset
 * From UTC only for a film that names its own: commonAttributes).
 *
 * Local time, not UTC: DICOM reads DA/TM as local time, and most viewers show them as written, next to the
 * film's own dates, which the modality wrote in local time. Results in UTC would show up to hours before or
 * after the film.
 */
export function dicomDateTime(
  d: Date,
  offsetMinutes = -d.getTimezoneOffset(),
): { date: string; time: string; offset: string } {
  const iso = new Date(d.getTime() + offsetMinutes * 60_000).toISOString(); // the wall clock, as if UTC
  const abs = Math.abs(offsetMinutes);
  const hhmm = `${String(Math.floor(abs / 60)).padStart(2, '0')}${String(abs % 60).padStart(2, '0')}`;
  return {
    date: iso.slice(0, 10).replace(/-/g, ''),
    time: iso.slice(11, 19).replace(/:/g, ''),
    offset: `${offsetMinutes < 0 ? '-' : '+'}${hhmm}`,
  };
}

/** The attributes every result shares: patient and study (copied), series, equipment, SOP common. */
export function commonAttributes(
  kind: 'sr' | 'sc',
  input: ResultInput,
  uids: ResultUids,
  sopClassUid: string,
  modality: string,
): Dataset {
  // Timezone Offset From UTC covers every DA/TM in the instance, the study date and time copied from the film
  // too: a film that names its offset gets its dates written at that offset, so one offset is true of all. A
  // film that names none is in local time (DICOM's default), and so are our dates, with no offset: writing
  // ours would claim it for the film's study time too, an hour off across a daylight-saving change.
  const filmOffset = parseTimezoneOffset(input.source.timezoneOffset);
  const { date, time, offset } = dicomDateTime(input.now ?? new Date(), filmOffset);
  return {
    SpecificCharacterSet: 'ISO_IR 192', // dcmjs writes text as UTF-8
    SOPClassUID: sopClassUid,
    SOPInstanceUID: uids.sopInstanceUid,
    ...input.source.patientStudy,
    Modality: modality,
    SeriesInstanceUID: uids.seriesInstanceUid,
    SeriesNumber: SERIES_NUMBER[kind],
    SeriesDescription: seriesDescription(kind, input.model),
    SeriesDate: date,
    SeriesTime: time,
    InstanceNumber: instanceNumber(input.source, input.prediction.operatingPoint),
    InstanceCreationDate: date,
    InstanceCreationTime: time,
    ContentDate: date,
    ContentTime: time,
    ...(filmOffset !== undefined ? { TimezoneOffsetFromUTC: offset } : {}),
    Manufacturer: MANUFACTURER,
    ManufacturerModelName: input.model.name.slice(0, 64),
    SoftwareVersions: input.model.version.slice(0, 64),
  };
}
