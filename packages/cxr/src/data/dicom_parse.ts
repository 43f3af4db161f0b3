// DICOM data sets (dicom-parser, with a capped inflater for deflated ones), the checks on a
// frame's declared pixel format, and uncompressed pixel data to stored values. Every failure is a
// DicomError with a code: files arrive from anywhere (uploads, PACS exports).
import * as zlib from 'node:zlib';
import * as dicomParser from 'dicom-parser';
import type { DecodeLimits } from './decode';

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
  return TS_NAMES[uid] ?? uid;
}

/**
 * True for a Part-10 file (preamble + 'DICM') and for a bare data set without one, which old
 * archives still hold: it starts with a group 0002 or 0008 element in little endian.
 */
export function isDicom(buf: Uint8Array): boolean {
  if (buf.length >= 132 && buf[128] === 0x44 && buf[129] === 0x49 && buf[130] === 0x43 && buf[131] === 0x4d)
    return true;
  return bareDataSetSyntax(buf) !== null;
}

/** The value representations of PS3.5 6.2; any other two letters are not an explicit VR. */
const VRS = new Set(
  'AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV'.split(' '),
);
/** Explicit VRs with two reserved bytes and a 32-bit length (PS3.5 7.1.2). */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT', 'UV']);
const UNDEFINED_LENGTH = 0xffffffff;
const ELEMENTS_CHECKED = 4;

/**
 * The transfer syntax of a data set without preamble and 'DICM', or null when the bytes are not one.
 * Other binary files can start with bytes that pass for a first element, so the first few elements
 * must all parse: tags ascending, a known VR when explicit, lengths that fit in the bytes (odd ones too:
 * old writers made them, and the decoder reads them).
 */
export function bareDataSetSyntax(buf: Uint8Array): string | null {
  if (buf.length < 12) return null;
  const group = buf[0] | (buf[1] << 8);
  const element = buf[2] | (buf[3] << 8);
  if ((group !== 0x0008 && group !== 0x0002) || element > 0x0fff) return null;
  const explicit = VRS.has(String.fromCharCode(buf[4], buf[5]));
  if (!leadingElementsParse(buf, explicit)) return null;
  return explicit ? TS.explicitLE : TS.implicitLE;
}

function leadingElementsParse(buf: Uint8Array, firstExplicit: boolean): boolean {
  let explicit = firstExplicit;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  let previous = -1;
  for (let n = 0; n < ELEMENTS_CHECKED; n++) {
    // The bytes end between elements: a small data set, or the head of a file (filmFormat reads only that).
    if (pos + 8 > buf.length) return true;
    const tag = view.getUint16(pos, true) * 0x10000 + view.getUint16(pos + 2, true);
    if (tag <= previous) return false;
    // The file meta group is explicit VR; the data set after it is in its own transfer syntax.
    if (previous >>> 16 === 0x0002 && tag >>> 16 !== 0x0002)
      explicit = VRS.has(String.fromCharCode(buf[pos + 4], buf[pos + 5]));
    let length: number;
    let header = 8;
    let mayBeUndefined = !explicit; // implicit VR: a sequence
    if (explicit) {
      const vr = String.fromCharCode(buf[pos + 4], buf[pos + 5]);
      if (!VRS.has(vr)) return false;
      if (LONG_VRS.has(vr)) {
        header = 12;
        if (pos + header > buf.length) return true;
        length = view.getUint32(pos + 8, true);
        // Sequences, unknown elements and encapsulated pixel data.
        mayBeUndefined = vr === 'SQ' || vr === 'UN' || vr === 'OB' || vr === 'OW';
      } else {
        length = view.getUint16(pos + 6, true);
      }
    } else {
      length = view.getUint32(pos + 4, true);
    }
    // Items follow, whose lengths are their own: the elements read so far must do.
    if (length === UNDEFINED_LENGTH) return mayBeUndefined;
    // A value past the end of the bytes: the head of a larger file, once two elements have parsed.
    if (pos + header + length > buf.length) return n >= 2;
    pos += header + length;
    previous = tag;
  }
  return true;
}

export type Fail = (code: DicomErrorCode, detail: string) => DicomError;

export interface PixelFormat {
  rows: number;
  columns: number;
  samples: number;
  bitsAllocated: number;
  bitsStored: number;
  signed: boolean;
  photometric: string;
  planar: number;
}

export const MONO = new Set(['MONOCHROME1', 'MONOCHROME2']);
const COLOUR = new Set(['RGB', 'YBR_FULL', 'YBR_FULL_422', 'YBR_ICT', 'YBR_RCT']);

