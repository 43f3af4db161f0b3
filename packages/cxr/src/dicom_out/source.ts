// The source film's header facts a result needs: the patient and study modules (copied as they
// are, so the result files into the same patient and study) and the identity of the image the
// result refers to. Files come from the PACS, i.e. from outside: the identifiers are validated.
import { z } from 'zod';
import { DicomError, dataSetRefusal } from '../data/dicom';
import { bareDataSetSyntax, hasPart10Preamble, metaGroup } from '../data/dicom_syntax';
import { type Dataset, readHeader } from './part10';
import { isUid } from './uids';

/** Patient module and General Study module attributes copied from the source into each result. */
export const COPIED_ATTRIBUTES = [
  'PatientName',
  'PatientID',
  'IssuerOfPatientID',
  'PatientBirthDate',
  'PatientSex',
  'StudyInstanceUID',
  'StudyDate',
  'StudyTime',
  'ReferringPhysicianName',
  'StudyID',
  'AccessionNumber',
  'StudyDescription',
] as const;

/** Type 2 attributes of those modules: present in the result even when empty. */
const TYPE2 = [
  'PatientName',
  'PatientID',
  'PatientBirthDate',
  'PatientSex',
  'StudyDate',
  'StudyTime',
  'ReferringPhysicianName',
  'StudyID',
  'AccessionNumber',
];

const uid = (what: string) =>
  z
    .string({ error: `${what} is missing` })
    .trim()
    .refine(isUid, { message: `${what} is not a valid UID` });

const IdentitySchema = z.object({
  StudyInstanceUID: uid('StudyInstanceUID (0020,000D)'),
  SeriesInstanceUID: uid('SeriesInstanceUID (0020,000E)'),
  SOPInstanceUID: uid('SOPInstanceUID (0008,0018)'),
  SOPClassUID: uid('SOPClassUID (0008,0016)'),
  Modality: z.string().optional(),
  BodyPartExamined: z.string().optional(),
  Manufacturer: z.string().optional(),
});

export interface SourceImage {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
  modality?: string;
  bodyPart?: string;
  manufacturer?: string;
  /** Series Number and Instance Number: where the film sits in its study (they order the results). */
  seriesNumber?: number;
  instanceNumber?: number;
  /** Timezone Offset From UTC (±HHMM) of the film's dates and times, as written, when it has one. */
  timezoneOffset?: string;
  /**
   * Present when the film's pixels were lossy compressed (its Lossy Image Compression is 01, or it is sent in
   * JPEG baseline or extended, which is lossy even where its header does not say so): the methods
   * and ratios it names, if any. A heat map drawn over those pixels is lossy too (PS3.3 C.7.6.1.1.5).
   */
  lossyCompression?: { methods: string[]; ratios: string[] };
  /** The COPIED_ATTRIBUTES, ready to spread into a result data set. */
  patientStudy: Dataset;
}

/** An IS value (dcmjs gives a number, or a string for a malformed one) as an integer; undefined if none. */
function integer(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : Number(String(v ?? '').trim() || Number.NaN);
  return Number.isInteger(n) ? n : undefined;
}

/** A multi-valued string attribute as its non-empty values (dcmjs gives a string, a number or an array). */
function values(v: unknown): string[] {
  const list = Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
  return list.map((x) => String(x).trim()).filter(Boolean);
}

// Transfer syntaxes whose encoding is lossy whatever the header says (JPEG's DCT processes), and their method:
// a film sent so whose header lacks Lossy Image Compression (or says 00) is lossy all the same (PS3.5 8.2.1).
const LOSSY_SYNTAXES: Record<string, string> = {
  '1.2.840.10008.1.2.4.50': 'ISO_10918_1',
  '1.2.840.10008.1.2.4.51': 'ISO_10918_1',
};

function lossyCompressionOf(ds: Dataset, bytes: Uint8Array): Pick<SourceImage, 'lossyCompression'> {
  if (values(ds.LossyImageCompression)[0] === '01') {
    const methods = values(ds.LossyImageCompressionMethod);
    return { lossyCompression: { methods, ratios: values(ds.LossyImageCompressionRatio) } };
  }
  const method = LOSSY_SYNTAXES[metaGroup(bytes)?.transferSyntax ?? ''];
  return method ? { lossyCompression: { methods: [method], ratios: [] } } : {};
}

