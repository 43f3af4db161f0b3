// Pixels -> the model's S×S grayscale square, defined exactly so that the server (Node, after
// sharp decodes to raw pixels at the original size) and the web page (browser, after the canvas
// decodes to RGBA) produce the same bytes, hence the same probability.
//
// Everything is integer arithmetic carried in doubles (exact below 2^53), so no floating-point
// rounding can differ between engines. This module is bundled into the page: no Node imports.

/** Rec. 601 luma weights in thousandths, as PIL's convert('L') (the data set's RGB -> gray). */
const LUMA_R = 299;
const LUMA_G = 587;
const LUMA_B = 114;

export type PixelArray = Uint8Array | Uint8ClampedArray;

/**
 * Interleaved 8-bit samples to one gray byte per pixel.
 *
 * - channels 1: copied.
 * - channels 3 (RGB): floor((299 R + 587 G + 114 B + 500) / 1000), i.e. luma rounded half up;
 *   R = G = B = v gives exactly v.
 * - channels 2 (gray + alpha) and 4 (RGBA, not premultiplied): the gray (or luma) composited
 *   over black, floor((v a + 127) / 255): transparent areas carry no signal, and black is
 *   "no exposure".
 */
export function toGray(pixels: PixelArray, width: number, height: number, channels: number): Uint8Array {
  checkDims(width, height);
  if (channels !== 1 && channels !== 2 && channels !== 3 && channels !== 4) {
    throw new RangeError(`toGray: channels must be 1, 2, 3 or 4, got ${channels}`);
  }
  const n = width * height;
  if (pixels.length !== n * channels) {
    throw new RangeError(`toGray: ${pixels.length} samples for ${width}×${height}×${channels}`);
  }
  const out = new Uint8Array(n);
  if (channels === 1) {
    out.set(pixels);
    return out;
  }
  for (let i = 0, p = 0; i < n; i++, p += channels) {
    let v: number;
    if (channels >= 3)
      v = Math.floor((LUMA_R * pixels[p] + LUMA_G * pixels[p + 1] + LUMA_B * pixels[p + 2] + 500) / 1000);
    else v = pixels[p];
    if (channels === 2 || channels === 4) v = Math.floor((v * pixels[p + channels - 1] + 127) / 255);
    out[i] = v;
  }
  return out;
}

/**
 * One axis of a resize as integer weights: output i = (Σ weight_k · src[index_k]) / denominator.
 *
 * Downscaling (and equal size) averages the area each output pixel covers: in units of 1/dst
 * source pixels, output i spans [i·src, (i+1)·src) and source j spans [j·dst, (j+1)·dst), so
 * the overlaps are integers summing to src. Upscaling is bilinear with pixel centres aligned
 * (x = (i + ½)·src/dst − ½, clamped to the edge), in units of 1/(2·dst).
 */
interface AxisWeights {
  /** Per output pixel: the first source index and its weights (consecutive sources). */
  start: Int32Array;
  count: Int32Array;
  weights: Float64Array;
  /** Offset of each output pixel's weights in `weights`. */
  offset: Int32Array;
  denominator: number;
}

function axisWeights(src: number, dst: number): AxisWeights {
  const start = new Int32Array(dst);
  const count = new Int32Array(dst);
  const offset = new Int32Array(dst);
  const ws: number[] = [];
  if (src >= dst) {
    for (let i = 0; i < dst; i++) {
      const lo = i * src,
        hi = (i + 1) * src;
      const j0 = Math.floor(lo / dst),
        j1 = Math.ceil(hi / dst); // sources [j0, j1)
      start[i] = j0;
      count[i] = j1 - j0;
      offset[i] = ws.length;
      for (let j = j0; j < j1; j++) ws.push(Math.min(hi, (j + 1) * dst) - Math.max(lo, j * dst));
    }
    return { start, count, weights: Float64Array.from(ws), offset, denominator: src };
  }
  const den = 2 * dst;
  const maxNum = (src - 1) * den;
  for (let i = 0; i < dst; i++) {
    const num = Math.min(maxNum, Math.max(0, (2 * i + 1) * src - dst));
    const j0 = Math.floor(num / den);
    const frac = num - j0 * den;
    start[i] = j0;
    offset[i] = ws.length;
    if (frac === 0) {
      count[i] = 1;
      ws.push(den);
    } else {
      count[i] = 2;
      ws.push(den - frac, frac);
    }
  }
  return { start, count, weights: Float64Array.from(ws), offset, denominator: den };
}

