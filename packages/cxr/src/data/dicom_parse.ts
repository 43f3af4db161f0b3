// The vocabulary every DICOM reader here shares (DicomError, transfer syntaxes, a frame's pixel format checks).
// Every failure is a DicomError with a code: files arrive from anywhere (uploads, PACS exports). A header value
// is shown in a message only as shownValue allows. Data sets are read in dicom_data_set.ts, uncompressed pixel
// data in dicom_native.ts.

export type DicomErrorCode =
  | 'NOT_DICOM'
  | 'CORRUPT'
  | 'TRUNCATED'
  | 'NO_PIXEL_DATA'
  | 'UNSUPPORTED_TRANSFER_SYNTAX'
  | 'UNSUPPORTED_PIXEL_FORMAT'
  | 'TOO_MANY_PIXELS'
  | 'TOO_LARGE'
  | 'TRANSFER_SYNTAX_MISMATCH';

export class DicomError extends Error {
  constructor(
    readonly code: DicomErrorCode,
    readonly source: string,
    readonly detail: string,
  ) {
    super(`${source}: ${detail}`);
    this.name = 'DicomError';
  }
}

export const TS = {
  implicitLE: '1.2.840.10008.1.2',
  explicitLE: '1.2.840.10008.1.2.1',
  deflatedLE: '1.2.840.10008.1.2.1.99',
  explicitBE: '1.2.840.10008.1.2.2',
  jpegBaseline: '1.2.840.10008.1.2.4.50',
  jpegExtended: '1.2.840.10008.1.2.4.51',
  jpegLossless: '1.2.840.10008.1.2.4.57',
  jpegLosslessSV1: '1.2.840.10008.1.2.4.70',
  jpegLSLossless: '1.2.840.10008.1.2.4.80',
  jpegLSNear: '1.2.840.10008.1.2.4.81',
  j2kLossless: '1.2.840.10008.1.2.4.90',
  j2k: '1.2.840.10008.1.2.4.91',
  rle: '1.2.840.10008.1.2.5',
} as const;

export const TS_NAMES: Record<string, string> = {
  [TS.implicitLE]: 'Implicit VR Little Endian',
  [TS.explicitLE]: 'Explicit VR Little Endian',
  [TS.deflatedLE]: 'Deflated Explicit VR Little Endian',
  [TS.explicitBE]: 'Explicit VR Big Endian',
  [TS.jpegBaseline]: 'JPEG Baseline',
  [TS.jpegExtended]: 'JPEG Extended',
  [TS.jpegLossless]: 'JPEG Lossless',
  [TS.jpegLosslessSV1]: 'JPEG Lossless SV1',
  [TS.jpegLSLossless]: 'JPEG-LS Lossless',
  [TS.jpegLSNear]: 'JPEG-LS Near-Lossless',
  [TS.j2kLossless]: 'JPEG 2000 Lossless',
  [TS.j2k]: 'JPEG 2000',
  [TS.rle]: 'RLE Lossless',
};

export const NATIVE = new Set<string>([TS.implicitLE, TS.explicitLE, TS.deflatedLE, TS.explicitBE]);
export const SUPPORTED = new Set(Object.keys(TS_NAMES));

export function transferSyntaxName(uid: string): string {
  // Not the value itself: a header's text may be anything (shownValue).
  return TS_NAMES[uid] ?? 'a syntax cxr does not know';
}

export type Fail = (code: DicomErrorCode, detail: string) => DicomError;

export interface PixelFormat {
  rows: number;
  columns: number;
  samples: number;
  bitsAllocated: number;
  bitsStored: number;
  /** HighBit (0028,0102) as written; absent when the header has none (then it is not checked). */
  highBit?: number;
  signed: boolean;
  photometric: string;
  planar: number;
}

export const MONO = new Set(['MONOCHROME1', 'MONOCHROME2']);
const COLOUR = new Set(['RGB', 'YBR_FULL', 'YBR_FULL_422', 'YBR_ICT', 'YBR_RCT']);
/** PhotometricInterpretation's defined terms (PS3.3 C.7.6.3.1.2), those cxr reads and those it does not. */
const PHOTOMETRIC_TERMS = new Set([...MONO, ...COLOUR, 'PALETTE COLOR', 'HSV', 'ARGB', 'CMYK', 'YBR_PARTIAL_420']);

/**
 * A header value as an error message shows it: a defined term or a UID is quoted, anything else is not, for it
 * may be patient data typed into the wrong field, and messages reach logs and stored job errors (which keep no
 * patient data). `kind` says what the value should have been.
 */
export function shownValue(value: string, kind: 'photometric' | 'uid'): string {
  // A UID's own form (PS3.5 9.1: numbers without leading zeros, at least two, joined by dots): digits alone may be
  // a record number.
  const known =
    kind === 'uid' ? /^[0-2](\.(0|[1-9]\d*))+$/.test(value) && value.length <= 64 : PHOTOMETRIC_TERMS.has(value);
  return known ? value : kind === 'uid' ? '(a value that is not a UID)' : '(a value that is not a defined term)';
}

/** What to do about a header that breaks the standard: the file itself is at fault, not the reader. */
export const REEXPORT = 'the file was written wrongly or damaged: export it again from the PACS or the modality';

