// DICOM data sets (dicom-parser, with a capped inflater for deflated ones and a cap on nested
// sequences), why one could not be read, and the checks on a frame's declared pixel format
// (uncompressed pixel data is read in dicom_native.ts). Every failure is a DicomError with a code:
// files arrive from anywhere (uploads, PACS exports).
import * as zlib from 'node:zlib';
import * as dicomParser from 'dicom-parser';
import type { DecodeLimits } from './decode';
import { metaGroup, VRS } from './dicom_syntax';

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

export function parseDataSet(
  buf: Uint8Array,
  bareSyntax: string | null,
  limits: DecodeLimits,
  fail: Fail,
): dicomParser.DataSet {
  // Node's own zlib with an output cap: a deflated data set is a compression bomb waiting to happen
  // (255 KB inflating to 250 MB was seen). zlib stops as soon as the cap is passed. The cap is what
  // the largest accepted frame can need: 16-bit samples at the pixel limit, plus room for the header.
  const cap = Math.max(limits.maxInputBytes, 2 * limits.maxPixels) + 1024 * 1024;
  const inflater = (bytes: Uint8Array, position: number): Uint8Array => {
    let inflated: Buffer;
    try {
      inflated = zlib.inflateRawSync(bytes.subarray(position), { maxOutputLength: cap });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw fail(
          'TOO_LARGE',
          `deflated data set inflates to more than ${cap} bytes (the most an image within the pixel limit needs)`,
        );
      }
      throw fail('CORRUPT', `deflated data set does not inflate: ${errorText(e)}`);
    }
    const out = new Uint8Array(position + inflated.length);
    out.set(bytes.subarray(0, position));
    out.set(inflated, position);
    return out;
  };
  const options = {
    ...(bareSyntax ? { TransferSyntaxUID: bareSyntax } : {}),
    inflater: inflater as unknown as (arr: Uint8Array, position: number) => void,
  };
  let ds: dicomParser.DataSet;
  try {
    ds = dicomParser.parseDicom(buf, options);
  } catch (e) {
    if (e instanceof DicomError) throw e;
    // dicom-parser reads nested sequences by recursion: 50,000 levels ran out of stack.
    if (/Maximum call stack size exceeded/.test(errorText(e))) throw tooDeep(fail);
    throw parseFailure(e, buf, bareSyntax, fail);
  }
  if (sequenceDepth(ds) > MAX_SEQUENCE_DEPTH) throw tooDeep(fail);
  return ds;
}

/**
 * The deepest nesting of sequences (SQ) read. Image objects nest a few levels (a code sequence in a view
 * code sequence, ...); beyond this a file is damaged or crafted, and reading it exhausts the stack.
 */
export const MAX_SEQUENCE_DEPTH = 64;

function tooDeep(fail: Fail): DicomError {
  return fail(
    'CORRUPT',
    `the data set nests sequences (SQ) more than ${MAX_SEQUENCE_DEPTH} levels deep, more than any image ` +
      'object needs and than this reader follows: the file is damaged or not an image object',
  );
}

/** How deep sequences nest in a parsed data set (walked without recursion), up to one past the limit. */
function sequenceDepth(ds: dicomParser.DataSet): number {
  let deepest = 0;
  const stack: [dicomParser.DataSet, number][] = [[ds, 0]];
  while (stack.length && deepest <= MAX_SEQUENCE_DEPTH) {
    const [set, depth] = stack.pop()!;
    deepest = Math.max(deepest, depth);
    for (const el of Object.values(set.elements))
      for (const item of el.items ?? []) if (item.dataSet) stack.push([item.dataSet, depth + 1]);
  }
  return deepest;
}

/** dicom-parser's ways of saying that it ran past the end of the bytes. */
const OVERRUN = /overrun|overread|past (the )?end|beyond|cannot be greater than or equal to 'byteArray' length/i;

/**
 * Why dicom-parser could not read a data set, in words a user can act on (its own messages name its
 * internal functions). A file cut short and a data set not in the transfer syntax its header names
 * both show as an element running past the end of the file; they are told apart by reading the data
 * set in the other encodings, and by whether the elements read before the failure were well formed.
 */
function parseFailure(e: unknown, buf: Uint8Array, bareSyntax: string | null, fail: Fail): DicomError {
  const text = errorText(e);
  const meta = bareSyntax ? null : metaGroup(buf);
  if (meta && meta.end >= buf.length) {
    return fail(
      'TRUNCATED',
      `the file ends at byte ${buf.length}, within or right after its file meta information (group 0002): ` +
        'it is truncated',
    );
  }
  if (meta && /0002,0010/.test(text)) {
    return fail(
      'CORRUPT',
      'the file meta information (group 0002) has no TransferSyntaxUID (0002,0010), so the data set cannot be read',
    );
  }
  if (/basic offset table not found/.test(text)) return openLengthPixels(meta?.transferSyntax ?? bareSyntax, fail);
  if (!OVERRUN.test(text)) return fail('CORRUPT', `the DICOM data set cannot be parsed: ${text}`);
  const mismatch = meta?.transferSyntax ? syntaxMismatch(buf.subarray(meta.end), meta.transferSyntax) : null;
  if (mismatch) {
    return fail(
      'TRANSFER_SYNTAX_MISMATCH',
      `${mismatch} (read as its header says, an element runs past the end of the file). ${RELABEL}`,
    );
  }
  const cut = cutAt(e, meta?.end ?? 0);
  if (cut) return fail('TRUNCATED', `the file ends inside ${cut} (the file is truncated)`);
  return fail(
    'CORRUPT',
    "the DICOM data set cannot be parsed: an element's length runs past the end of the file (the file is " +
      'damaged or truncated, or not in the transfer syntax its header names)',
  );
}

