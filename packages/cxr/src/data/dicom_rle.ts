// DICOM RLE Lossless frames (PS3.5 G), decoded here: no codec library has it. A frame whose
// segments do not fill every pixel is refused as cut short, not padded with black.
import type { CodecOutput, Fail, PixelFormat } from './dicom_parse';

/**
 * DICOM RLE Lossless (PS3.5 G): a 64-byte header of segment offsets, one PackBits segment per byte plane.
 * Every segment must fill its plane: a frame cut short used to be padded with black and assessed.
 */
export function decodeRle(bytes: Uint8Array, pf: PixelFormat, fail: Fail): CodecOutput {
  if (bytes.length < 64) throw fail('CORRUPT', 'RLE frame shorter than its header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const segments = view.getUint32(0, true);
  const bytesPer = pf.bitsAllocated / 8;
  if (segments !== pf.samples * bytesPer)
    throw fail('CORRUPT', `RLE frame has ${segments} segments, expected ${pf.samples * bytesPer}`);
  const n = pf.rows * pf.columns;
  const planes: Uint8Array[] = [];
  for (let s = 0; s < segments; s++) {
    const start = view.getUint32(4 + 4 * s, true);
    const next = s + 1 < segments ? view.getUint32(8 + 4 * s, true) : bytes.length;
    if (start < 64 || next < start) throw fail('CORRUPT', 'RLE segment offsets out of range');
    // Segments are stored in order, so a frame cut short ends inside one (the rest start past its end).
    const end = Math.min(next, bytes.length);
    const { plane, filled } = unpackBits(bytes.subarray(Math.min(start, end), end), n);
    if (filled < n) {
      const short =
        `RLE segment ${s + 1} of ${segments} decodes to ${filled} of the ${n} bytes ` +
        `a ${pf.columns}×${pf.rows} frame needs`;
      // A segment followed by another within the frame was written short; the last one, or one that runs past
      // the end of the frame, is where the bytes stop.
      if (next < bytes.length) throw fail('CORRUPT', `${short}: the segment is damaged`);
      throw fail('TRUNCATED', `${short}: the compressed pixel data is cut short (the file is truncated)`);
    }
    planes.push(plane);
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

/** PackBits into n bytes; `filled` is how many the segment's runs gave (n when it is whole; extra runs are ignored). */
function unpackBits(src: Uint8Array, n: number): { plane: Uint8Array; filled: number } {
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
      // A repeat run whose byte is missing (the segment ends after its header) fills nothing.
      if (i >= src.length) break;
      const count = Math.min(257 - h, n - o);
      out.fill(src[i++], o, o + count);
      o += count;
    }
  }
  return { plane: out, filled: o };
}
