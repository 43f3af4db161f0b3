// Native (uncompressed) pixel data: frame 0 to stored values, once the element's length agrees with the
// declared frames, and 8-bit colour to gray. The codecs (dicom_codecs.ts) share storedValues and LUMA.
import type * as dicomParser from 'dicom-parser';
import type { Fail, Frame, PixelFormat } from './dicom_parse';

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
  let bytes = ds.byteArray.subarray(el.dataOffset, el.dataOffset + frameBytes);
  // 8-bit samples written as OW in Explicit VR Big Endian are 16-bit words (PS3.5 8.1.1: the first sample in the
  // low-order byte), so each pair of bytes comes swapped; read as they lie, every two pixels traded places.
  // An odd-sized frame's last sample is in the low-order byte of a word whose other byte lies past the frame.
  if (bigEndian && bytesPer === 1 && el.vr === 'OW') {
    const words = ds.byteArray.subarray(el.dataOffset, el.dataOffset + Math.min(available, frameBytes + 1));
    bytes = swapPairs(words).subarray(0, frameBytes);
  }
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

/** A copy with each pair of bytes swapped (an odd last byte, a word's other half missing, kept as it is). */
function swapPairs(bytes: Uint8Array): Uint8Array {
  const out = Uint8Array.from(bytes);
  for (let i = 0; i + 1 < out.length; i += 2) {
    out[i] = bytes[i + 1];
    out[i + 1] = bytes[i];
  }
  return out;
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