/**
 * Why readSource refused a film: NOT_DICOM (neither a Part-10 file nor a bare data set: a JPEG or PNG, say),
 * TRUNCATED (a DICOM cut short before its header ends, said as the decoder says it), CORRUPT (a DICOM header that
 * cannot be read otherwise), BAD_IDENTITY (a UID the results need is missing or invalid).
 */
export type SourceErrorCode = 'NOT_DICOM' | 'TRUNCATED' | 'CORRUPT' | 'BAD_IDENTITY';

/**
 * A film readSource refused, with a code a program branches on. Its name stays 'Error': the messages, as logs
 * and `cxr orthanc sync` print them, read as before.
 */
export class SourceError extends Error {
  constructor(
    readonly code: SourceErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** How part10.ts ends the refusal of a header over its limits (elements, steps, nesting). */
const OVER_LIMIT = /the file is damaged or crafted$/;

/** dcmjs's words for a read past the end of the bytes. */
const DCMJS_OVERRUN = /allocated buffer|past end of input|out of range of 0\.\.\.|^undefined$/;

/** Reads and checks the source header; throws a SourceError naming what is missing or malformed. */
export function readSource(bytes: Uint8Array): SourceImage {
  if (!hasPart10Preamble(bytes) && !bareDataSetSyntax(bytes)) {
    throw new SourceError('NOT_DICOM', 'source DICOM file cannot be read: not a DICOM file');
  }
  let ds: Dataset;
  try {
    ds = readHeader(bytes);
  } catch (e) {
    // dcmjs says a file cut short in its own terms ("Request more than currently allocated buffer", "Start 818 out of
    // range", or none): the decoder's reader says where it ends, as POST /predictions and cxr predict answer the
    // film. A header over part10.ts's limits (a crafted file, whatever else it lacks) is said as that.
    // Only where dcmjs ran out of bytes: a header refused for what it holds (a character set, an escape) is said as
    // that, not as the cut the decoder's rules would also see in a header without pixels.
    const message = String((e as Error).message);
    const ranOut = !(e instanceof DicomError) && !OVER_LIMIT.test(message) && DCMJS_OVERRUN.test(message);
    const cut = ranOut ? dataSetRefusal(bytes) : undefined;
    if (cut?.code === 'TRUNCATED')
      throw new SourceError('TRUNCATED', `source DICOM file cannot be read: ${cut.detail}`);
    // Else dcmjs's words for bytes that ran out name its buffers: said as a header that runs past the file's end.
    const why = ranOut
      ? `its header runs past the end of the file, at byte ${bytes.length} (the file is truncated or damaged)`
      : message;
    throw new SourceError('CORRUPT', `source DICOM file cannot be read: ${why}`);
  }
  const parsed = IdentitySchema.safeParse(ds);
  if (!parsed.success) {
    const cut = dataSetRefusal(bytes); // UIDs missing from a header cut short: said as the cut
    if (cut?.code === 'TRUNCATED')
      throw new SourceError('TRUNCATED', `source DICOM file cannot be read: ${cut.detail}`);
    const issues = parsed.error.issues.map((i) => i.message).join('; ');
    throw new SourceError('BAD_IDENTITY', `source DICOM file: ${issues}`);
  }
  const id = parsed.data;
  const patientStudy: Dataset = {};
  for (const k of COPIED_ATTRIBUTES) {
    if (ds[k] !== undefined && ds[k] !== null && ds[k] !== '') patientStudy[k] = ds[k];
    else if (TYPE2.includes(k)) patientStudy[k] = '';
  }
  patientStudy.StudyInstanceUID = id.StudyInstanceUID;
  return {
    studyInstanceUid: id.StudyInstanceUID,
    seriesInstanceUid: id.SeriesInstanceUID,
    sopInstanceUid: id.SOPInstanceUID,
    sopClassUid: id.SOPClassUID,
    modality: id.Modality?.trim() || undefined,
    bodyPart: id.BodyPartExamined?.trim() || undefined,
    manufacturer: id.Manufacturer?.trim() || undefined,
    seriesNumber: integer(ds.SeriesNumber),
    instanceNumber: integer(ds.InstanceNumber),
    ...lossyCompressionOf(ds, bytes),
    timezoneOffset: typeof ds.TimezoneOffsetFromUTC === 'string' ? ds.TimezoneOffsetFromUTC.trim() : undefined,
    patientStudy,
  };
}
