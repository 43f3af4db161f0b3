// Compressed DICOM frames, decoded in-process: sharp for 8-bit JPEG, a JS lossless-JPEG decoder,
// WASM builds of CharLS (JPEG-LS) and OpenJPEG (JPEG 2000), and RLE (dicom_rle.ts). Declared sizes are
// checked against the limits before a codec allocates anything.
import * as dicomParser from 'dicom-parser';
import sharp from 'sharp';
import { type DecodeLimits, decoderLines, hasEndMarker } from './decode';
import { overPixelLimit } from './pixel_limit';
import {
  type CodecOutput,
  DicomError,
  errorText,
  type Fail,
  type Frame,
  MONO,
  type PixelFormat,
  TS,
  transferSyntaxName,
} from './dicom_parse';
import { LUMA, storedValues } from './dicom_native';
import { jpegFrameHeader } from './image_header';
import { decodeRle } from './dicom_rle';
import { codestreamKind, transferSyntaxMismatch } from './dicom_syntax';

/**
 * How many fragments frame 0 spans when a multi-frame file has no offset table (it is optional): up to the next
 * fragment that starts a codestream as the first one does (FF D8 FF for the JPEG family and JPEG-LS, FF 4F FF 51
 * for JPEG 2000); one fragment when the first starts neither way (RLE: one fragment per frame).
 */
function firstFrameFragments(ds: dicomParser.DataSet, fragments: dicomParser.Fragment[]): number {
  const starts = [
    [0xff, 0xd8, 0xff],
    [0xff, 0x4f, 0xff, 0x51],
  ];
  const startOf = (f: dicomParser.Fragment) =>
    starts.findIndex((m) => f.length >= m.length && m.every((b, k) => ds.byteArray[f.position + k] === b));
  const kind = startOf(fragments[0]);
  if (kind === -1) return 1;
  const next = fragments.findIndex((f, i) => i > 0 && startOf(f) === kind);
  return next === -1 ? fragments.length : next;
}

/** Frame 0 of encapsulated pixel data, decoded by the codec of its transfer syntax. */
export async function encapsulatedFrame(
  ds: dicomParser.DataSet,
  el: dicomParser.Element,
  pf: PixelFormat,
  ts: string,
  frames: number,
  limits: DecodeLimits,
  fail: Fail,
): Promise<Frame> {
  // Pixel data of open length whose fragments would begin at the end of the file: a file cut short there.
  if (el.encapsulatedPixelData && !el.fragments?.length && el.dataOffset + 8 >= ds.byteArray.length)
    throw fail('TRUNCATED', 'the file ends where the compressed pixel data (7FE0,0010) begins: it is truncated');
  if (!el.encapsulatedPixelData || !el.fragments?.length) {
    throw fail(
      'CORRUPT',
      'the header names a compressed transfer syntax, but the pixel data (7FE0,0010) holds no compressed ' +
        'fragments (its length is not open-ended, or it has no items)',
    );
  }
  checkFrameCount(ds, el, el.fragments, ts, frames, fail);
  let bytes: Uint8Array;
  try {
    if (frames === 1) {
      bytes = dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, el.fragments.length);
    } else if (el.basicOffsetTable?.length) {
      bytes = dicomParser.readEncapsulatedImageFrame(ds, el, 0);
    } else {
      bytes = dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, firstFrameFragments(ds, el.fragments));
    }
  } catch (e) {
    throw fail('CORRUPT', `cannot read the first frame's fragments (${errorText(e)})`);
  }
  const mismatch = transferSyntaxMismatch(bytes, ts);
  if (mismatch) throw fail('TRANSFER_SYNTAX_MISMATCH', mismatch);
  const out = await decodeCompressed(bytes, pf, ts, limits, fail);
  if (out.width !== pf.columns || out.height !== pf.rows) {
    throw fail('CORRUPT', `compressed frame is ${out.width}×${out.height}, header says ${pf.columns}×${pf.rows}`);
  }
  const n = pf.rows * pf.columns;
  if (out.components === 3) {
    const gray = new Uint8Array(n);
    const s = out.samples;
    // The JPEG and JPEG 2000 codecs hand back RGB (they undo the YCbCr/ICT/RCT colour transform themselves). RLE,
    // JPEG-LS and lossless JPEG transform no colour: their YBR_FULL samples are Y, Cb, Cr as stored, and Y is the
    // luma (weighing them as R, G, B turned a gray film's 10..40 into 93..102).
    if (KEEP_STORED_COLOUR.has(ts) && pf.photometric === 'YBR_FULL') for (let i = 0; i < n; i++) gray[i] = s[3 * i];
    else
      for (let i = 0; i < n; i++)
        gray[i] = Math.round(LUMA[0] * s[3 * i] + LUMA[1] * s[3 * i + 1] + LUMA[2] * s[3 * i + 2]);
    // A monochrome header over a three-component JPEG: the luma is the stored value.
    return MONO.has(pf.photometric) ? { kind: 'mono', values: Float32Array.from(gray) } : { kind: 'colour', gray };
  }
  if (out.samples.length < n) throw fail('CORRUPT', `codec returned ${out.samples.length} samples for ${n} pixels`);
  // Signed where PixelRepresentation (0028,0103) says so, or where the JPEG 2000 codestream's own sign does (its
  // decoder hands back negative numbers then). Signed pixels compressed as an unsigned codestream (written so by
  // some encoders) are the same two's complement bits: read unsigned, every negative value came out the
  // brightest, where viewers (Horos, pydicom's J2K correction) sign them as PixelRepresentation says.
  const fmt = { ...pf, signed: pf.signed || out.signed === true };
  return { kind: 'mono', values: storedValues(out.samples.subarray(0, n), fmt) };
}

