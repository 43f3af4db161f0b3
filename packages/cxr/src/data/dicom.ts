// DICOM input: one frame of a DICOM file to 8-bit grayscale display pixels, the way a viewer
// would show it (modality rescale, then VOI LUT or window, MONOCHROME1 inverted), ready for
// decodeRawGray. Parsing is dicom-parser's; compressed frames go to codecs that run in-process
// (sharp for 8-bit JPEG, WASM builds of CharLS and OpenJPEG, a JS lossless-JPEG decoder).
//
// Files arrive from anywhere (uploads, PACS exports), so every failure is a DicomError with a
// code, declared sizes are checked before any pixel is decoded, and the result carries only
// what inference needs: no patient, study or institution field leaves this module.
import * as fs from 'node:fs';
import type { DataSet } from 'dicom-parser';
import { DEFAULT_LIMITS, type DecodeLimits, sniffFormat, unsupportedFormat } from './decode';
import { overPixelLimit } from './pixel_limit';
import { encapsulatedFrame } from './dicom_codecs';
import { type AgeFromDates, ageFromDates } from './dicom_age';
import { isForProcessingImage } from './for_processing';
import { toDisplay, type VoiMethod } from './dicom_display';
import {
  checkPixelFormat,
  DicomError,
  type DicomErrorCode,
  type Fail,
  NATIVE,
  type PixelFormat,
  REEXPORT,
  SUPPORTED,
  shownValue,
  TS,
  TS_NAMES,
} from './dicom_parse';
import { parseDataSet, RELABEL, syntaxMismatch } from './dicom_data_set';
import { nativeFrame } from './dicom_native';
import { jpegUnsupported, pngUnsupported } from './image_header';
import { bareDataSetSyntax, hasPart10Preamble, isDicom, metaGroup } from './dicom_syntax';

export type { AgeDate, AgeFromDates } from './dicom_age';
export { DicomError, type DicomErrorCode } from './dicom_parse';
export { bareDataSetSyntax, hasPart10Preamble, isDicom } from './dicom_syntax';

/**
 * What the decoder reads these bytes as (predict/decode_input.ts dispatches the same way): JPEG or PNG by
 * their signature, DICOM as decodeDicom takes it (Part 10, or a bare data set without preamble and
 * "DICM"); null for anything else. For refusing a file at the door instead of failing it later.
 */
export function filmFormat(buf: Uint8Array): 'jpeg' | 'png' | 'dicom' | null {
  const kind = sniffFormat(buf);
  if (kind === 'jpeg' || kind === 'png') return kind;
  return isDicom(buf) ? 'dicom' : null;
}

/**
 * Why a reader would refuse a film from its leading bytes alone, in the words decodeBuffer refuses it with, or
 * undefined: a format no reader takes (named: HEIC, WebP, ...), or a JPEG or PNG variant it does not read (12-bit,
 * JPEG-LS, animated: image_header.ts). For the doors that refuse before queueing (POST /jobs, `cxr enqueue`).
 */
export function filmRefusal(head: Uint8Array): string | undefined {
  const kind = filmFormat(head);
  if (kind === 'jpeg') return jpegUnsupported(head);
  if (kind === 'png') return pngUnsupported(head);
  return kind === 'dicom' ? undefined : unsupportedFormat(sniffFormat(head), true);
}

/** Enough leading bytes for filmFormat to tell a DICOM data set (Part 10, or bare) from JPEG and PNG. */
export const FILM_HEADER_BYTES = 4096;

/** filmFormat of a file's leading bytes; a file that cannot be opened or read throws the file system's error. */
export async function filmFormatOfFile(file: string): Promise<'jpeg' | 'png' | 'dicom' | null> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.alloc(FILM_HEADER_BYTES);
    const { bytesRead } = await handle.read(buf, 0, FILM_HEADER_BYTES, 0);
    return filmFormat(buf.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}