/**
 * Squashes a width×height gray image to size×size (no crop, no padding), each axis on its own:
 * area average where it shrinks, bilinear where it grows. The result is the exact weighted sum
 * divided by the product of the two denominators, rounded half up.
 *
 * The axis along the long side is resized first, so the intermediate holds size × (short side)
 * sums: at most as many as input and output pixels together. Resizing the width first held
 * height × size sums, 3.8 GB for a 16×3,000,000 PNG of 124 KB (and a RangeError past 2^32 of them).
 * Both orders give the same bytes: every sum is an integer below 2^53, so exact in any order.
 */
export function resizeSquare(gray: PixelArray, width: number, height: number, size: number): Uint8Array {
  checkDims(width, height);
  if (!Number.isInteger(size) || size < 1 || size > 4096) {
    throw new RangeError(`resizeSquare: size must be an integer in 1..4096, got ${size}`);
  }
  if (gray.length !== width * height) {
    throw new RangeError(`resizeSquare: ${gray.length} samples for ${width}×${height}`);
  }
  const wx = axisWeights(width, size);
  const wy = axisWeights(height, size);
  // One rounding at the end: floor((2·sum + D) / (2·D)) is sum/D rounded half up.
  const d = wx.denominator * wy.denominator;
  const out = new Uint8Array(size * size);
  const round = (acc: number) => Math.min(255, Math.floor((2 * acc + d) / (2 * d)));

  if (height > width) {
    // Vertical pass: `size` rows of `width` unrounded (integer) sums, each a weighted sum of whole source rows.
    const rows = new Float64Array(size * width);
    for (let j = 0; j < size; j++) {
      const s = wy.start[j],
        c = wy.count[j],
        o = wy.offset[j],
        rowOut = j * width;
      for (let k = 0; k < c; k++) {
        const w = wy.weights[o + k],
          rowIn = (s + k) * width;
        for (let x = 0; x < width; x++) rows[rowOut + x] += w * gray[rowIn + x];
      }
    }
    // Horizontal pass along each of those rows.
    for (let j = 0; j < size; j++) {
      const rowIn = j * width;
      for (let i = 0; i < size; i++) {
        const s = wx.start[i],
          c = wx.count[i],
          o = wx.offset[i];
        let acc = 0;
        for (let k = 0; k < c; k++) acc += wx.weights[o + k] * rows[rowIn + s + k];
        out[j * size + i] = round(acc);
      }
    }
    return out;
  }

  // Horizontal pass: height rows of `size` unrounded (integer) sums.
  const rows = new Float64Array(height * size);
  for (let y = 0; y < height; y++) {
    const rowIn = y * width,
      rowOut = y * size;
    for (let i = 0; i < size; i++) {
      const s = wx.start[i],
        c = wx.count[i],
        o = wx.offset[i];
      let acc = 0;
      for (let k = 0; k < c; k++) acc += wx.weights[o + k] * gray[rowIn + s + k];
      rows[rowOut + i] = acc;
    }
  }
  // Vertical pass.
  for (let j = 0; j < size; j++) {
    const s = wy.start[j],
      c = wy.count[j],
      o = wy.offset[j];
    for (let i = 0; i < size; i++) {
      let acc = 0;
      for (let k = 0; k < c; k++) acc += wy.weights[o + k] * rows[(s + k) * size + i];
      out[j * size + i] = round(acc);
    }
  }
  return out;
}

/** toGray then resizeSquare: interleaved 8-bit pixels to the model's input square. */
export function preprocessPixels(
  pixels: PixelArray,
  width: number,
  height: number,
  channels: number,
  size: number,
): Uint8Array {
  return resizeSquare(toGray(pixels, width, height, channels), width, height, size);
}

function checkDims(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`invalid image dimensions ${width}×${height}`);
  }
}

