// What a result file is made from, and the identity (UIDs) of each result. The UIDs depend only
// on the source image, the model (its sha256) and, for the report, the operating point: writing
// the same result again yields the same instance, which the PACS stores once.
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

export function scUids(source: SourceRef, model: ResultModel): ResultUids {
  return {
    seriesInstanceUid: derivedUid('cxr-sc-series', source.studyInstanceUid, model.sha256),
    sopInstanceUid: derivedUid('cxr-sc', source.sopInstanceUid, model.sha256),
  };
}

/** DICOM DA and TM of a date, in UTC (the PACS shows them as written). */
export function dicomDateTime(d: Date): { date: string; time: string } {
  const iso = d.toISOString(); // 2024-05-01T12:34:56.789Z
  return { date: iso.slice(0, 10).replace(/-/g, ''), time: iso.slice(11, 19).replace(/:/g, '') };
}

/** The attributes every result shares: patient and study (copied), series, equipment, SOP common. */
export function commonAttributes(
  kind: 'sr' | 'sc',
  input: ResultInput,
  uids: ResultUids,
  sopClassUid: string,
  modality: string,
): Dataset {
  const { date, time } = dicomDateTime(input.now ?? new Date());
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
    InstanceNumber: 1,
    InstanceCreationDate: date,
    InstanceCreationTime: time,
    ContentDate: date,
    ContentTime: time,
    Manufacturer: MANUFACTURER,
    ManufacturerModelName: input.model.name.slice(0, 64),
    SoftwareVersions: input.model.version.slice(0, 64),
  };
}
