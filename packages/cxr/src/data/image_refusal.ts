// Why a worker would refuse a film, told from its header and its last bytes without decoding a pixel: for the
// doors that refuse before queueing (`cxr enqueue`, POST /jobs), so that a film the decoder cannot read is named
// there, in the decoder's words and code, rather than failed by a worker later. The bytes come through a reader
// (an offset and a length), so a file is checked from its head and tail alone and an upload from its buffer.
import { CUT_SHORT, DEFAULT_LIMITS, hasEndMarker, pixelRefusal } from './decode';
import { filmFormat, filmRefusal } from './dicom';
import { jpegFrameHeader } from './image_header';
import { PNG_SIGNATURE_BYTES, pngChunkAt, uint32At } from './png_chunks';

/** Up to `length` bytes at `offset` (fewer at the end of the file). */
export type ByteReader = (offset: number, length: number) => Promise<Uint8Array>;

/** Why a film is refused, with the decoder's code for it (decode.ts DecodeErrorCode). */
export interface FilmRefusal {
  reason: string;
  code: 'UNSUPPORTED_FORMAT' | 'TOO_MANY_PIXELS' | 'TRUNCATED';
}

/**
 * Leading bytes read: a JPEG's frame header comes after its APP segments (Exif with its thumbnail, an ICC
 * profile: up to 64 KiB each), a PNG's acTL before its first IDAT. A header past them is not checked here; the
 * worker still refuses such a file, with its reason, in the job's result.
 */
export const HEAD_BYTES = 256 * 1024;

/**
 * Last bytes read to tell a cut-short JPEG or PNG: the decoder looks for the end marker in the last 1024 bytes
 * before any zero padding (decode.ts hasEndMarker); the rest is room for that padding and for the scan data a
 * cut JPEG ends in.
 */
const TAIL_BYTES = 64 * 1024;

/**
 * Bytes read at once while walking a PNG's chunks. Writers cut IDAT into chunks of 8 to 64 KiB (libpng's and
 * libvips's: 8 KiB), and a read a chunk header took a system call per 8 KiB of film (5,441 for a 44 MB PNG; 172
 * reads of this window). Larger windows gained less than they read in vain past a long chunk's header.
 */
const WALK_WINDOW = 256 * 1024;

const JPEG_END = [0xff, 0xd9];
const PNG_END = [...Buffer.from('IEND', 'latin1')];

/** A reader over bytes held in memory (an upload): no copy. */
export function bufferReader(buf: Uint8Array): ByteReader {
  return async (offset, length) => buf.subarray(offset, offset + length);
}

/** A reader over an open file. */
export function fileReader(handle: { read: FileRead }): ByteReader {
  return async (offset, length) => {
    const buf = Buffer.allocUnsafe(length); // only the bytes read are kept
    return buf.subarray(0, (await handle.read(buf, 0, length, offset)).bytesRead);
  };
}
type FileRead = (buf: Buffer, at: number, length: number, position: number) => Promise<{ bytesRead: number }>;

/**
 * Why the decoder would refuse this film of `size` bytes, or null: not a JPEG, PNG or DICOM image, or a variant
 * no reader takes (filmRefusal), over the pixel or side limit by its header (decode.ts pixelRefusal), or a JPEG
 * or PNG cut short (it stops inside a scan or a chunk). `head` is its first bytes when the caller read them already
 * (HEAD_BYTES of them, or the whole film). An empty film and one over the byte limit are the caller's to refuse,
 * in its own words; a DICOM's damage is the worker's to find (telling it needs a decode).
 */
export async function filmRefusalOf(read: ByteReader, size: number, head?: Uint8Array): Promise<FilmRefusal | null> {
  const first = head ?? (await read(0, Math.min(HEAD_BYTES, size)));
  const unsupported = filmRefusal(first);
  if (unsupported !== undefined) return { reason: unsupported, code: 'UNSUPPORTED_FORMAT' };
  const kind = filmFormat(first);
  return kind === 'jpeg' || kind === 'png' ? imageRefusal(read, kind, first, size) : null;
}

