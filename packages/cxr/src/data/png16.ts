// 16-bit PNGs whose samples use fewer bits. Many DICOM-to-PNG exports write a 12- or 14-bit film's values as they
// are (0..4095, 0..16383) in 16-bit samples, without scaling them up to the sample depth as the PNG specification
// asks. Read as 16-bit, such a film's brightest bone is 1/16 (1/4) of white: it decoded to levels 0..15 and was
// flagged blank. A radiographer expects the film the modality made, so these samples are read on their own scale.
// The specification's scaling (sBIT=n or not) shifts n-bit values left by 16−n and fills the low bits with zeros
// or a copy of the top bits; a film so scaled whose samples all fit n bits is a very dark film whose values had
// all fit 2n−16 bits, and then every low bit is zero. So samples are taken as unscaled n-bit values only where
// every colour sample fits n bits AND one of them has a low bit set: a correctly scaled film (sBIT or not), every
// full-range 16-bit PNG and every 8-bit PNG read exactly as before. n is the sBIT chunk's, per channel; without
// one, a grey film's from its brightest sample: 12 bits (nearly every DR and CR export), 14 (modern DR
// detectors), else 16. Never fewer than 12 without sBIT: a dark 12-bit film is not to be read as 10-bit.

import { pngChunkData, pngChunks } from './png_chunks';

/** The fewest bits a grey 16-bit PNG's samples are read in when no sBIT chunk names them. */
export const UNSCALED_GREY_BITS = 12;

/** The depths, fewest first, a grey 16-bit PNG without sBIT may have been written in unscaled. */
const GREY_DEPTHS = [UNSCALED_GREY_BITS, 14];

/**
 * Whether the bytes start as a PNG whose IHDR says 16-bit samples (byte 24, the bit depth). The page's own
 * decoder (the browser's canvas) keeps only the high byte of such samples, so the page leaves these to the server.
 */
export function isPng16(head: Uint8Array): boolean {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (head.length < 25 || sig.some((b, i) => head[i] !== b)) return false;
  const ihdr = String.fromCharCode(head[12], head[13], head[14], head[15]);
  return ihdr === 'IHDR' && head[24] === 16;
}

/**
 * The sBIT chunk's significant bits per channel (grey; grey, alpha; R, G, B; or R, G, B, alpha), walking the
 * chunks up to the first IDAT (sBIT must come before it); undefined when there is none.
 */
export function pngSignificantBits(buf: Uint8Array): number[] | undefined {
  for (const c of pngChunks(buf)) {
    if (c.type === 'IDAT') return undefined;
    if (c.type === 'sBIT') return [...pngChunkData(buf, c)];
  }
  return undefined;
}

/**
 * The bits each colour channel of a decoded 16-bit PNG was written in, where the samples were written unscaled
 * (see the top of this file); undefined where they are to be read as 16-bit. `samples` interleaves `channels`,
 * the last an alpha where `hasAlpha`. A colour PNG is only read so where its sBIT says.
 */
export function unscaledBits(
  buf: Uint8Array,
  samples: Uint16Array,
  channels: number,
  hasAlpha: boolean,
): number[] | undefined {
  const colours = channels - (hasAlpha ? 1 : 0);
  const sbit = pngSignificantBits(buf)?.slice(0, colours);
  if (sbit && sbit.length === colours) {
    // sBIT 16 (or a bad 0) for a channel: that channel is full range; a film none of whose channels is short is.
    const bits = sbit.map((b) => (b >= 1 && b < 16 ? b : 16));
    return bits.some((b) => b < 16) && written(samples, channels, bits) ? bits : undefined;
  }
  if (colours !== 1) return undefined;
  let max = 0;
  for (let i = 0; i < samples.length; i += channels) if (samples[i] > max) max = samples[i];
  const n = GREY_DEPTHS.find((b) => max <= 2 ** b - 1);
  return n !== undefined && written(samples, channels, [n]) ? [n] : undefined;
}

/**
 * Every colour sample fits its channel's bits, and one has a bit set below them (the unscaled test above), and
 * the samples are not all an 8-bit film scaled by bit replication (v·257, the specification's own 8-to-16 scaling,
 * written without sBIT): a dark such film (levels 0..15) fits 12 bits with low bits set, and read unscaled was
 * brightened to 240, out of reach of the blank check. (Bit replication of the chosen n bits needs no test of its
 * own: samples that fit n bits and are so scaled have every low bit zero.)
 */
function written(samples: Uint16Array, channels: number, bits: number[]): boolean {
  const tops = bits.map((b) => 2 ** b - 1);
  const lows = bits.map((b) => 2 ** (16 - b) - 1);
  let low = false;
  let by257 = true;
  for (let i = 0; i < samples.length; i += channels)
    for (let c = 0; c < bits.length; c++) {
      const v = samples[i + c];
      if (v > tops[c]) return false;
      if (v & lows[c]) low = true;
      if (v % 257 !== 0) by257 = false;
    }
  return low && !by257;
}

/**
 * 16-bit samples to 8 bits: colour channel c's from 0..2^bits[c]−1, alpha from 0..65535, each rounded to nearest.
 */
export function samplesTo8(samples: Uint16Array, channels: number, hasAlpha: boolean, bits: number[]): Uint8Array {
  const out = new Uint8Array(samples.length);
  const tops = Array.from({ length: channels }, (_, c) => (hasAlpha && c === channels - 1 ? 65535 : 2 ** bits[c] - 1));
  for (let i = 0; i < samples.length; i++) out[i] = Math.round((samples[i] * 255) / tops[i % channels]);
  return out;
}
