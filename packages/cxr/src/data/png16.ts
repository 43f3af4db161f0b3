// 16-bit PNGs whose samples use fewer bits. Many DICOM-to-PNG exports write a 12-bit film's values as they are
// (0..4095) in 16-bit samples, without scaling them up to the sample depth as the PNG specification asks. Read as
// 16-bit, such a film's brightest bone is 1/16 of white: it decoded to levels 0..15 and was flagged blank. A
// radiographer expects the film the modality made, so these samples are read on their own scale: the bits the
// sBIT chunk names where it is present, else 12 bits for a grey PNG (the depth of nearly every DR and CR
// detector's export). Only where every sample fits that scale: a PNG scaled as the specification asks (sBIT or
// not) has brighter samples, and it and every 8-bit PNG is read exactly as before.

/** Bits a grey 16-bit PNG's samples are read in when no sBIT chunk names them. */
export const UNSCALED_GREY_BITS = 12;

/**
 * The sBIT chunk's significant bits per channel (grey; grey, alpha; R, G, B; or R, G, B, alpha), walking the
 * chunks up to the first IDAT (sBIT must come before it); undefined when there is none.
 */
export function pngSignificantBits(buf: Uint8Array): number[] | undefined {
  let i = 8;
  while (i + 8 <= buf.length) {
    const len = ((buf[i] << 24) >>> 0) + ((buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3]);
    const type = String.fromCharCode(buf[i + 4], buf[i + 5], buf[i + 6], buf[i + 7]);
    if (type === 'IDAT') return undefined;
    if (type === 'sBIT') return [...buf.subarray(i + 8, Math.min(i + 8 + len, buf.length))];
    i += 12 + len;
  }
  return undefined;
}

/**
 * The bits a decoded 16-bit PNG's colour samples were written in, where fewer than 16 and every colour sample
 * fits them (written unscaled); undefined where the samples are to be read as 16-bit. `samples` interleaves
 * `channels`, the last an alpha where `hasAlpha`. A colour PNG is only read so where its sBIT says.
 */
export function unscaledBits(
  buf: Uint8Array,
  samples: Uint16Array,
  channels: number,
  hasAlpha: boolean,
): number | undefined {
  const colours = channels - (hasAlpha ? 1 : 0);
  const sbit = pngSignificantBits(buf)?.slice(0, colours);
  const bits = sbit && sbit.length === colours ? Math.max(...sbit) : colours === 1 ? UNSCALED_GREY_BITS : undefined;
  if (bits === undefined || !(bits >= 1 && bits < 16)) return undefined;
  const top = 2 ** bits - 1;
  for (let i = 0; i < samples.length; i += channels)
    for (let c = 0; c < colours; c++) if (samples[i + c] > top) return undefined;
  return bits;
}

/** 16-bit samples to 8 bits: colour samples from 0..2^bits−1, alpha from 0..65535, each rounded to nearest. */
export function samplesTo8(samples: Uint16Array, channels: number, hasAlpha: boolean, bits: number): Uint8Array {
  const out = new Uint8Array(samples.length);
  const top = 2 ** bits - 1;
  for (let i = 0; i < samples.length; i++) {
    const alpha = hasAlpha && i % channels === channels - 1;
    out[i] = Math.round((samples[i] * 255) / (alpha ? 65535 : top));
  }
  return out;
}