export function checkPixelFormat(pf: PixelFormat, fail: Fail): void {
  if (MONO.has(pf.photometric)) {
    if (pf.samples !== 1) throw fail('CORRUPT', `${pf.photometric} with ${pf.samples} samples per pixel`);
  } else if (COLOUR.has(pf.photometric)) {
    if (pf.samples !== 3) throw fail('CORRUPT', `${pf.photometric} with ${pf.samples} samples per pixel`);
    if (pf.bitsAllocated !== 8)
      throw fail('UNSUPPORTED_PIXEL_FORMAT', `${pf.bitsAllocated}-bit colour is not supported`);
  } else {
    throw fail(
      'UNSUPPORTED_PIXEL_FORMAT',
      `photometric interpretation ${pf.photometric || '(none)'} is not supported (MONOCHROME1/2 or RGB/YBR expected)`,
    );
  }
  if (pf.bitsAllocated !== 8 && pf.bitsAllocated !== 16) {
    throw fail('UNSUPPORTED_PIXEL_FORMAT', `${pf.bitsAllocated} bits allocated is not supported (8 or 16)`);
  }
  if (pf.bitsStored < 1 || pf.bitsStored > pf.bitsAllocated) {
    throw fail('CORRUPT', `bits stored ${pf.bitsStored} does not fit bits allocated ${pf.bitsAllocated}`);
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
  try {
    return dicomParser.parseDicom(buf, options);
  } catch (e) {
    if (e instanceof DicomError) throw e;
    const text = errorText(e);
    // dicom-parser reports reads past the end as buffer overruns; partial files are common.
    if (/overrun|beyond|past the end|end of buffer|exceeds/i.test(text))
      throw fail('TRUNCATED', `truncated DICOM file (${text})`);
    throw fail('CORRUPT', `unreadable DICOM data set (${text})`);
  }
}

export type Frame = { kind: 'mono'; values: Float32Array } | { kind: 'colour'; gray: Uint8Array };

/**
 * Stored values of an uncompressed frame 0, masked to BitsStored and sign-extended, once the pixel data's
 * length agrees with the declared number of frames.
 */
export function nativeFrame(
  ds: dicomParser.DataSet,
  el: dicomParser.Element,
  pf: PixelFormat,
  frames: number,
  bigEndian: boolean,
  fail: Fail,
): Frame {
  const n = pf.rows * pf.columns;
  const bytesPer = pf.bitsAllocated / 8;
  const frameBytes = pf.photometric === 'YBR_FULL_422' ? n * 2 : n * pf.samples * bytesPer;
  checkNativeLength(el.length, frameBytes, frames, pf, fail);
  const available = Math.min(el.length, ds.byteArray.length - el.dataOffset);
  if (available < frameBytes) {
    throw fail(
      'TRUNCATED',
      `pixel data holds ${Math.max(0, available)} bytes, one ${pf.columns}×${pf.rows} frame needs ${frameBytes}`,
    );
  }
  const bytes = ds.byteArray.subarray(el.dataOffset, el.dataOffset + frameBytes);
  if (pf.samples === 3) return { kind: 'colour', gray: colourToGray(bytes, pf) };
  const raw = new Uint32Array(n);
  if (bytesPer === 1) {
    raw.set(bytes);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++) raw[i] = view.getUint16(2 * i, !bigEndian);
  }
  return { kind: 'mono', values: storedValues(raw, pf) };
}

/**
 * PS3.5 8.1.1: native pixel data holds every frame, padded to an even length. Shorter (TRUNCATED)
 * means frames are missing or NumberOfFrames is too high; longer by a whole frame or more (CORRUPT)
 * is a multi-frame file whose count is missing or too low, which read as one frame would be
 * predicted from whichever frame came first. Smaller excess is tolerated as padding, as pydicom does.
 */
function checkNativeLength(length: number, frameBytes: number, frames: number, pf: PixelFormat, fail: Fail): void {
  const needed = frameBytes * frames;
  const padded = needed + (needed % 2);
  if (length >= needed && length - padded < frameBytes) return;
  const layout =
    pf.photometric === 'YBR_FULL_422'
      ? `${pf.rows} rows × ${pf.columns} columns × 2 bytes (YBR_FULL_422)`
      : `${pf.rows} rows × ${pf.columns} columns × ${pf.samples} samples × ${pf.bitsAllocated / 8} bytes`;
  const held = Math.floor(length / frameBytes);
  throw fail(
    length < needed ? 'TRUNCATED' : 'CORRUPT',
    `pixel data (7FE0,0010) is ${length} bytes, but ${layout} × ${frames} frame(s) (NumberOfFrames ` +
      `(0028,0008)) = ${needed} bytes` +
      (length > needed
        ? `: it holds ${held} whole frames (a multi-frame file with a missing or wrong NumberOfFrames?)`
        : held > 0
          ? `: enough for ${held} frame(s)`
          : ''),
  );
}

export function storedValues(raw: ArrayLike<number>, pf: PixelFormat): Float32Array {
  const out = new Float32Array(raw.length);
  const mask = 2 ** pf.bitsStored - 1;
  const signBit = 2 ** (pf.bitsStored - 1);
  for (let i = 0; i < raw.length; i++) {
    // Bits above BitsStored may hold overlays or garbage.
    let v = raw[i] & mask;
    if (pf.signed && v >= signBit) v -= 2 * signBit;
    out[i] = v;
  }
  return out;
}

export const LUMA = [0.299, 0.587, 0.114];

/** 8-bit colour samples to luma; YBR data already carries luma as its first component. */
function colourToGray(bytes: Uint8Array, pf: PixelFormat): Uint8Array {
  const n = pf.rows * pf.columns;
  const out = new Uint8Array(n);
  if (pf.photometric === 'YBR_FULL_422') {
    // Y0 Y1 Cb Cr per pair of pixels.
    for (let i = 0; i < n; i++) out[i] = bytes[(i >> 1) * 4 + (i & 1)];
    return out;
  }
  const isYbr = pf.photometric.startsWith('YBR');
  for (let i = 0; i < n; i++) {
    const [a, b, c] =
      pf.planar === 1 ? [bytes[i], bytes[n + i], bytes[2 * n + i]] : [bytes[3 * i], bytes[3 * i + 1], bytes[3 * i + 2]];
    out[i] = isYbr ? a : Math.round(LUMA[0] * a + LUMA[1] * b + LUMA[2] * c);
  }
  return out;
}

export function errorText(e: unknown): string {
  // dicom-parser throws strings, or { exception, dataSet } objects for partial parses.
  const raw =
    e instanceof Error
      ? e.message
      : typeof e === 'object' && e !== null && 'exception' in e
        ? String((e as { exception: unknown }).exception)
        : String(e);
  return raw.trim().replace(/\s+/g, ' ').slice(0, 300);
}