/**
 * Does the encapsulated pixel data hold NumberOfFrames frames? Decided only where the file says:
 * the offset tables (basic, or extended (7FE0,0001)) have one entry per frame; every frame takes at
 * least one fragment, RLE exactly one (PS3.5 A.4); and, with no offset table, a fragment that opens
 * a JPEG or JPEG 2000 codestream starts a frame (those markers cannot occur inside entropy-coded
 * data), so more such fragments than declared frames is a multi-frame file whose count is missing.
 * One frame split over several fragments stays valid.
 */
function checkFrameCount(
  ds: dicomParser.DataSet,
  el: dicomParser.Element,
  fragments: dicomParser.Fragment[],
  ts: string,
  frames: number,
  fail: Fail,
): void {
  const mismatch = (what: string) =>
    fail('CORRUPT', `NumberOfFrames (0028,0008) is ${frames}, but the encapsulated pixel data ${what}`);
  const table = el.basicOffsetTable?.length ?? 0;
  if (table > 0 && table !== frames) throw mismatch(`has a basic offset table of ${table} frame(s)`);
  const extended = ds.elements.x7fe00001;
  if (extended && extended.length > 0 && extended.length / 8 !== frames)
    throw mismatch(`has an extended offset table of ${extended.length / 8} frame(s)`);
  if (fragments.length < frames)
    throw mismatch(`has only ${fragments.length} fragment(s), and every frame takes at least one`);
  if (ts === TS.rle && fragments.length !== frames)
    throw mismatch(`has ${fragments.length} fragments, and RLE takes exactly one per frame`);
  if (table > 0 || extended || fragments.length === frames) return;
  let starts = 0;
  for (const f of fragments) {
    if (codestreamKind(ds.byteArray.subarray(f.position, f.position + f.length)) !== null) starts++;
  }
  if (starts > frames) throw mismatch(`holds ${starts} codestreams (fragments that each start a compressed frame)`);
}

/** Syntaxes whose codecs hand back the samples in the colour space they were stored in (no YCbCr to RGB). */
const KEEP_STORED_COLOUR = new Set<string>([
  TS.rle,
  TS.jpegLSLossless,
  TS.jpegLSNear,
  TS.jpegLossless,
  TS.jpegLosslessSV1,
]);

/** The JPEG-family and JPEG 2000 syntaxes: each frame's codestream ends with FF D9 (EOI, or J2K's EOC). */
const ENDS_WITH_FFD9 = new Set<string>([
  TS.jpegBaseline,
  TS.jpegExtended,
  TS.jpegLossless,
  TS.jpegLosslessSV1,
  TS.jpegLSLossless,
  TS.jpegLSNear,
  TS.j2kLossless,
  TS.j2k,
]);

/**
 * Codecs that need the end marker to decode: without it the lossless JPEG decoder pads the missing rows
 * (a cut frame was assessed), CharLS fails after seconds of work with a bare number, and OpenJPEG returns a
 * 0×0 image. So a frame without one is told as cut short before any decoding. (sharp's JPEG decoder reports
 * a cut frame itself; its error is put in these words below.)
 */
const NEEDS_END_MARKER = new Set<string>(
  [...ENDS_WITH_FFD9].filter((ts) => ts !== TS.jpegBaseline && ts !== TS.jpegExtended),
);

