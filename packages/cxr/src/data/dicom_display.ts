// Stored values to what a viewer shows: modality rescale (or Modality LUT), then the VOI LUT, else the window
// (LINEAR, LINEAR_EXACT, SIGMOID), else the full range or the values' min-max, as 0..255.
import type * as dicomParser from 'dicom-parser';
import { type Fail, type PixelFormat, REEXPORT } from './dicom_parse';

/** How stored values became display values. */
export type VoiMethod = 'voi-lut' | 'window' | 'full-range' | 'min-max';

/** Modality rescale (or Modality LUT), then the VOI transform, to 0..255 display values. */
export function toDisplay(
  values: Float32Array,
  ds: dicomParser.DataSet,
  pf: PixelFormat,
  fail: Fail,
): { gray: Uint8Array; voi: VoiMethod } {
  // PS3.3 C.11.1: a Modality LUT Sequence takes the place of the rescale (the two are not to be given together;
  // where they are, the LUT is taken, as pydicom's apply_modality_lut does). While it was ignored, a window given
  // in the LUT's output units was laid over the stored values: a film a viewer shows in full came out black or white.
  const modalityItem = ds.elements.x00283000?.items?.[0]?.dataSet;
  // Its first mapped value is SS over signed pixels (PS3.3 C.11.1.1).
  const modality = lutOf(modalityItem, pf.signed || modalityItem?.elements.x00283002?.vr === 'SS');
  // A Modality LUT given but unreadable is refused, not passed over: the rescale it replaces is absent, and the
  // stored values shown as they are made a film of the wrong contrast (inverted, where the LUT inverts) that was
  // assessed all the same. (An unreadable VOI LUT leaves the window, a display choice, and is passed over.)
  if (typeof modality === 'string') {
    throw fail('CORRUPT', `the Modality LUT Sequence (0028,3000) cannot be applied: ${modality}; ${REEXPORT}`);
  }
  if (modality) {
    applyLut(values, modality);
    // The LUT's output is 0..2^bits − 1: a VOI LUT over it starts at an unsigned value.
    return voiToDisplay(values, ds, pf, { rescaled: true, signed: false, negative: false });
  }
  const slope = ds.floatString('x00281053') ?? 1;
  const intercept = ds.floatString('x00281052') ?? 0;
  // A slope that is no number (parseFloat of "abc" is NaN) or 0 maps every pixel to one value: the film came out
  // all black, answered as blank rather than as the damaged header it is.
  if (!Number.isFinite(slope) || slope === 0 || !Number.isFinite(intercept)) {
    throw fail(
      'CORRUPT',
      `RescaleSlope (0028,1053) or RescaleIntercept (0028,1052) is not a usable number (a slope must be a ` +
        `number other than 0); ${REEXPORT}`,
    );
  }
  const rescaled = slope !== 1 || intercept !== 0;
  if (rescaled) for (let i = 0; i < values.length; i++) values[i] = values[i] * slope + intercept;
  return voiToDisplay(values, ds, pf, { rescaled, signed: pf.signed, negative: intercept < 0 || slope < 0 });
}

/**
 * The VOI transform of values after the modality transform: `rescaled` when that changed them, `signed` when they
 * are signed as stored, `negative` when the rescale can make them negative (for the VOI LUT's first value).
 */
function voiToDisplay(
  values: Float32Array,
  ds: dicomParser.DataSet,
  pf: PixelFormat,
  modality: { rescaled: boolean; signed: boolean; negative: boolean },
): { gray: Uint8Array; voi: VoiMethod } {
  const { rescaled } = modality;
  const gray = new Uint8Array(values.length);
  const lut = voiLut(ds, modality.signed, modality.negative);
  if (lut) {
    const scale = 255 / (2 ** lut.bits - 1);
    applyLut(values, lut);
    for (let i = 0; i < values.length; i++) gray[i] = Math.min(255, Math.round(values[i] * scale));
    return { gray, voi: 'voi-lut' };
  }

  // The first window when several are offered: the modality's preferred one by convention.
  const center = ds.floatString('x00281050', 0);
  const width = ds.floatString('x00281051', 0);
  if (center !== undefined && width !== undefined && Number.isFinite(center) && Number.isFinite(width) && width >= 1) {
    const fn = (ds.string('x00281056') ?? 'LINEAR').trim().toUpperCase();
    for (let i = 0; i < values.length; i++) gray[i] = windowValue(values[i], center, width, fn);
    return { gray, voi: 'window' };
  }

  // No VOI information: 8-bit data is already display-ready; deeper data usually occupies a
  // small part of its nominal range, so stretch what is there.
  let lo: number;
  let hi: number;
  let voi: VoiMethod;
  if (pf.bitsStored <= 8 && !rescaled) {
    lo = pf.signed ? -(2 ** (pf.bitsStored - 1)) : 0;
    hi = lo + 2 ** pf.bitsStored - 1;
    voi = 'full-range';
  } else {
    lo = Infinity;
    hi = -Infinity;
    for (const v of values) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    voi = 'min-max';
  }
  const span = hi > lo ? hi - lo : 1;
  for (let i = 0; i < values.length; i++) gray[i] = Math.round(Math.min(1, Math.max(0, (values[i] - lo) / span)) * 255);
  return { gray, voi };
}