async function imageRefusal(
  read: ByteReader,
  kind: 'jpeg' | 'png',
  head: Uint8Array,
  size: number,
): Promise<FilmRefusal | null> {
  const [width, height] = kind === 'jpeg' ? jpegSize(head) : pngSize(head);
  // The decoder's own rule (over the pixel limit, or a side over MAX_SIDE), in its words.
  const tooMany = pixelRefusal(width, height, DEFAULT_LIMITS.maxPixels);
  if (tooMany !== undefined) return { reason: tooMany, code: 'TOO_MANY_PIXELS' };
  const whole = size <= head.length;
  const tail = whole ? head : await read(size - TAIL_BYTES, TAIL_BYTES);
  if (hasEndMarker(tail, kind === 'jpeg' ? JPEG_END : PNG_END)) return null;
  let end = tail.length;
  while (end > 0 && tail[end - 1] === 0) end--; // padding, as the decoder skips it
  // A tail all padding tells nothing of the end before it.
  if (!whole && end < 1024) return null;
  const cut = kind === 'jpeg' ? jpegStopsInScan(tail.subarray(0, end), whole) : await pngStopsInChunk(read, size, head);
  return cut ? { reason: CUT_SHORT[kind], code: 'TRUNCATED' } : null;
}

function jpegSize(head: Uint8Array): [number, number] {
  const sof = jpegFrameHeader(head);
  return sof ? [sof.width, sof.height] : [0, 0];
}

function pngSize(head: Uint8Array): [number, number] {
  if (head.length < 24 || pngChunkAt(head, PNG_SIGNATURE_BYTES)?.type !== 'IHDR') return [0, 0];
  return [uint32At(head, 16), uint32At(head, 20)];
}

/** Whether b[i] starts a marker: 0xFF then neither a stuffed 0x00, a fill 0xFF nor a restart marker (RST0-7). */
const markerAt = (b: Uint8Array, i: number) =>
  b[i] === 0xff && b[i + 1] !== 0x00 && b[i + 1] !== 0xff && !(b[i + 1] >= 0xd0 && b[i + 1] <= 0xd7);

/**
 * Whether a JPEG without its end marker stops inside a scan: the last marker of its tail is a start of scan (a
 * well-formed SOS header) or, in a longer scan, the tail is all scan data (stuffed 0xFF 0x00, no marker). Then
 * the decoder meets the file's end mid-scan and refuses it. Bytes appended after a whole JPEG (a phone's motion
 * photo) end in another marker, or hold no stuffed byte: left to the worker, which reads those films.
 */
function jpegStopsInScan(tail: Uint8Array, whole: boolean): boolean {
  for (let i = tail.length - 2; i >= 0; i--) {
    if (!markerAt(tail, i)) continue;
    if (tail[i + 1] !== 0xda || i + 4 >= tail.length) return false;
    const length = (tail[i + 2] << 8) | tail[i + 3];
    const components = tail[i + 4];
    return components >= 1 && components <= 4 && length === 6 + 2 * components;
  }
  return !whole && Buffer.from(tail.buffer, tail.byteOffset, tail.length).includes(Buffer.from([0xff, 0x00]));
}

/**
 * Whether a PNG without IEND at its end stops inside a chunk (its IDAT data cut short), by its chunk lengths. Only
 * a PNG whose tail lacks IEND is walked; one whose chunks are whole (IEND alone missing) is read by the decoder.
 * The chunk headers are read WALK_WINDOW bytes at a time, from the film's head (read already) on; a chunk longer
 * than that is passed over without a read.
 */
async function pngStopsInChunk(read: ByteReader, size: number, head: Uint8Array): Promise<boolean> {
  let window = head;
  let windowAt = 0;
  for (let at = 8; at < size; ) {
    if (at < windowAt || at + 8 > windowAt + window.length) {
      window = await read(at, WALK_WINDOW);
      windowAt = at;
    }
    const chunk = pngChunkAt(window, at - windowAt);
    if (chunk === undefined) return true;
    if (!/^[A-Za-z]{4}$/.test(chunk.type)) return false; // damaged, not cut: the worker names it
    if (chunk.type === 'IEND') return false;
    at = windowAt + chunk.next;
    if (at > size) return true;
  }
  return false;
}