/**
 * NumberOfFrames (0028,0008): an IS of 1 or more (PS3.3 C.7.6.6); missing or empty means one frame.
 * Anything else marks a damaged or wrongly written file and is refused rather than guessed at, since the
 * count decides how the pixel data splits into frames (dicom-parser's intString is parseInt: "2abc" reads 2).
 */
function numberOfFrames(text: string | undefined, fail: Fail): number {
  if (!text) return 1; // dicom-parser has already trimmed the surrounding spaces IS allows.
  const frames = /^\+?\d+$/.test(text) ? Number(text) : 0;
  if (frames < 1) {
    throw fail('CORRUPT', `NumberOfFrames (0028,0008) is "${text}": not a whole number of frames of 1 or more`);
  }
  return frames;
}

/**
 * SOP classes of radiographs (PS3.4 B.5), each object of which holds pixel data: a UID and the classes under it
 * (`exact`: the UID alone). DX's for-presentation and for-processing classes share its UID's start.
 */
const RADIOGRAPH_CLASSES: { uid: string; name: string; exact?: true }[] = [
  { uid: '1.2.840.10008.5.1.4.1.1.1.1', name: 'Digital X-Ray Image Storage' },
  { uid: '1.2.840.10008.5.1.4.1.1.1', name: 'CR Image Storage', exact: true },
  { uid: '1.2.840.10008.5.1.4.1.1.7', name: 'Secondary Capture Image Storage' },
];

/** The name of a radiograph's SOP class (CR, DX, Secondary Capture), or undefined for any other UID. */
function radiographClass(uid: string | undefined): string | undefined {
  const value = (uid ?? '').replace(/\0/g, '').trim();
  return RADIOGRAPH_CLASSES.find((c) => value === c.uid || (!c.exact && value.startsWith(`${c.uid}.`)))?.name;
}

/** A string element's value when all of it is in the bytes (an implicit VR read cut short keeps one that is not). */
function wholeString(ds: DataSet, tag: string): string | undefined {
  const el = ds.elements[tag];
  return el && el.dataOffset + el.length <= ds.byteArray.length ? ds.string(tag) : undefined;
}

/** The data set of a DICOM file as the decoder reads it (Part 10, or bare), with the bytes it was read from. */
function readDataSet(buf: Uint8Array, limits: DecodeLimits, fail: Fail) {
  const partTen = hasPart10Preamble(buf);
  const bareSyntax = partTen ? null : bareDataSetSyntax(buf);
  if (!partTen && !bareSyntax) throw fail('NOT_DICOM', 'not a DICOM file');
  // A file meta group without the preamble and "DICM" before it (some old writers): read as one data set
  // it would be taken as explicit VR throughout, but its TransferSyntaxUID says how the rest is encoded
  // (often implicit VR). Given back a preamble, it is read as the Part-10 file it meant to be.
  const metaFirst = bareSyntax !== null && buf[0] === 0x02 && buf[1] === 0x00;
  const bytes = metaFirst ? Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), buf]) : buf;
  return { ds: parseDataSet(bytes, metaFirst ? null : bareSyntax, limits, fail), bytes, bareSyntax };
}

/**
 * Why the decoder cannot read this DICOM's data set, in its words and code (a file cut short is TRUNCATED, saying
 * where it ends), or undefined when it reads it: for a reader of the header alone (dicom_out's readSource, through
 * dcmjs, whose words name its buffers) to say a damaged file as the decoder says it. Pixels are not decoded.
 */
export function dataSetRefusal(buf: Uint8Array, name = 'DICOM'): DicomError | undefined {
  const fail: Fail = (code, detail) => new DicomError(code, name, detail);
  try {
    const { ds } = readDataSet(buf, DEFAULT_LIMITS, fail);
    return ds.elements.x7fe00010 ? undefined : endsBeforePixels(ds, buf.length, fail);
  } catch (e) {
    if (e instanceof DicomError) return e;
    throw e;
  }
}

/**
 * A radiograph's data set that ends before its image's size and pixel data: TRUNCATED, as every other DICOM cut
 * short is. Rows (0028,0010) and the pixel data are required (type 1) in these objects, so one that ends quietly
 * without either was cut between two elements of its header. Undefined for other objects (a structured report has
 * no pixels) and for a header whole up to its image's size (NO_PIXEL_DATA: nothing tells a cut there).
 */