/** PS3.3 C.11.2.1.2: LINEAR (the default), LINEAR_EXACT and SIGMOID window functions. */
function windowValue(x: number, c: number, w: number, fn: string): number {
  let y: number;
  if (fn === 'SIGMOID') {
    y = 1 / (1 + Math.exp((-4 * (x - c)) / w));
  } else if (fn === 'LINEAR_EXACT') {
    y = (x - c) / w + 0.5;
  } else {
    y = w <= 1 ? (x < c - 0.5 ? 0 : 1) : (x - (c - 0.5)) / (w - 1) + 0.5;
  }
  return Math.round(Math.min(1, Math.max(0, y)) * 255);
}

/**
 * The first VOI LUT, over the values after the modality rescale. PS3.3 C.11.2.1.1: the descriptor's first mapped
 * value is SS when those values can be negative, US otherwise. Read signed for signed pixels (as always), and for
 * unsigned ones where the descriptor's VR is SS or, with no VR (implicit), where the rescale can make them negative
 * (`rescaledNegative`): an SS first value of −1024 over unsigned pixels rescaled by −1024 was read as 64512, and
 * every pixel fell below the LUT (a black film).
 */
function voiLut(ds: dicomParser.DataSet, signedPixels: boolean, rescaledNegative: boolean): Lut | null {
  const item = ds.elements.x00283010?.items?.[0]?.dataSet;
  const descriptor = item?.elements.x00283002;
  if (!descriptor) return null;
  const lut = lutOf(item, signedPixels || descriptor.vr === 'SS' || (descriptor.vr === undefined && rescaledNegative));
  return typeof lut === 'string' ? null : lut;
}

/** A LUT: the input value of its first entry, its output bits, and its entries. */
interface Lut {
  first: number;
  bits: number;
  data: ArrayLike<number>;
}

/** Each value through the LUT; below its first input the first entry, past its last the last (PS3.3 C.11.1.1). */
function applyLut(values: Float32Array, lut: Lut): void {
  const last = lut.data.length - 1;
  for (let i = 0; i < values.length; i++)
    values[i] = lut.data[Math.min(last, Math.max(0, Math.round(values[i]) - lut.first))];
}

/**
 * The LUT of a Modality or VOI LUT Sequence item (its LUT Descriptor (0028,3002) and LUT Data (0028,3006)), with
 * the descriptor's first mapped value read signed when `signedFirst`; null when the item has neither (or there is
 * no item), and why it cannot be read when it has one or both but no usable LUT. Bounded: at most 65,536 entries.
 */
function lutOf(item: dicomParser.DataSet | undefined, signedFirst: boolean): Lut | string | null {
  const dataEl = item?.elements.x00283006;
  const descriptor = item?.elements.x00283002;
  if (!item || (!dataEl && !descriptor)) return null;
  if (!descriptor) return 'it has LUT Data (0028,3006) but no LUT Descriptor (0028,3002)';
  if (!dataEl) return 'it has a LUT Descriptor (0028,3002) but no LUT Data (0028,3006)';
  // Three 16-bit values; a shorter one was read on into the bytes of the elements after it.
  if (descriptor.length < 6) return `its LUT Descriptor (0028,3002) is ${descriptor.length} bytes, not three values`;
  const entries = item.uint16('x00283002', 0) || 65536;
  const first = signedFirst ? (item.int16('x00283002', 1) ?? 0) : (item.uint16('x00283002', 1) ?? 0);
  const bits = item.uint16('x00283002', 2) ?? 16;
  if (!(bits >= 1 && bits <= 16)) return `its LUT Descriptor (0028,3002) gives ${bits} bits an entry (1 to 16 can be)`;
  const available = Math.max(0, Math.min(dataEl.length, item.byteArray.length - dataEl.dataOffset));
  if (available >= entries * 2) {
    const data = new Uint16Array(entries);
    for (let i = 0; i < entries; i++)
      data[i] = item.byteArrayParser.readUint16(item.byteArray, dataEl.dataOffset + 2 * i);
    return { first, bits, data };
  }
  // Some writers pack an 8-bit LUT one entry per byte.
  if (bits <= 8 && available >= entries)
    return { first, bits, data: item.byteArray.subarray(dataEl.dataOffset, dataEl.dataOffset + entries) };
  return `its LUT Descriptor (0028,3002) gives ${entries} entries, its LUT Data (0028,3006) holds ${available} bytes`;
}
