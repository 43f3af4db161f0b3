// DICOM input: one frame of a DICOM file to 8-bit grayscale display pixels, the way a viewer
// would show it (modality rescale, then VOI LUT or window, MONOCHROME1 inverted), ready for
// decodeRawGray. Parsing is dicom-parser's; compressed frames go to codecs that run in-process
// (sharp for 8-bit JPEG, WASM builds of CharLS and OpenJPEG, a JS lossless-JPEG decoder).
//
// Files arrive from anywhere (uploads, PACS exports), so every failure is a DicomError with a
// code, declared sizes are checked before any pixel is decoded, and the result carries only
// what inference needs: no patient, study or institution field leaves this module.
import * as zlib from 'node:zlib';
import * as dicomParser from 'dicom-parser';
import sharp from 'sharp';
import { DEFAULT_LIMITS, type DecodeLimits } from './decode';

export type DicomErrorCode =
  | 'NOT_DICOM'
  | 'CORRUPT'
  | 'TRUNCATED'
  | 'NO_PIXEL_DATA'
  | 'UNSUPPORTED_TRANSFER_SYNTAX'
  | 'UNSUPPORTED_PIXEL_FORMAT'
  | 'TOO_MANY_PIXELS'
  | 'TOO_LARGE';

export class DicomError extends Error {
  constructor(readonly code: DicomErrorCode, readonly source: string, readonly detail: string) {
    super(`${source}: ${detail}`);
    this.name = 'DicomError';
  }
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
  frames: number;
  bitsStored: number;
  /** How stored values became display values: 'voi-lut', 'window', 'full-range' or 'min-max'. */
  voi: 'voi-lut' | 'window' | 'full-range' | 'min-max';
}

export interface DicomOptions {
  limits?: Partial<DecodeLimits>;
  name?: string;
}