/**
 * Pixel data of undefined length (FFFFFFFF) that does not start with an item: dicom-parser reads any such
 * element as encapsulated and says "basic offset table not found". Said in DICOM's terms.
 */
function openLengthPixels(ts: string | null, fail: Fail): DicomError {
  const syntax = ts ?? TS.implicitLE;
  if (NATIVE.has(syntax)) {
    return fail(
      'CORRUPT',
      `the pixel data (7FE0,0010) has an undefined length (FFFFFFFF), but the transfer syntax, ${syntax} ` +
        `(${transferSyntaxName(syntax)}), is native: native (uncompressed) pixel data must have a defined ` +
        'length; only compressed (encapsulated) pixel data may be open-ended. The file is damaged, or its ' +
        'TransferSyntaxUID (0002,0010) names the wrong syntax',
    );
  }
  return fail(
    'CORRUPT',
    'the compressed pixel data (7FE0,0010) does not begin with its basic offset table, an item (FFFE,E000): ' +
      'the file is damaged',
  );
}

/** What to do about a data set in another transfer syntax than its header names. */
export const RELABEL = 'Re-export the image, or correct its TransferSyntaxUID (0002,0010)';

/**
 * For a data set that does not read as the transfer syntax its file meta group names: the clause
 * saying which one it does read as, completely and with its pixel data (so that the claim is sure).
 * Null when no other reading does (deflated data are not tried).
 */
export function syntaxMismatch(dataSet: Uint8Array, declared: string): string | null {
  if (declared === TS.deflatedLE) return null;
  // Compressed syntaxes keep their data set in explicit VR little endian.
  const readAs = declared === TS.implicitLE || declared === TS.explicitBE ? declared : TS.explicitLE;
  const actual = [TS.explicitLE, TS.implicitLE, TS.explicitBE].find((ts) => ts !== readAs && readsWhole(dataSet, ts));
  if (!actual) return null;
  return (
    `the header names transfer syntax ${shownValue(declared, 'uid')} (${transferSyntaxName(declared)}), but the ` +
    'data set is ' +
    `written in ${TS_NAMES[actual]}`
  );
}

/** Whether `bytes` read as a whole data set in transfer syntax `ts`, pixel data included. */
function readsWhole(bytes: Uint8Array, ts: string): boolean {
  let ds: dicomParser.DataSet;
  try {
    ds = dicomParser.parseDicom(bytes, { TransferSyntaxUID: ts });
  } catch {
    return false;
  }
  // An implicit VR reading stops quietly at the end of the bytes: every value must fit in them. (The
  // transfer syntax passed in comes back as an element of its own, read from nowhere.)
  const elements = Object.values(ds.elements)
    .filter((el) => el.dataOffset !== undefined)
    .sort((a, b) => a.dataOffset - b.dataOffset);
  return (
    ds.elements.x7fe00010 !== undefined &&
    elements.every((el, i) => el.dataOffset + el.length <= bytes.length && (i === 0 || el.tag > elements[i - 1].tag))
  );
}

/** The longest element header (explicit VR with a 32-bit length, PS3.5 7.1.2). */
const MAX_HEADER = 12;

/**
 * Where a file cut short ends, for people ("element (7FE0,0010): its value needs ..."), when everything
 * read up to there was well formed (tags ascending, known VRs) and only the last element, or the header
 * of the one after it, runs past the end. Null when what was read looks like garbage.
 */
function cutAt(e: unknown, start: number): string | null {
  // dicom-parser hands over the data set read so far (the file meta group not merged in yet).
  const ds =
    typeof e === 'object' && e !== null && 'dataSet' in e
      ? (e as { dataSet?: dicomParser.DataSet }).dataSet
      : undefined;
  if (!ds) return null;
  const size = ds.byteArray.length;
  const elements = Object.values(ds.elements).sort((a, b) => a.dataOffset - b.dataOffset);
  const wellFormed = elements.every(
    (el, i) => (i === 0 || el.tag > elements[i - 1].tag) && (el.vr === undefined || VRS.has(el.vr)),
  );
  if (!wellFormed) return null;
  const last = elements.at(-1);
  const name = (tag: string) => `(${tag.slice(1, 5)},${tag.slice(5)})`.toUpperCase();
  if (last && last.dataOffset + last.length > size) {
    const held = Math.max(0, size - last.dataOffset);
    // Encapsulated pixel data and sequences of undefined length end with a delimiter, not at a count.
    return last.hadUndefinedLength || last.length === 0xffffffff
      ? `element ${name(last.tag)}: its value, of open length (FFFFFFFF: it ends at a delimiter), ` +
          `has no end in the ${held} bytes there`
      : `element ${name(last.tag)}: its value needs ${last.length} bytes, ${held} are there`;
  }
  const end = last ? last.dataOffset + last.length : start;
  if (size - end >= MAX_HEADER) return null;
  const which = last ? `after ${name(last.tag)}` : 'the first of the data set';
  return `the header of an element (${which}), at byte ${size}`;
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
