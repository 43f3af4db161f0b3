// Turns an image file (a JPEG that libjpeg reads: 8-bit baseline, progressive or arithmetic-coded; or a still
// PNG of any bit depth; gray/RGB/with alpha) into the model's input: an S×S 8-bit grayscale square.
// The JPEG and PNG variants refused from their headers are listed in image_header.ts; 16-bit PNGs written with
// fewer significant bits (a 12-bit film's values as they are) are read on their own scale (png16.ts).
//
// Resizing SQUASHES to the square (area average, preprocess.ts), it does not crop or pad. Most of the
// training data (the third-party 224×224 copies, see shared/data/README.md) was squashed
// exactly like this, so squashing everything else keeps train and inference geometry the same.
// Colour is reduced with the Rec. 601 luma weights on the encoded values, which is what PIL's
// convert('L') did when the data set's RGB originals were turned gray.
//
// Untrusted input (web uploads) passes through here, so the byte size and the pixel count are
// bounded before any pixel is decoded (decompression bombs), and every failure is a DecodeError
// naming the input and carrying a machine-readable code.
import * as fs from 'node:fs/promises';
import sharp from 'sharp';
import { jpegUnsupported, pngUnsupported } from './image_header';
import { pngSignificantBits } from './png16';
import { pngDataShortfall } from './png_chunks';
import { DEFAULT_MAX_PIXELS, overPixelLimit } from './pixel_limit';
import { unscaledPng } from './png16_decode';
import { preprocessPixels, resizeSquare } from './preprocess';

export type ImageKind = 'jpeg' | 'png';
/** 'raw' marks pixels that were decoded elsewhere (DICOM) and only resized here. */
export type SourceKind = ImageKind | 'raw';

export type DecodeErrorCode =
  | 'EMPTY'
  | 'TOO_LARGE'
  | 'TOO_MANY_PIXELS'
  | 'UNSUPPORTED_FORMAT'
  | 'CORRUPT'
  /** The file stops before its end marker (cut in transfer or in copying): DICOM's own code for a file cut short. */
  | 'TRUNCATED'
  | 'READ_FAILED'
  | 'INVALID_RAW';

export class DecodeError extends Error {
  constructor(
    readonly code: DecodeErrorCode,
    /** The file path, or a caller-chosen name for in-memory input. */
    readonly source: string,
    /** The reason without the source name, for callers that report the name themselves. */
    readonly detail: string,
    /** The error underneath (a READ_FAILED's file-system error, whose code callers classify). */
    cause?: unknown,
  ) {
    super(`${source}: ${detail}`, cause === undefined ? undefined : { cause });
    this.name = 'DecodeError';
  }
}

export interface DecodeLimits {
  /** Largest accepted encoded input, in bytes. */
  maxInputBytes: number;
  /** Largest accepted width × height of the encoded image. */
  maxPixels: number;
}

export const DEFAULT_LIMITS: Readonly<DecodeLimits> = Object.freeze({
  maxInputBytes: 64 * 1024 * 1024,
  maxPixels: DEFAULT_MAX_PIXELS,
});

export interface DecodedImage {
  /** size × size, row-major, 0 = black. */
  pixels: Uint8Array;
  size: number;
  /** Dimensions of the source image (after EXIF orientation), before resizing. */
  width: number;
  height: number;
  kind: SourceKind;
}

export interface DecodeOptions {
  limits?: Partial<DecodeLimits>;
  /** How the input is named in errors; decodeFile uses the path. */
  name?: string;
}

/** Grayscale pixels already decoded by another reader, e.g. a DICOM frame after its VOI LUT. */
export interface RawGrayImage {
  width: number;
  height: number;
  /** width × height samples, row-major; MONOCHROME1 must already be inverted by the caller. */
  data: Uint8Array | Uint16Array;
  /** The value that maps to white for Uint16 data (e.g. 2^BitsStored − 1); default 65535. */
  maxValue?: number;
}