const TS = {
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

const TS_NAMES: Record<string, string> = {
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

const NATIVE = new Set<string>([TS.implicitLE, TS.explicitLE, TS.deflatedLE, TS.explicitBE]);
const SUPPORTED = new Set(Object.keys(TS_NAMES));

export function transferSyntaxName(uid: string): string {
  return TS_NAMES[uid] ?? uid;
}

/**
 * True for a Part-10 file (preamble + 'DICM') and for a bare data set without one, which old
 * archives still hold: it starts with a group 0002 or 0008 element in little endian.
 */
export function isDicom(buf: Uint8Array): boolean {
  if (buf.length >= 132 && buf[128] === 0x44 && buf[129] === 0x49 && buf[130] === 0x43 && buf[131] === 0x4d) return true;
  return bareDataSetSyntax(buf) !== null;
}

/** The transfer syntax of a data set without a file meta group, guessed from its first element. */
function bareDataSetSyntax(buf: Uint8Array): string | null {
  if (buf.length < 12) return null;
  const group = buf[0] | (buf[1] << 8);
  const element = buf[2] | (buf[3] << 8);
  if ((group !== 0x0008 && group !== 0x0002) || element > 0x0fff) return null;
  const upper = (b: number) => b >= 0x41 && b <= 0x5a;
  if (upper(buf[4]) && upper(buf[5])) return TS.explicitLE;
  const length = (buf[4] | (buf[5] << 8) | (buf[6] << 16)) + buf[7] * 2 ** 24;
  return length <= buf.length - 8 ? TS.implicitLE : null;
}

/** Parses a DICOM file and renders its first frame to 8-bit grayscale. */
export async function decodeDicom(buf: Uint8Array, opts: DicomOptions = {}): Promise<DicomImage> {
  const name = opts.name ?? '<dicom>';
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const fail = (code: DicomErrorCode, detail: string) => new DicomError(code, name, detail);
  if (buf.length > limits.maxInputBytes) {
    throw fail('TOO_LARGE', `${buf.length} bytes exceeds the ${limits.maxInputBytes}-byte input limit`);
  }
  const partTen = buf.length >= 132 && buf[128] === 0x44 && buf[129] === 0x49 && buf[130] === 0x43 && buf[131] === 0x4d;
  const bareSyntax = partTen ? null : bareDataSetSyntax(buf);
  if (!partTen && !bareSyntax) throw fail('NOT_DICOM', 'not a DICOM file');

  const ds = parse(buf, bareSyntax, limits, fail);
  const transferSyntax = (ds.string('x00020010') ?? bareSyntax ?? TS.implicitLE).replace(/\0/g, '').trim();
  if (!SUPPORTED.has(transferSyntax)) {
    throw fail('UNSUPPORTED_TRANSFER_SYNTAX', `transfer syntax ${transferSyntax} is not supported (supported: ${[...new Set(Object.values(TS_NAMES))].join(', ')})`);
  }
  const pixelElement = ds.elements.x7fe00010;
  if (!pixelElement || pixelElement.length === 0) throw fail('NO_PIXEL_DATA', 'no pixel data (7FE0,0010): not an image object');

  const rows = ds.uint16('x00280010') ?? 0;
  const columns = ds.uint16('x00280011') ?? 0;
  if (rows < 1 || columns < 1) throw fail('CORRUPT', `invalid image size ${columns}×${rows}`);
  if (rows * columns > limits.maxPixels) {
    throw fail('TOO_MANY_PIXELS', `${columns}×${rows} exceeds the ${limits.maxPixels}-pixel limit`);
  }
  const samples = ds.uint16('x00280002') ?? 1;
  const bitsAllocated = ds.uint16('x00280100') ?? 0;
  const bitsStored = ds.uint16('x00280101') ?? bitsAllocated;
  const signed = (ds.uint16('x00280103') ?? 0) === 1;
  const photometric = (ds.string('x00280004') ?? (samples === 3 ? 'RGB' : 'MONOCHROME2')).trim().toUpperCase();
  const planar = ds.uint16('x00280006') ?? 0;
  const frames = Math.max(1, ds.intString('x00280008') ?? 1);

  const pf: PixelFormat = { rows, columns, samples, bitsAllocated, bitsStored, signed, photometric, planar };
  checkPixelFormat(pf, fail);

  const frame = NATIVE.has(transferSyntax)
    ? nativeFrame(ds, pixelElement, pf, transferSyntax === TS.explicitBE, fail)
    : await encapsulatedFrame(ds, pixelElement, pf, transferSyntax, frames, limits, fail);

  let gray: Uint8Array;
  let voi: DicomImage['voi'];
  if (frame.kind === 'colour') {
    gray = frame.gray;
    voi = 'full-range';
  } else {
    ({ gray, voi } = toDisplay(frame.values, ds, pf));
    if (photometric === 'MONOCHROME1') for (let i = 0; i < gray.length; i++) gray[i] = 255 - gray[i];
  }
  const text = (tag: string) => {
    const s = ds.string(tag)?.trim();
    return s ? s.toUpperCase() : undefined;
  };
  return {
    gray, width: columns, height: rows, modality: text('x00080060'), photometric, transferSyntax,
    viewPosition: text('x00185101'), bodyPart: text('x00180015'), patientAge: text('x00101010'), frames, bitsStored, voi,
  };
}

type Fail = (code: DicomErrorCode, detail: string) => DicomError;

interface PixelFormat {
  rows: number;
  columns: number;
  samples: number;
  bitsAllocated: number;
  bitsStored: number;
  signed: boolean;
  photometric: string;
  planar: number;
}

const MONO = new Set(['MONOCHROME1', 'MONOCHROME2']);
const COLOUR = new Set(['RGB', 'YBR_FULL', 'YBR_FULL_422', 'YBR_ICT', 'YBR_RCT']);

function checkPixelFormat(pf: PixelFormat, fail: Fail): void {
  if (MONO.has(pf.photometric)) {
    if (pf.samples !== 1) throw fail('CORRUPT', `${pf.photometric} with ${pf.samples} samples per pixel`);
  } else if (COLOUR.has(pf.photometric)) {
    if (pf.samples !== 3) throw fail('CORRUPT', `${pf.photometric} with ${pf.samples} samples per pixel`);
    if (pf.bitsAllocated !== 8) throw fail('UNSUPPORTED_PIXEL_FORMAT', `${pf.bitsAllocated}-bit colour is not supported`);
  } else {
    throw fail('UNSUPPORTED_PIXEL_FORMAT', `photometric interpretation ${pf.photometric || '(none)'} is not supported (MONOCHROME1/2 or RGB/YBR expected)`);
  }
  if (pf.bitsAllocated !== 8 && pf.bitsAllocated !== 16) {
    throw fail('UNSUPPORTED_PIXEL_FORMAT', `${pf.bitsAllocated} bits allocated is not supported (8 or 16)`);
  }
  if (pf.bitsStored < 1 || pf.bitsStored > pf.bitsAllocated) {
    throw fail('CORRUPT', `bits stored ${pf.bitsStored} does not fit bits allocated ${pf.bitsAllocated}`);
  }
}

function parse(buf: Uint8Array, bareSyntax: string | null, limits: DecodeLimits, fail: Fail): dicomParser.DataSet {
  // Node's own zlib with an output cap: a deflated data set is a compression bomb waiting to happen.
  const inflater = (bytes: Uint8Array, position: number): Uint8Array => {
    let inflated: Buffer;
    try {
      inflated = zlib.inflateRawSync(bytes.subarray(position), { maxOutputLength: limits.maxInputBytes * 4 });
    } catch (e) {
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
    if (/overrun|beyond|past the end|end of buffer|exceeds/i.test(text)) throw fail('TRUNCATED', `truncated DICOM file (${text})`);
    throw fail('CORRUPT', `unreadable DICOM data set (${text})`);
  }
}

type Frame = { kind: 'mono'; values: Float32Array } | { kind: 'colour'; gray: Uint8Array };

/** Stored values of an uncompressed frame 0, masked to BitsStored and sign-extended. */
function nativeFrame(ds: dicomParser.DataSet, el: dicomParser.Element, pf: PixelFormat, bigEndian: boolean, fail: Fail): Frame {
  const n = pf.rows * pf.columns;
  const bytesPer = pf.bitsAllocated / 8;
  const frameBytes = pf.photometric === 'YBR_FULL_422' ? n * 2 : n * pf.samples * bytesPer;
  const available = Math.min(el.length, ds.byteArray.length - el.dataOffset);
  if (available < frameBytes) {
    throw fail('TRUNCATED', `pixel data holds ${Math.max(0, available)} bytes, one ${pf.columns}×${pf.rows} frame needs ${frameBytes}`);
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

function storedValues(raw: ArrayLike<number>, pf: PixelFormat): Float32Array {
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

const LUMA = [0.299, 0.587, 0.114];

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
    const [a, b, c] = pf.planar === 1 ? [bytes[i], bytes[n + i], bytes[2 * n + i]] : [bytes[3 * i], bytes[3 * i + 1], bytes[3 * i + 2]];
    out[i] = isYbr ? a : Math.round(LUMA[0] * a + LUMA[1] * b + LUMA[2] * c);
  }
  return out;
}

/** Frame 0 of encapsulated pixel data, decoded by the codec of its transfer syntax. */
async function encapsulatedFrame(ds: dicomParser.DataSet, el: dicomParser.Element, pf: PixelFormat, ts: string,
    frames: number, limits: DecodeLimits, fail: Fail): Promise<Frame> {
  if (!el.encapsulatedPixelData || !el.fragments?.length) throw fail('CORRUPT', 'compressed transfer syntax but pixel data is not encapsulated');
  let bytes: Uint8Array;
  try {
    if (frames === 1) {
      bytes = dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, el.fragments.length);
    } else if (el.basicOffsetTable?.length) {
      bytes = dicomParser.readEncapsulatedImageFrame(ds, el, 0);
    } else if (ts.startsWith('1.2.840.10008.1.2.4.5') || ts.startsWith('1.2.840.10008.1.2.4.7')) {
      bytes = dicomParser.readEncapsulatedImageFrame(ds, el, 0, dicomParser.createJPEGBasicOffsetTable(ds, el));
    } else {
      bytes = dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, 1);
    }
  } catch (e) {
    throw fail('CORRUPT', `cannot read the first frame's fragments (${errorText(e)})`);
  }
  const out = await decodeCompressed(bytes, pf, ts, limits, fail);
  if (out.width !== pf.columns || out.height !== pf.rows) {
    throw fail('CORRUPT', `compressed frame is ${out.width}×${out.height}, header says ${pf.columns}×${pf.rows}`);
  }
  const n = pf.rows * pf.columns;
  if (out.components === 3) {
    const gray = new Uint8Array(n);
    const s = out.samples;
    // Codecs hand back RGB (they undo the YCbCr/ICT/RCT colour transform themselves).
    for (let i = 0; i < n; i++) gray[i] = Math.round(LUMA[0] * s[3 * i] + LUMA[1] * s[3 * i + 1] + LUMA[2] * s[3 * i + 2]);
    // A monochrome header over a three-component JPEG: the luma is the stored value.
    return MONO.has(pf.photometric) ? { kind: 'mono', values: Float32Array.from(gray) } : { kind: 'colour', gray };
  }
  if (out.samples.length < n) throw fail('CORRUPT', `codec returned ${out.samples.length} samples for ${n} pixels`);
  const fmt = { ...pf, signed: out.signed ?? pf.signed };
  return { kind: 'mono', values: storedValues(out.samples.subarray(0, n), fmt) };
}

interface CodecOutput {
  width: number;
  height: number;
  components: number;
  /** Unsigned sample bit patterns (signed data is sign-extended later, from BitsStored). */
  samples: Uint8Array | Uint16Array;
  signed?: boolean;
}

async function decodeCompressed(bytes: Uint8Array, pf: PixelFormat, ts: string, limits: DecodeLimits, fail: Fail): Promise<CodecOutput> {
  const checkDims = (w: number, h: number) => {
    if (!(w > 0 && h > 0)) throw fail('CORRUPT', `compressed frame has no valid size (${w}×${h})`);
    if (w * h > limits.maxPixels) throw fail('TOO_MANY_PIXELS', `compressed frame is ${w}×${h}, over the ${limits.maxPixels}-pixel limit`);
  };
  try {
    switch (ts) {
      case TS.jpegBaseline:
      case TS.jpegExtended: {
        const sof = jpegFrameHeader(bytes);
        if (!sof) throw fail('CORRUPT', 'no JPEG frame header in the pixel data');
        checkDims(sof.width, sof.height);
        if (sof.precision > 8) throw fail('UNSUPPORTED_TRANSFER_SYNTAX', `${sof.precision}-bit JPEG (extended process) is not supported, only 8-bit`);
        const { data, info } = await sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'error' })
          .raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
        return { width: info.width, height: info.height, components: info.channels >= 3 ? 3 : 1, samples: oneOrThree(data, info.channels) };
      }
      case TS.jpegLossless:
      case TS.jpegLosslessSV1: {
        const sof = jpegFrameHeader(bytes);
        if (!sof) throw fail('CORRUPT', 'no JPEG frame header in the pixel data');
        checkDims(sof.width, sof.height);
        const bytesPer = sof.precision > 8 ? 2 : 1;
        const decoder = new (losslessJpeg().Decoder)();
        const copy = new Uint8Array(bytes); // a copy that owns its ArrayBuffer (Buffer.slice would not)
        const samples = decoder.decode(copy.buffer, 0, copy.byteLength, bytesPer);
        return { width: sof.width, height: sof.height, components: sof.components, samples };
      }
      case TS.jpegLSLossless:
      case TS.jpegLSNear: {
        const sof = jpegFrameHeader(bytes);
        if (!sof) throw fail('CORRUPT', 'no JPEG-LS frame header in the pixel data');
        checkDims(sof.width, sof.height);
        const lib = await codec('charls');
        const decoder = new lib.JpegLSDecoder();
        try {
          decoder.getEncodedBuffer(bytes.length).set(bytes);
          decoder.decode();
          const info = decoder.getFrameInfo();
          return wasmOutput(decoder.getDecodedBuffer(), info.width, info.height, info.componentCount, info.bitsPerSample);
        } finally {
          decoder.delete();
        }
      }
      case TS.j2kLossless:
      case TS.j2k: {
        const siz = j2kImageSize(bytes);
        if (!siz) throw fail('CORRUPT', 'no JPEG 2000 codestream header (SIZ) in the pixel data');
        checkDims(siz.width, siz.height);
        const lib = await codec('openjpeg');
        const decoder = new lib.J2KDecoder();
        try {
          decoder.getEncodedBuffer(bytes.length).set(bytes);
          decoder.decode();
          const info = decoder.getFrameInfo();
          const out = wasmOutput(decoder.getDecodedBuffer(), info.width, info.height, info.componentCount, info.bitsPerSample);
          return { ...out, signed: info.isSigned };
        } finally {
          decoder.delete();
        }
      }
      case TS.rle:
        return decodeRle(bytes, pf, fail);
      default:
        throw fail('UNSUPPORTED_TRANSFER_SYNTAX', `transfer syntax ${ts} is not supported`);
    }
  } catch (e) {
    if (e instanceof DicomError) throw e;
    throw fail('CORRUPT', `cannot decode ${transferSyntaxName(ts)} pixel data (${errorText(e)})`);
  }
}

