// Stored values to what a viewer shows: modality rescale, then the VOI LUT, else the window
// (LINEAR, LINEAR_EXACT, SIGMOID), else the full range or the values' min-max, as 0..255.
import type * as dicomParser from 'dicom-parser';
import { type Fail, type PixelFormat, REEXPORT } from './dicom_parse';

/** How stored values became display values. */
export type VoiMethod = 'voi-lut' | 'window' | 'full-range' | 'min-max';

/** Modality rescale, then the VOI transform, to 0..255 display values. */
export function toDisplay(
  values: Float32Array,
  ds: dicomParser.DataSet,
  pf: PixelFormat,
  fail: Fail,
): { gray: Uint8Array; voi: VoiMethod } {
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
  const gray = new Uint8Array(values.length);

  const lut = voiLut(ds, pf.signed, intercept < 0 || slope < 0);
  if (lut) {
    const last = lut.data.length - 1;
    const scale = 255 / (2 ** lut.bits - 1);
    for (let i = 0; i < values.length; i++) {
      const k = Math.min(last, Math.max(0, Math.round(values[i]) - lut.first));
      gray[i] = Math.min(255, Math.round(lut.data[k] * scale));
    }
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
function voiLut(
  ds: dicomParser.DataSet,
  signedPixels: boolean,
  rescaledNegative: boolean,
): { first: number; bits: number; data: ArrayLike<number> } | null {
  const item = ds.elements.x00283010?.items?.[0]?.dataSet;
  const dataEl = item?.elements.x00283006;
  const descriptor = item?.elements.x00283002;
  if (!item || !dataEl || !descriptor) return null;
  const entries = item.uint16('x00283002', 0) || 65536;
  const signed = signedPixels || descriptor.vr === 'SS' || (descriptor.vr === undefined && rescaledNegative);
  const first = signed ? (item.int16('x00283002', 1) ?? 0) : (item.uint16('x00283002', 1) ?? 0);
  const bits = item.uint16('x00283002', 2) ?? 16;
  if (!(bits >= 1 && bits <= 16)) return null;
  const available = Math.min(dataEl.length, item.byteArray.length - dataEl.dataOffset);
  if (available >= entries * 2) {
    const data = new Uint16Array(entries);
    for (let i = 0; i < entries; i++)
      data[i] = item.byteArrayParser.readUint16(item.byteArray, dataEl.dataOffset + 2 * i);
    return { first, bits, data };
  }
  // Some writers pack an 8-bit LUT one entry per byte.
  if (bits <= 8 && available >= entries)
    return { first, bits, data: item.byteArray.subarray(dataEl.dataOffset, dataEl.dataOffset + entries) };
  return null;
}
