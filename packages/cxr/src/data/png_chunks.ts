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