async function decodeCompressed(
  bytes: Uint8Array,
  pf: PixelFormat,
  ts: string,
  limits: DecodeLimits,
  fail: Fail,
): Promise<CodecOutput> {
  const checkDims = (w: number, h: number) => {
    if (!(w > 0 && h > 0)) throw fail('CORRUPT', `compressed frame has no valid size (${w}×${h})`);
    if (w * h > limits.maxPixels)
      throw fail('TOO_MANY_PIXELS', overPixelLimit(w, h, limits.maxPixels, 'compressed frame'));
  };
  // A frame that starts as its codestream (bytes that do not are the codec's to call damaged) and has no
  // end marker. Entropy-coded data never holds FF D9 (an FF in it is followed by 00, or in J2K by a byte under 90).
  const cut = ENDS_WITH_FFD9.has(ts) && codestreamKind(bytes) !== null && !hasEndMarker(bytes, [0xff, 0xd9]);
  const truncated = () =>
    fail(
      'TRUNCATED',
      `the ${transferSyntaxName(ts)} frame (${bytes.length} bytes) stops before its end marker (FFD9): ` +
        'the compressed pixel data is cut short (the file is truncated)',
    );
  if (cut && NEEDS_END_MARKER.has(ts)) throw truncated();
  try {
    switch (ts) {
      case TS.jpegBaseline:
      case TS.jpegExtended: {
        const sof = jpegFrameHeader(bytes);
        if (!sof) throw fail('CORRUPT', 'no JPEG frame header in the pixel data');
        checkDims(sof.width, sof.height);
        if (sof.precision > 8)
          throw fail(
            'UNSUPPORTED_TRANSFER_SYNTAX',
            `${sof.precision}-bit JPEG (extended process) is not supported, only 8-bit`,
          );
        const { data, info } = await sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'error' })
          .raw({ depth: 'uchar' })
          .toBuffer({ resolveWithObject: true });
        return {
          width: info.width,
          height: info.height,
          components: info.channels >= 3 ? 3 : 1,
          samples: oneOrThree(data, info.channels),
        };
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
          const out = wasmOutput(
            decoder.getDecodedBuffer(),
            info.width,
            info.height,
            info.componentCount,
            info.bitsPerSample,
          );
          return { ...out, samples: pixelInterleaved(out, decoder.getInterleaveMode?.() ?? 2) };
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
          if (!(info.width > 0 && info.height > 0))
            throw fail('CORRUPT', `cannot decode ${transferSyntaxName(ts)} pixel data: the codec found no image in it`);
          const out = wasmOutput(
            decoder.getDecodedBuffer(),
            info.width,
            info.height,
            info.componentCount,
            info.bitsPerSample,
          );
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
    if (cut) throw truncated();
    throw fail('CORRUPT', `cannot decode ${transferSyntaxName(ts)} pixel data: ${codecErrorText(e)}`);
  }
}

/**
 * A codec's error in our words: the WASM codecs throw a bare number (a pointer into their memory, different
 * every time), sharp prefixes libvips's lines with its loader's name.
 */
function codecErrorText(e: unknown): string {
  const lines = typeof e === 'number' ? '' : decoderLines(errorText(e));
  return lines && !/^the decoder found damaged data$/.test(lines)
    ? `the codestream is damaged (${lines})`
    : 'the codestream is damaged';
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

/**
 * CharLS hands back a colour frame laid out as its stream interleaves it (T.87 ILV): 0 none (plane after plane),
 * 1 line (each row's planes in turn), 2 sample (R G B R G B). The luma above reads sample-interleaved pixels, so the
 * other two are reordered: read as they lie, a planar frame's pixels took their colours from other pixels.
 */
function pixelInterleaved(out: CodecOutput, mode: number): CodecOutput['samples'] {
  const { samples: s, width: w, height: h, components: c } = out;
  if (c === 1 || (mode !== 0 && mode !== 1) || s.length < w * h * c) return s;
  const dst = new (s.constructor as new (length: number) => typeof s)(w * h * c);
  for (let y = 0; y < h; y++)
    for (let k = 0; k < c; k++)
      for (let x = 0; x < w; x++) {
        const from = mode === 0 ? (k * h + y) * w + x : (y * c + k) * w + x;
        dst[(y * w + x) * c + k] = s[from];
      }
  return dst;
}

/**
 * Image size from a JPEG 2000 codestream's SIZ segment (SOC FF4F, then SIZ FF51); searched for
 * within the first bytes because some writers wrap the codestream in JP2 boxes.
 */
function j2kImageSize(b: Uint8Array): { width: number; height: number } | null {
  const end = Math.min(b.length - 22, 4096);
  for (let i = 0; i < end; i++) {
    if (b[i] === 0xff && b[i + 1] === 0x4f && b[i + 2] === 0xff && b[i + 3] === 0x51) {
      const v = new DataView(b.buffer, b.byteOffset + i + 8, 16);
      return { width: v.getUint32(0) - v.getUint32(8), height: v.getUint32(4) - v.getUint32(12) };
    }
  }
  return null;
}

// WASM codecs are instantiated once per process, on first use.
interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  /** CharLS's: how the decoded frame's components are laid out (0 planar, 1 by line, 2 by sample). */
  getInterleaveMode?(): number;
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
  codecs[name] ??= (require(paths[name]) as (m: object) => Promise<CodecModules[K]>)({
    print() {},
    printErr() {},
  }) as never;
  return codecs[name] as Promise<CodecModules[K]>;
}

interface LosslessJpeg {
  Decoder: new () => {
    decode(buffer: ArrayBuffer, offset: number, length: number, numBytes: number): Uint8Array | Uint16Array;
  };
}
let lossless: LosslessJpeg | null = null;
function losslessJpeg(): LosslessJpeg {
  lossless ??= require('jpeg-lossless-decoder-js') as LosslessJpeg;
  return lossless;
}