function oneOrThree(data: Buffer, channels: number): Uint8Array {
  if (channels === 1 || channels === 3) return new Uint8Array(data.buffer, data.byteOffset, data.length);
  // Gray+alpha or RGBA: drop alpha (JPEG has none, but stay safe).
  const keep = channels >= 3 ? 3 : 1;
  const n = data.length / channels;
  const out = new Uint8Array(n * keep);
  for (let i = 0; i < n; i++) for (let c = 0; c < keep; c++) out[i * keep + c] = data[i * channels + c];
  return out;
}

/** Copies a decoded WASM buffer out of the module's memory before the decoder is freed. */
function wasmOutput(buf: Uint8Array, width: number, height: number, components: number, bits: number): CodecOutput {
  const copy = buf.slice();
  const samples = bits > 8 ? new Uint16Array(copy.buffer, 0, copy.byteLength >> 1) : copy;
  return { width, height, components, samples };
}

interface JpegFrameHeader {
  precision: number;
  height: number;
  width: number;
  components: number;
}

/** Size and precision from the first SOF marker (any JPEG process, and JPEG-LS's SOF55). */
export function jpegFrameHeader(b: Uint8Array): JpegFrameHeader | null {
  if (b[0] !== 0xff || b[1] !== 0xd8) return null;
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1];
    if (marker === 0xff) { i++; continue; }
    const len = (b[i + 2] << 8) | b[i + 3];
    const isSof = (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) || marker === 0xf7;
    if (isSof) {
      return { precision: b[i + 4], height: (b[i + 5] << 8) | b[i + 6], width: (b[i + 7] << 8) | b[i + 8], components: b[i + 9] };
    }
    if (marker === 0xda) return null;
    i += 2 + len;
  }
  return null;
}