/** The image format from the leading bytes; names the common formats we refuse, for better errors. */
export function sniffFormat(
  buf: Uint8Array,
): ImageKind | 'dicom' | 'gif' | 'webp' | 'tiff' | 'bmp' | 'heic' | 'heif' | 'avif' | 'unknown' {
  const at = (i: number, bytes: number[]) => bytes.every((b, k) => buf[i + k] === b);
  if (at(0, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (at(0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (at(128, [0x44, 0x49, 0x43, 0x4d])) return 'dicom';
  if (at(0, [0x47, 0x49, 0x46, 0x38])) return 'gif';
  if (at(0, [0x52, 0x49, 0x46, 0x46]) && at(8, [0x57, 0x45, 0x42, 0x50])) return 'webp';
  if (at(0, [0x49, 0x49, 0x2a, 0x00]) || at(0, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  if (at(0, [0x42, 0x4d])) return 'bmp';
  // ISO media 'ftyp' box, its major brand next: a phone's photo (HEIC is the iPhone camera's default).
  if (at(4, [0x66, 0x74, 0x79, 0x70])) {
    const brand = (i: number) => Buffer.from(buf.subarray(i, i + 4)).toString('latin1');
    const codec = (b: string) =>
      b === 'avif' || b === 'avis' ? 'avif' : /^(hei[cxms]|hev[cxms])$/.test(b) ? 'heic' : undefined;
    const major = brand(8);
    if (codec(major)) return codec(major)!;
    if (major === 'mif1' || major === 'msf1') {
      // The generic HEIF brands (ISO/IEC 23008-12): the codec is named among the compatible brands (4 bytes each
      // after the minor version, to the box's end), AVIF's or HEVC's; with neither it is a HEIF image of another
      // codec (JPEG, H.264, uncompressed), not a HEIC.
      const end = Math.min(new DataView(buf.buffer, buf.byteOffset).getUint32(0), buf.length);
      const named = new Set<string | undefined>();
      for (let i = 16; i + 4 <= end; i += 4) named.add(codec(brand(i)));
      return named.has('avif') ? 'avif' : named.has('heic') ? 'heic' : 'heif';
    }
  }
  return 'unknown';
}

/**
 * Why a file of a sniffed kind is refused, in terms of what its reader reads: this module reads JPEG and PNG
 * (training's reader), while `cxr data inspect`, evaluate and predict read DICOM too (`withDicom`).
 */
export function unsupportedFormat(kind: ReturnType<typeof sniffFormat>, withDicom = false): string {
  const reads = withDicom ? 'JPEG, PNG or DICOM' : 'JPEG or PNG';
  if (kind === 'unknown' || (withDicom && kind === 'dicom')) return `not a ${reads} image`;
  // "here": training's reader refuses what evaluate, predict and the server read (DICOM).
  return `${kind.toUpperCase()} is not supported${withDicom ? '' : ' here'} (${reads} expected)`;
}

/** Decodes an encoded JPEG/PNG held in memory (e.g. an upload). */
export async function decodeBuffer(
  buf: Uint8Array,
  size: number,
  opts: DecodeOptions = {},
): Promise<DecodedImage & { kind: ImageKind }> {
  const name = opts.name ?? '<buffer>';
  const limits = resolveLimits(opts.limits);
  checkSize(size);
  if (buf.length === 0) throw new DecodeError('EMPTY', name, 'empty file (0 bytes)');
  if (buf.length > limits.maxInputBytes) {
    throw new DecodeError(
      'TOO_LARGE',
      name,
      `${buf.length} bytes exceeds the ${limits.maxInputBytes}-byte input limit`,
    );
  }
  const kind = sniffFormat(buf);
  if (kind !== 'jpeg' && kind !== 'png') throw new DecodeError('UNSUPPORTED_FORMAT', name, unsupportedFormat(kind));
  const variant = kind === 'jpeg' ? jpegUnsupported(buf) : pngUnsupported(buf);
  if (variant) throw new DecodeError('UNSUPPORTED_FORMAT', name, variant);

  // failOn 'warning' makes a truncated JPEG an error instead of a half-grey image. ignoreIcc: the
  // stored sample values are the image, as the data set was made (PIL convert('L') ignores ICC
  // profiles) and as the page decodes (createImageBitmap with colorSpaceConversion 'none'); a
  // conversion through an embedded gray profile moved radiographs by about 14 levels.
  const input = () => sharp(buf, { limitInputPixels: limits.maxPixels, failOn: 'warning', ignoreIcc: true });
  let meta: sharp.Metadata;
  try {
    // The header only (no pixel is decoded), read without sharp's pixel cap so that an image over the
    // limit is refused below with its size and the limit, not sharp's bare "exceeds pixel limit".
    meta = await sharp(buf, { limitInputPixels: false, failOn: 'warning', ignoreIcc: true }).metadata();
  } catch (err) {
    throw sharpError(name, kind, buf, err);
  }
  if (!meta.width || !meta.height) throw new DecodeError('CORRUPT', name, `${kind} header has no dimensions`);
  checkPixels(name, meta.width, meta.height, limits.maxPixels);
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;

  // sharp only decodes (at the original size); gray conversion and the resize are preprocess.ts,
  // the same code the web page runs, so the server and the browser see identical pixels.
  const colourChannels = (meta.channels ?? 1) - (meta.hasAlpha ? 1 : 0);
  const rgbLike =
    meta.space === 'srgb' ||
    meta.space === 'rgb16' ||
    meta.space === 'rgb' ||
    meta.space === 'b-w' ||
    meta.space === 'grey16';
  // Colour outside sRGB (e.g. a CMYK JPEG) is converted to it.
  const pipeline = () =>
    colourChannels >= 3 && !rgbLike ? input().autoOrient().toColourspace('srgb') : input().autoOrient();

  let data: Buffer;
  let info: sharp.OutputInfo;
  try {
    // A 16-bit PNG whose samples use fewer bits is read on their scale (png16.ts). Every other file is read as
    // libvips gives it at depth 'uchar', which rescales 16-bit samples to 8 bits (rather than clipping them).
    const low =
      kind === 'png' && meta.depth === 'ushort' && (colourChannels === 1 || pngSignificantBits(buf))
        ? await unscaledPng(buf, pipeline().toColourspace(colourChannels === 1 ? 'grey16' : 'rgb16'), !!meta.hasAlpha)
        : null;
    ({ data, info } = low ?? (await pipeline().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true })));
  } catch (err) {
    throw sharpError(name, kind, buf, err);
  }
  if (data.length !== info.width * info.height * info.channels) {
    throw new DecodeError(
      'CORRUPT',
      name,
      `decoder returned ${data.length} bytes for ${info.width}×${info.height}×${info.channels}`,
    );
  }
  const pixels = preprocessPixels(
    new Uint8Array(data.buffer, data.byteOffset, data.length),
    info.width,
    info.height,
    info.channels,
    size,
  );
  return { pixels, size, width, height, kind };
}

/** Reads and decodes a file; the size limit is checked before reading. */
export async function decodeFile(
  file: string,
  size: number,
  opts: DecodeOptions = {},
): Promise<DecodedImage & { kind: ImageKind }> {
  return decodeBuffer(await readImageFile(file, opts.limits), size, { ...opts, name: opts.name ?? file });
}

/** Reads a file as bytes for decoding, refusing it before reading when it is over the byte limit. */
/** The file-system error code under a READ_FAILED (ENOENT, EACCES, EIO, ...); undefined for other errors. */
export function readErrorCode(err: DecodeError): string | undefined {
  const code = (err.cause as NodeJS.ErrnoException | undefined)?.code;
  return err.code === 'READ_FAILED' && typeof code === 'string' ? code : undefined;
}

export async function readImageFile(file: string, limits?: Partial<DecodeLimits>): Promise<Buffer> {
  const { maxInputBytes } = resolveLimits(limits);
  try {
    const st = await fs.stat(file);
    if (!st.isFile()) throw new DecodeError('READ_FAILED', file, 'not a regular file');
    if (st.size > maxInputBytes) {
      throw new DecodeError('TOO_LARGE', file, `${st.size} bytes exceeds the ${maxInputBytes}-byte input limit`);
    }
    return await fs.readFile(file);
  } catch (err) {
    if (err instanceof DecodeError) throw err;
    throw new DecodeError(
      'READ_FAILED',
      file,
      `cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      err,
    );
  }
}

/**
 * The hook for readers that produce pixels themselves (DICOM): resizes already-grayscale
 * samples to S×S exactly like decodeBuffer does for JPEG/PNG.
 */
export async function decodeRawGray(raw: RawGrayImage, size: number, opts: DecodeOptions = {}): Promise<DecodedImage> {
  const name = opts.name ?? '<raw>';
  const limits = resolveLimits(opts.limits);
  checkSize(size);
  const { width, height, data } = raw;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new DecodeError('INVALID_RAW', name, `invalid dimensions ${width}×${height}`);
  }
  checkPixels(name, width, height, limits.maxPixels);
  if (data.length !== width * height) {
    throw new DecodeError('INVALID_RAW', name, `${data.length} samples for a ${width}×${height} image`);
  }
  let gray8: Uint8Array;
  if (data instanceof Uint16Array) {
    const max = raw.maxValue ?? 65535;
    if (!(max > 0)) throw new DecodeError('INVALID_RAW', name, `maxValue must be positive, got ${max}`);
    gray8 = new Uint8Array(data.length);
    const scale = 255 / max;
    for (let i = 0; i < data.length; i++) gray8[i] = Math.min(255, Math.round(data[i] * scale));
  } else {
    gray8 = data;
  }
  return { pixels: resizeSquare(gray8, width, height, size), size, width, height, kind: 'raw' };
}

function resolveLimits(partial?: Partial<DecodeLimits>): DecodeLimits {
  return { ...DEFAULT_LIMITS, ...partial };
}

function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < 1 || size > 4096) {
    throw new RangeError(`decode: output size must be an integer in 1..4096, got ${size}`);
  }
}

/**
 * The longest side accepted: the most a JPEG or a DICOM image (Rows, Columns) can have. Only a PNG can be
 * longer, and such a strip is no film: a 1×49,000,000 PNG of 100 KB, within the pixel limit, took libvips
 * 17 s to decode (it works row by row), so it is refused from its header like an image over the pixel limit.
 */
export const MAX_SIDE = 65_535;

/**
 * Why an image of this size is refused, or undefined: over the pixel limit, or a side over MAX_SIDE, in words that
 * say how large it is and what the limit is. The one rule for the decoder and for the doors that refuse a film
 * from its header before queueing it (image_refusal.ts), so that both refuse the same films in the same words.
 */
export function pixelRefusal(width: number, height: number, maxPixels: number): string | undefined {
  if (width * height > maxPixels) return overPixelLimit(width, height, maxPixels);
  if (Math.max(width, height) > MAX_SIDE) {
    return (
      `image is ${width}×${height}, a side over the ${MAX_SIDE}-pixel limit ` +
      '(the most a JPEG or DICOM image can have)'
    );
  }
  return undefined;
}

function checkPixels(name: string, width: number, height: number, maxPixels: number): void {
  const reason = pixelRefusal(width, height, maxPixels);
  if (reason !== undefined) throw new DecodeError('TOO_MANY_PIXELS', name, reason);
}

/**
 * The words for a JPEG or PNG that stops before its end marker: the decoder's (sharpError) and the doors' that
 * refuse such a film before queueing it (image_refusal.ts), so that both say the same.
 */
export const CUT_SHORT: Readonly<Record<ImageKind, string>> = {
  jpeg: 'truncated JPEG: premature end of JPEG image (the file stops before its end-of-image marker)',
  png: 'truncated PNG: premature end of PNG image (the file stops before its IEND chunk)',
};

/**
 * What a failed sharp call says, made clear and the same on every path. libvips keeps one error buffer per
 * process, so when files are decoded at once (a folder's films) one failure may read another's message, or
 * only "Warning treated as error due to failOn setting". A file that stops before its end marker is named
 * truncated from its own bytes; otherwise libvips's lines are kept, less the generic failOn one and repeats.
 */
function sharpError(name: string, kind: ImageKind, buf: Uint8Array, err: unknown): DecodeError {
  const text = errorText(err);
  // The header's size is checked first (checkPixels), so sharp's own cap is a second line of defence only.
  if (/pixel limit/i.test(text))
    return new DecodeError('TOO_MANY_PIXELS', name, `image exceeds the pixel limit (${decoderLines(text)})`);
  if (kind === 'jpeg' && !hasEndMarker(buf, [0xff, 0xd9])) return new DecodeError('TRUNCATED', name, CUT_SHORT.jpeg);
  if (kind === 'png' && !hasEndMarker(buf, [...Buffer.from('IEND', 'latin1')]))
    return new DecodeError('TRUNCATED', name, CUT_SHORT.png);
  const shortfall = kind === 'png' ? pngDataShortfall(buf) : undefined;
  if (shortfall) return new DecodeError('CORRUPT', name, `corrupt PNG: ${shortfall}`);
  return new DecodeError('CORRUPT', name, `corrupt ${kind.toUpperCase()}: ${decoderLines(text)}`);
}

/**
 * Whether `marker` occurs in the file's last bytes, where a whole JPEG has its end-of-image marker and a
 * whole PNG its IEND chunk (some writers pad after them). Entropy-coded JPEG data never holds FF D9.
 * Zero bytes at the end are padding (a DICOM fragment is padded to an even length, some writers pad to a
 * block), however many there are: the last 1024 bytes before them are searched.
 */
export function hasEndMarker(buf: Uint8Array, marker: readonly number[]): boolean {
  let end = buf.length;
  while (end > 0 && buf[end - 1] === 0) end--;
  const tail = Buffer.from(buf.buffer, buf.byteOffset, end).subarray(-1024);
  return tail.includes(Buffer.from(marker));
}

/** libvips's distinct lines, without its prefixes and the generic failOn line (unless it is all there is). */
export function decoderLines(text: string): string {
  const bare = (line: string) =>
    line
      .replace(/Input (buffer|file) has corrupt header:\s*/gi, '')
      .replace(/\b(Vips|vips)\w*:\s*/g, '')
      .replace(/\s+/g, ' ')
      .trim();
  const lines = [...new Set(text.split('\n').map(bare))].filter(Boolean);
  const specific = lines.filter((l) => !/failOn setting/i.test(l));
  return (specific.length ? specific : ['the decoder found damaged data']).join('; ');
}

function errorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).trim();
}
