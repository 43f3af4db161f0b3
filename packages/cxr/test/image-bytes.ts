// Image files written or patched by hand, for the variants encoders cannot make (a PNG whose chunks lie, a
// 12-bit or JPEG-LS frame header, an animated PNG, a phone's HEIC): the bytes the header checks and sniffing
// read. Shared by the decode, bad-input, predict and enqueue tests.
import { deflateSync } from 'node:zlib';

/** The CRC-32 of a PNG chunk (ISO 3309, as the PNG specification gives it). */
export function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A PNG chunk of `type` holding `data`, with its length and CRC. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 8 + data.length);
  return out;
}

/**
 * A gray 8-bit PNG whose header claims width×height over only `dataBytes` zero bytes of (deflated) pixel data: a
 * decompression bomb's shape, which must be refused from its header.
 */
export function pngClaiming(width: number, height: number, dataBytes: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grayscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(dataBytes))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The PNG with an acTL chunk of `frames` frames right after IHDR (8-byte signature + 25-byte chunk). */
export function animatedPng(png: Buffer, frames: number): Buffer {
  const acTL = Buffer.alloc(8);
  acTL.writeUInt32BE(frames);
  return Buffer.concat([png.subarray(0, 33), pngChunk('acTL', acTL), png.subarray(33)]);
}

/** Where the JPEG's start-of-frame segment (SOF0 or SOF2) starts. */
export function sofAt(b: Buffer): number {
  for (let i = 2; i + 4 < b.length && b[i] === 0xff; i += 2 + b.readUInt16BE(i + 2)) {
    if (b[i + 1] === 0xc0 || b[i + 1] === 0xc2) return i;
  }
  throw new Error('no SOF0/SOF2 marker');
}

/** The JPEG with its start-of-frame marker changed to `marker` and its sample precision to `bits`. */
export function patchSof(src: Buffer, marker: number, bits: number): Buffer {
  const b = Buffer.from(src);
  const i = sofAt(b);
  b[i + 1] = marker;
  b[i + 4] = bits;
  return b;
}

/** The leading bytes of an ISO media file of major brand `brand` (HEIC, AVIF): what sniffing reads. */
export function isoMedia(brand: string): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32BE(24, 0);
  b.write(`ftyp${brand}`, 4, 'latin1');
  return b;
}

/** The leading bytes of a WebP file. */
export const WEBP = Buffer.concat([Buffer.from('RIFF\x20\0\0\0WEBPVP8 ', 'latin1'), Buffer.alloc(24)]);