/**
 * Image size from a JPEG 2000 codestream's SIZ segment (SOC FF4F, then SIZ FF51); searched for
 * within the first bytes because some writers wrap the codestream in JP2 boxes.
 */
export function j2kImageSize(b: Uint8Array): { width: number; height: number } | null {
  const end = Math.min(b.length - 22, 4096);
  for (let i = 0; i < end; i++) {
    if (b[i] === 0xff && b[i + 1] === 0x4f && b[i + 2] === 0xff && b[i + 3] === 0x51) {
      const v = new DataView(b.buffer, b.byteOffset + i + 8, 16);
      return { width: v.getUint32(0) - v.getUint32(8), height: v.getUint32(4) - v.getUint32(12) };
    }
  }
  return null;
}

/** DICOM RLE Lossless (PS3.5 G): a 64-byte header of segment offsets, one PackBits segment per byte plane. */
function decodeRle(bytes: Uint8Array, pf: PixelFormat, fail: Fail): CodecOutput {
  if (bytes.length < 64) throw fail('CORRUPT', 'RLE frame shorter than its header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const segments = view.getUint32(0, true);
  const bytesPer = pf.bitsAllocated / 8;
  if (segments !== pf.samples * bytesPer) throw fail('CORRUPT', `RLE frame has ${segments} segments, expected ${pf.samples * bytesPer}`);
  const n = pf.rows * pf.columns;
  const planes: Uint8Array[] = [];
  for (let s = 0; s < segments; s++) {
    const start = view.getUint32(4 + 4 * s, true);
    const end = s + 1 < segments ? view.getUint32(8 + 4 * s, true) : bytes.length;
    if (start < 64 || end > bytes.length || end < start) throw fail('CORRUPT', 'RLE segment offsets out of range');
    planes.push(unpackBits(bytes.subarray(start, end), n));
  }
  if (pf.samples === 3) {
    const samples = new Uint8Array(3 * n);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) samples[3 * i + c] = planes[c][i];
    return { width: pf.columns, height: pf.rows, components: 3, samples };
  }
  if (bytesPer === 1) return { width: pf.columns, height: pf.rows, components: 1, samples: planes[0] };
  // Segments hold the most significant byte plane first.
  const samples = new Uint16Array(n);
  for (let i = 0; i < n; i++) samples[i] = (planes[0][i] << 8) | planes[1][i];
  return { width: pf.columns, height: pf.rows, components: 1, samples };
}