/**
 * Per-image normalisation applied to the model's input squares (recorded in cxr.json as
 * `preprocessing.normalize`). 'equalize' is global histogram equalisation: it maps every monotonic
 * change of exposure, gamma, contrast or window to (nearly) the same image, which is the kind of
 * difference seen between sites and years of one archive. 'fov' normalises the field of view: it
 * crops the square to the body (cropToBody), so black borders, collimation bands and loose framing
 * reach the network as (nearly) the same film.
 */
export const NORMALIZE_MODES = ['none', 'equalize', 'fov'] as const;
export type NormalizeMode = (typeof NORMALIZE_MODES)[number];

/**
 * Normalises `n` concatenated size×size gray images in place and returns the same array.
 * Integer arithmetic only (identical in Node and the browser). Equalisation maps level v to
 * round(255 · (cdf(v) − cdf_min) / (N − cdf_min)); a one-level image is left as it is.
 */
export function normalizeImages(pixels: Uint8Array, n: number, size: number, mode: NormalizeMode = 'none'): Uint8Array {
  if (mode === 'none') return pixels;
  if (mode !== 'equalize' && mode !== 'fov')
    throw new RangeError(`unknown normalisation '${String(mode)}' (known: ${NORMALIZE_MODES.join(', ')})`);
  const per = size * size;
  if (pixels.length !== n * per) throw new RangeError(`normalizeImages: ${pixels.length} samples for ${n} × ${size}²`);
  if (mode === 'fov') {
    for (let k = 0; k < n; k++) pixels.set(cropToBody(pixels.subarray(k * per, (k + 1) * per), size), k * per);
    return pixels;
  }
  const hist = new Int32Array(256);
  const map = new Uint8Array(256);
  for (let k = 0; k < n; k++) {
    const img = pixels.subarray(k * per, (k + 1) * per);
    hist.fill(0);
    for (let i = 0; i < per; i++) hist[img[i]]++;
    let first = 0;
    while (hist[first] === 0) first++;
    const cdfMin = hist[first];
    const d = per - cdfMin;
    if (d === 0) continue;
    let cdf = 0;
    for (let v = 0; v < 256; v++) {
      cdf += hist[v];
      map[v] = v < first ? 0 : Math.floor((2 * 255 * (cdf - cdfMin) + d) / (2 * d));
    }
    for (let i = 0; i < per; i++) img[i] = map[img[i]];
  }
  return pixels;
}

// Field-of-view normalisation. Outside the body a film is dark: air, black borders, collimation
// bands. A row or column whose mean stays under a quarter of the brightest row's (column's) mean
// is outside the body; the square is cropped to the rows and columns between the first and last
// that are not, and resized back. Crops that would keep under half of either side are not made
// (a film that dark is for the image checks to flag, not for this step to zoom into).
const FOV_LEVEL = 0.25;
const FOV_MIN_KEEP = 0.5;

/** The body's rows [top, bottom) and columns [left, right) in a size×size gray square. */
export function bodyBox(img: Uint8Array, size: number): { top: number; bottom: number; left: number; right: number } {
  if (img.length !== size * size) throw new RangeError(`bodyBox: ${img.length} samples for ${size}²`);
  const rows = new Float64Array(size);
  const cols = new Float64Array(size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const v = img[y * size + x];
      rows[y] += v;
      cols[x] += v;
    }
  }
  const extent = (profile: Float64Array): [number, number] => {
    const level = FOV_LEVEL * Math.max(...profile);
    let a = 0;
    while (a < size && profile[a] < level) a++;
    let b = size;
    while (b > a && profile[b - 1] < level) b--;
    return b - a >= FOV_MIN_KEEP * size ? [a, b] : [0, size];
  };
  const [top, bottom] = extent(rows);
  const [left, right] = extent(cols);
  return { top, bottom, left, right };
}

/** The square cropped to its body box and resized back to size×size (a copy; unchanged when nothing is cropped). */
export function cropToBody(img: Uint8Array, size: number): Uint8Array {
  const { top, bottom, left, right } = bodyBox(img, size);
  const w = right - left;
  const h = bottom - top;
  if (w === size && h === size) return img.slice();
  const crop = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) crop.set(img.subarray((top + y) * size + left, (top + y) * size + right), y * w);
  return resizeSquare(crop, w, h, size);
}