function endsBeforePixels(ds: DataSet, size: number, fail: Fail): DicomError | undefined {
  const imageClass = radiographClass(wholeString(ds, 'x00080016') ?? wholeString(ds, 'x00020002'));
  return imageClass && !ds.elements.x00280010
    ? fail(
        'TRUNCATED',
        `the file ends at byte ${size} without its image's size (Rows (0028,0010)) and pixel data (7FE0,0010), ` +
          `which every ${imageClass} object has (the file is truncated)`,
      )
    : undefined;
}

export interface DicomImage {
  /** width × height display values, row-major, 0 = black (MONOCHROME1 already inverted). */
  gray: Uint8Array;
  width: number;
  height: number;
  /** (0008,0060), e.g. 'CR', 'DX'; undefined when absent. */
  modality?: string;
  photometric: string;
  transferSyntax: string;
  /** (0018,5101) ViewPosition, e.g. 'PA', 'AP', 'LL'. */
  viewPosition?: string;
  /** (0018,0015) BodyPartExamined, e.g. 'CHEST'. */
  bodyPart?: string;
  /** (0010,1010) PatientAge, e.g. '004Y' (or '62' in files that omit the unit). */
  patientAge?: string;
  /**
   * The age from PatientBirthDate (0010,0030) to the study's date, for files whose PatientAge is missing
   * or unreadable (it is optional in CR and DX); absent when there is no birth date. The dates themselves
   * never leave this module.
   */
  ageFromDates?: AgeFromDates;
  frames: number;
  bitsStored: number;
  /** How stored values became display values: 'voi-lut', 'window', 'full-range' or 'min-max'. */
  voi: VoiMethod;
  /**
   * A DX image FOR PROCESSING (PresentationIntentType (0008,0068), or its SOP class): the detector's raw data,
   * before the processing that makes it a film for reading; present (true) only then.
   */
  forProcessing?: true;
}

/**
 * Whether the image is FOR PROCESSING (for_processing.ts). Viewers show it, but flat and unsharpened, unlike any
 * film the model learnt from; its own header says so, where a CR or a DX FOR PRESENTATION has none of this.
 */
function isForProcessing(ds: ReturnType<typeof parseDataSet>): boolean {
  return isForProcessingImage({
    presentationIntent: ds.string('x00080068'),
    sopClassUid: ds.string('x00080016') ?? ds.string('x00020002'),
  });
}

export interface DicomOptions {
  limits?: Partial<DecodeLimits>;
  name?: string;
}