function unpackBits(src: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let i = 0;
  let o = 0;
  while (i < src.length && o < n) {
    const h = src[i++];
    if (h < 128) {
      const count = Math.min(h + 1, n - o, src.length - i);
      out.set(src.subarray(i, i + count), o);
      i += h + 1;
      o += count;
    } else if (h > 128) {
      const count = Math.min(257 - h, n - o);
      out.fill(src[i++], o, o + count);
      o += count;
    }
  }
  return out;
}

/** Modality rescale, then the VOI transform, to 0..255 display values. */
function toDisplay(values: Float32Array, ds: dicomParser.DataSet, pf: PixelFormat): { gray: Uint8Array; voi: DicomImage['voi'] } {
  const slope = ds.floatString('x00281053') ?? 1;
  const intercept = ds.floatString('x00281052') ?? 0;
  const rescaled = slope !== 1 || intercept !== 0;
  if (rescaled) for (let i = 0; i < values.length; i++) values[i] = values[i] * slope + intercept;
  const gray = new Uint8Array(values.length);

  const lut = voiLut(ds, pf);
  if (lut) {
    const last = lut.data.length - 1;
    const scale = 255 / (2 ** lut.bits - 1);
    for (let i = 0; i < values.length; i++) {
      const k = Math.min(last, Math.max(0, Math.round(values[i]) - lut.first));
      gray[i] = Math.min(255, Math.round(lut.data[k] * scale));
    }
    return { gray, voi: 'voi-lut' };
  }

  // The first window when several are offered: the modality's preferred one by convention.
  const center = ds.floatString('x00281050', 0);
  const width = ds.floatString('x00281051', 0);
  if (center !== undefined && width !== undefined && Number.isFinite(center) && Number.isFinite(width) && width >= 1) {
    const fn = (ds.string('x00281056') ?? 'LINEAR').trim().toUpperCase();
    for (let i = 0; i < values.length; i++) gray[i] = windowValue(values[i], center, width, fn);
    return { gray, voi: 'window' };
  }

  // No VOI information: 8-bit data is already display-ready; deeper data usually occupies a
  // small part of its nominal range, so stretch what is there.
  let lo: number;
  let hi: number;
  let voi: DicomImage['voi'];
  if (pf.bitsStored <= 8 && !rescaled) {
    lo = pf.signed ? -(2 ** (pf.bitsStored - 1)) : 0;
    hi = lo + 2 ** pf.bitsStored - 1;
    voi = 'full-range';
  } else {
    lo = Infinity;
    hi = -Infinity;
    for (const v of values) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    voi = 'min-max';
  }
  const span = hi > lo ? hi - lo : 1;
  for (let i = 0; i < values.length; i++) gray[i] = Math.round(Math.min(1, Math.max(0, (values[i] - lo) / span)) * 255);
  return { gray, voi };
}

