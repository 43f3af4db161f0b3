// The one walker of a PNG's chunks (length, type, data, CRC), for the readers that look at chunks without decoding
// a pixel: sBIT (png16.ts), acTL and fcTL (image_header.ts), and the chunk lengths that tell a cut-short PNG
// (image_refusal.ts). The bytes may be a film's head only, or damaged: a chunk is yielded when its 8-byte header
// is there, and what is read of its data is bounded by the bytes held. CRCs are not checked (no reader needs
// them: the decoder does). Free of Node's Buffer, as png16.ts is, for the page's bundle.

/** One chunk: where its header starts, its declared data length and type, and where the next chunk starts. */
export interface PngChunk {
  at: number;
  length: number;
  type: string;
  /** at + 12 + length: past the header, the data and the CRC. */
  next: number;
}

/** Bytes of the signature before the first chunk. */
export const PNG_SIGNATURE_BYTES = 8;

/** The big-endian unsigned 32-bit value at byte `i` (the caller checks that four bytes are there). */
export function uint32At(b: Uint8Array, i: number): number {
  return ((b[i] << 24) >>> 0) + ((b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]);
}

/** The chunk whose header starts at byte `at`, or undefined when its 8 header bytes are not all in `buf`. */
export function pngChunkAt(buf: Uint8Array, at: number): PngChunk | undefined {
  if (at < 0 || at + 8 > buf.length) return undefined;
  const length = uint32At(buf, at);
  const type = String.fromCharCode(buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]);
  return { at, length, type, next: at + 12 + length };
}

/** The chunks from byte `from` (the first chunk, after the signature) on, while their headers are in `buf`. */
export function* pngChunks(buf: Uint8Array, from = PNG_SIGNATURE_BYTES): Generator<PngChunk> {
  for (let c = pngChunkAt(buf, from); c !== undefined; c = pngChunkAt(buf, c.next)) yield c;
}

/** A chunk's data as far as `buf` holds it (a chunk cut by the end of the bytes gives what is there). */
export function pngChunkData(buf: Uint8Array, c: PngChunk): Uint8Array {
  return buf.subarray(c.at + 8, Math.min(c.at + 8 + c.length, buf.length));
}

/** Deflate's highest ratio (about 1032 to 1, a long run of one byte): no compressed data inflates to more. */
const MAX_INFLATE_RATIO = 1032;
/** Samples per pixel of each PNG colour type (gray, RGB, palette, gray + alpha, RGBA). */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * Why a PNG's image data cannot hold the image its header declares, told from chunk lengths alone (no inflate), or
 * undefined: a side of 0, or IDAT chunks too short, even inflated at deflate's highest ratio, for the filtered rows
 * of width × height (libpng says only "read error" for either). For the decoder's words on a PNG it refused.
 */
export function pngDataShortfall(buf: Uint8Array): string | undefined {
  const ihdr = pngChunkAt(buf, PNG_SIGNATURE_BYTES);
  if (ihdr?.type !== 'IHDR' || buf.length < ihdr.at + 18) return undefined;
  const width = uint32At(buf, ihdr.at + 8);
  const height = uint32At(buf, ihdr.at + 12);
  if (width === 0 || height === 0) return `its header (IHDR) declares a ${width}×${height} image, which has no pixel`;
  const bits = buf[ihdr.at + 16] * (CHANNELS[buf[ihdr.at + 17]] ?? 1);
  const needed = height * (1 + Math.ceil((width * bits) / 8)); // each row starts with its filter byte
  let held = 0;
  for (const c of pngChunks(buf)) if (c.type === 'IDAT') held += pngChunkData(buf, c).length;
  if (held * MAX_INFLATE_RATIO + 1024 >= needed) return undefined;
  return (
    `its image data (IDAT, ${held} bytes) cannot hold the ${width}×${height} image its header (IHDR) declares ` +
    `(${needed} bytes once inflated): the file was written wrongly or damaged`
  );
}