/**
 * Refuses a pixel format the standard does not allow (CORRUPT, 422: the header contradicts itself or has an
 * impossible value) before one that is legal DICOM but not read here (UNSUPPORTED_PIXEL_FORMAT, 415), so
 * that a damaged header is never answered as if another reader could take it.
 */
export function checkPixelFormat(pf: PixelFormat, fail: Fail): void {
  const corrupt = (what: string) => fail('CORRUPT', `${what}; ${REEXPORT}`);
  if (pf.samples < 1) {
    throw corrupt(`SamplesPerPixel (0028,0002) is ${pf.samples}: an image has at least one sample per pixel`);
  }
  // PS3.5 8.1.1: BitsAllocated is 1 or a multiple of 8; 0 is no pixel at all.
  if (pf.bitsAllocated < 1) {
    throw corrupt(`BitsAllocated (0028,0100) is ${pf.bitsAllocated}: a pixel sample has at least one bit`);
  }
  if (pf.bitsAllocated !== 1 && pf.bitsAllocated % 8 !== 0) {
    throw corrupt(`BitsAllocated (0028,0100) is ${pf.bitsAllocated}: DICOM allows 1 or a multiple of 8`);
  }
  if (pf.bitsStored < 1 || pf.bitsStored > pf.bitsAllocated) {
    throw fail(
      'CORRUPT',
      `BitsStored (0028,0101) is ${pf.bitsStored}: it must be from 1 to BitsAllocated (0028,0100), ` +
        `here ${pf.bitsAllocated}`,
    );
  }
  // PS3.5 8.1.1 and PS3.3 C.7.6.3.1: the stored bits end at HighBit, one less than BitsStored. Any other
  // value puts them elsewhere in the sample (or nowhere), and reading them as if it were valid answered a film
  // read from the wrong bits, assessed with no word.
  if (pf.highBit !== undefined && pf.highBit !== pf.bitsStored - 1) {
    throw corrupt(
      `HighBit (0028,0102) is ${pf.highBit}, but BitsStored (0028,0101) is ${pf.bitsStored}: DICOM requires ` +
        `HighBit to be BitsStored − 1 (${pf.bitsStored - 1})`,
    );
  }
  const expected = MONO.has(pf.photometric) ? 1 : COLOUR.has(pf.photometric) ? 3 : null;
  if (expected !== null && pf.samples !== expected) {
    const has = expected === 1 ? 'one sample' : 'three samples';
    throw corrupt(
      `PhotometricInterpretation (0028,0004) ${pf.photometric} has ${has} per pixel, but SamplesPerPixel ` +
        `(0028,0002) is ${pf.samples}`,
    );
  }
  if (expected === null) {
    throw fail(
      'UNSUPPORTED_PIXEL_FORMAT',
      `photometric interpretation ${pf.photometric ? shownValue(pf.photometric, 'photometric') : '(none)'} is not ` +
        'supported (MONOCHROME1/2 or RGB/YBR expected)',
    );
  }
  if (pf.bitsAllocated === 64) {
    // Legal only for Double Float Pixel Data (7FE0,0009), parametric maps rather than radiographs.
    throw fail(
      'UNSUPPORTED_PIXEL_FORMAT',
      'BitsAllocated (0028,0100) is 64, which DICOM uses only for floating-point pixel data (7FE0,0009): cxr ' +
        'reads 8- or 16-bit integer pixel data; export the film as such',
    );
  }
  if (expected === 3 && pf.bitsAllocated !== 8) {
    throw fail('UNSUPPORTED_PIXEL_FORMAT', `${pf.bitsAllocated}-bit colour is not supported (8-bit expected)`);
  }
  if (pf.bitsAllocated !== 8 && pf.bitsAllocated !== 16) {
    throw fail(
      'UNSUPPORTED_PIXEL_FORMAT',
      `BitsAllocated (0028,0100) is ${pf.bitsAllocated}: cxr reads 8- or 16-bit integer pixel data; export ` +
        'the film as such',
    );
  }
}

export type Frame = { kind: 'mono'; values: Float32Array } | { kind: 'colour'; gray: Uint8Array };

/** What a codec hands back for a compressed frame (dicom_codecs.ts, dicom_rle.ts). */
export interface CodecOutput {
  width: number;
  height: number;
  components: number;
  /** Unsigned sample bit patterns (signed data is sign-extended later, from BitsStored). */
  samples: Uint8Array | Uint16Array;
  signed?: boolean;
}

export function errorText(e: unknown): string {
  // dicom-parser throws strings, or { exception, dataSet } objects for partial parses.
  const raw =
    e instanceof Error
      ? e.message
      : typeof e === 'object' && e !== null && 'exception' in e
        ? String((e as { exception: unknown }).exception)
        : String(e);
  // Its messages start with its own function's name ("dicomParser.readSequenceItem: ..."): no help to a user.
  return raw
    .replace(/\b(?:dicomParser|\w*ByteArrayParser)[.:][\w.]*:\s*/g, '')
    .trim()
    .replace(/\s+/g, ' ')
    .slice(0, 300);
}