/** PS3.3 C.11.2.1.2: LINEAR (the default), LINEAR_EXACT and SIGMOID window functions. */
function windowValue(x: number, c: number, w: number, fn: string): number {
  let y: number;
  if (fn === 'SIGMOID') {
    y = 1 / (1 + Math.exp((-4 * (x - c)) / w));
  } else if (fn === 'LINEAR_EXACT') {
    y = (x - c) / w + 0.5;
  } else {
    y = w <= 1 ? (x < c - 0.5 ? 0 : 1) : (x - (c - 0.5)) / (w - 1) + 0.5;
  }
  return Math.round(Math.min(1, Math.max(0, y)) * 255);
}

function voiLut(ds: dicomParser.DataSet, pf: PixelFormat): { first: number; bits: number; data: ArrayLike<number> } | null {
  const item = ds.elements.x00283010?.items?.[0]?.dataSet;
  const dataEl = item?.elements.x00283006;
  if (!item || !dataEl || !item.elements.x00283002) return null;
  const entries = item.uint16('x00283002', 0) || 65536;
  const first = pf.signed ? (item.int16('x00283002', 1) ?? 0) : (item.uint16('x00283002', 1) ?? 0);
  const bits = item.uint16('x00283002', 2) ?? 16;
  if (!(bits >= 1 && bits <= 16)) return null;
  const available = Math.min(dataEl.length, item.byteArray.length - dataEl.dataOffset);
  if (available >= entries * 2) {
    const data = new Uint16Array(entries);
    for (let i = 0; i < entries; i++) data[i] = item.byteArrayParser.readUint16(item.byteArray, dataEl.dataOffset + 2 * i);
    return { first, bits, data };
  }
  // Some writers pack an 8-bit LUT one entry per byte.
  if (bits <= 8 && available >= entries) return { first, bits, data: item.byteArray.subarray(dataEl.dataOffset, dataEl.dataOffset + entries) };
  return null;
}