/** Parses a DICOM file and renders its first frame to 8-bit grayscale. */
export async function decodeDicom(buf: Uint8Array, opts: DicomOptions = {}): Promise<DicomImage> {
  const name = opts.name ?? '<dicom>';
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const fail = (code: DicomErrorCode, detail: string) => new DicomError(code, name, detail);
  if (buf.length > limits.maxInputBytes) {
    throw fail('TOO_LARGE', `${buf.length} bytes exceeds the ${limits.maxInputBytes}-byte input limit`);
  }
  const { ds, bytes, bareSyntax } = readDataSet(buf, limits, fail);
  const transferSyntax = (ds.string('x00020010') ?? bareSyntax ?? TS.implicitLE).replace(/\0/g, '').trim();
  if (!SUPPORTED.has(transferSyntax)) {
    throw fail(
      'UNSUPPORTED_TRANSFER_SYNTAX',
      `transfer syntax ${shownValue(transferSyntax, 'uid')} is not supported ` +
        `(supported: ${[...new Set(Object.values(TS_NAMES))].join(', ')})`,
    );
  }
  const pixelElement = ds.elements.x7fe00010;
  if (!pixelElement || pixelElement.length === 0) {
    // Read in the wrong encoding (explicit VR data under an implicit VR header), a data set can end
    // quietly before its pixel data: that file is an image, labelled wrongly.
    const meta = metaGroup(bytes);
    const mismatch = meta?.transferSyntax ? syntaxMismatch(bytes.subarray(meta.end), meta.transferSyntax) : null;
    if (mismatch)
      throw fail('TRANSFER_SYNTAX_MISMATCH', `${mismatch} (read as its header says, it has no pixel data). ${RELABEL}`);
    const cut = pixelElement ? undefined : endsBeforePixels(ds, buf.length, fail);
    if (cut) throw cut;
    throw fail('NO_PIXEL_DATA', 'no pixel data (7FE0,0010): not an image object');
  }

  const rows = ds.uint16('x00280010') ?? 0;
  const columns = ds.uint16('x00280011') ?? 0;
  if (rows < 1 || columns < 1) throw fail('CORRUPT', `invalid image size ${columns}×${rows}`);
  if (rows * columns > limits.maxPixels) {
    throw fail('TOO_MANY_PIXELS', overPixelLimit(columns, rows, limits.maxPixels));
  }
  const samples = ds.uint16('x00280002') ?? 1;
  const bitsAllocated = ds.uint16('x00280100');
  if (bitsAllocated === undefined) {
    throw fail('CORRUPT', `BitsAllocated (0028,0100) is missing, which every image has; ${REEXPORT}`);
  }
  const bitsStored = ds.uint16('x00280101') ?? bitsAllocated;
  const highBit = ds.uint16('x00280102');
  const signed = (ds.uint16('x00280103') ?? 0) === 1;
  const photometric = (ds.string('x00280004') ?? (samples === 3 ? 'RGB' : 'MONOCHROME2')).trim().toUpperCase();
  const planar = ds.uint16('x00280006') ?? 0;
  const frames = numberOfFrames(ds.string('x00280008'), fail);

  const pf: PixelFormat = { rows, columns, samples, bitsAllocated, bitsStored, highBit, signed, photometric, planar };
  checkPixelFormat(pf, fail);

  // Native pixel data has a defined length; pixel data of open length that parses as items (dicom-parser reads
  // it so) is compressed fragments under a native TransferSyntaxUID. Read as pixels, its item tags and codestream
  // were answered as a film of noise whenever their length reached one frame's.
  if (NATIVE.has(transferSyntax) && (pixelElement.encapsulatedPixelData || pixelElement.hadUndefinedLength)) {
    throw fail(
      'TRANSFER_SYNTAX_MISMATCH',
      `the header names transfer syntax ${transferSyntax} (${TS_NAMES[transferSyntax]}), which keeps pixels ` +
        'uncompressed, but the pixel data (7FE0,0010) is compressed fragments (encapsulated, of open length). ' +
        RELABEL,
    );
  }
  const frame = NATIVE.has(transferSyntax)
    ? nativeFrame(ds, pixelElement, pf, frames, transferSyntax === TS.explicitBE, fail)
    : await encapsulatedFrame(ds, pixelElement, pf, transferSyntax, frames, limits, fail);

  let gray: Uint8Array;
  let voi: DicomImage['voi'];
  if (frame.kind === 'colour') {
    gray = frame.gray;
    voi = 'full-range';
  } else {
    ({ gray, voi } = toDisplay(frame.values, ds, pf, fail));
    if (photometric === 'MONOCHROME1') for (let i = 0; i < gray.length; i++) gray[i] = 255 - gray[i];
  }
  const text = (tag: string) => {
    const s = ds.string(tag)?.trim();
    return s ? s.toUpperCase() : undefined;
  };
  const age = ageFromDates(ds);
  return {
    gray,
    width: columns,
    height: rows,
    modality: text('x00080060'),
    photometric,
    transferSyntax,
    viewPosition: text('x00185101'),
    bodyPart: text('x00180015'),
    patientAge: text('x00101010'),
    ...(age ? { ageFromDates: age } : {}),
    frames,
    bitsStored,
    voi,
    ...(isForProcessing(ds) ? { forProcessing: true as const } : {}),
  };
}