// WASM codecs are instantiated once per process, on first use.
interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned?: boolean };
  delete(): void;
}
interface CodecModules {
  charls: { JpegLSDecoder: new () => WasmDecoder };
  openjpeg: { J2KDecoder: new () => WasmDecoder };
}
const codecs: { [K in keyof CodecModules]?: Promise<CodecModules[K]> } = {};

function codec<K extends keyof CodecModules>(name: K): Promise<CodecModules[K]> {
  const paths: Record<keyof CodecModules, string> = {
    charls: '@cornerstonejs/codec-charls/decodewasmjs',
    openjpeg: '@cornerstonejs/codec-openjpeg/decodewasmjs',
  };
  // print/printErr: OpenJPEG logs progress lines to stdout otherwise.
  codecs[name] ??= (require(paths[name]) as (m: object) => Promise<CodecModules[K]>)({ print() {}, printErr() {} }) as never;
  return codecs[name] as Promise<CodecModules[K]>;
}

interface LosslessJpeg {
  Decoder: new () => { decode(buffer: ArrayBuffer, offset: number, length: number, numBytes: number): Uint8Array | Uint16Array };
}
let lossless: LosslessJpeg | null = null;
function losslessJpeg(): LosslessJpeg {
  lossless ??= require('jpeg-lossless-decoder-js') as LosslessJpeg;
  return lossless;
}

function errorText(e: unknown): string {
  // dicom-parser throws strings, or { exception, dataSet } objects for partial parses.
  const raw = e instanceof Error ? e.message
    : typeof e === 'object' && e !== null && 'exception' in e ? String((e as { exception: unknown }).exception)
    : String(e);
  return raw.trim().replace(/\s+/g, ' ').slice(0, 300);
}
