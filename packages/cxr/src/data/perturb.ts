// Nuisance changes of a radiograph that should not change the diagnosis: exposure, windowing,
// blur and noise, re-encoding, geometry, borders and burned-in annotations. Pure functions on
// square 8-bit gray images (the model input: size × size, row-major, 0 = black); each returns a
// new image and leaves its input alone. Randomness (noise, where a marker goes) comes from a
// caller's seeded Rng, so a seed gives the same pixels every time.
//
// The robustness benchmark (`cxr robustness`) applies them at graded strengths through
// perturb_catalog.ts; training augmentation can draw from the same functions.
import sharp from 'sharp';
import { resizeSquare } from './preprocess';
import type { Rng } from './random';

export interface SquareImage {
  /** size × size gray levels, row-major. */
  pixels: Uint8Array;
  size: number;
}

function check(img: SquareImage): void {
  if (!Number.isInteger(img.size) || img.size < 1 || img.pixels.length !== img.size * img.size) {
    throw new RangeError(
      `perturb: expected a square image of ${img.size}×${img.size}, got ${img.pixels.length} pixels`,
    );
  }
}

function requireRange(name: string, v: number, lo: number, hi: number): void {
  if (!(v >= lo && v <= hi)) throw new RangeError(`perturb: ${name} must lie in [${lo}, ${hi}], got ${v}`);
}

const clamp8 = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

/** A gray-level mapping applied through a 256-entry table (exact, and fast). */
function mapLevels(img: SquareImage, f: (v: number) => number): SquareImage {
  check(img);
  const lut = new Uint8Array(256);
  for (let v = 0; v < 256; v++) lut[v] = clamp8(f(v));
  const out = new Uint8Array(img.pixels.length);
  for (let i = 0; i < out.length; i++) out[i] = lut[img.pixels[i]];
  return { pixels: out, size: img.size };
}

// ---------------------------------------------------------------- intensity

/** Exposure: adds `delta` × 255 to every pixel (delta in [-1, 1]; positive is brighter), clipped. */
export function adjustExposure(img: SquareImage, delta: number): SquareImage {
  requireRange('delta', delta, -1, 1);
  return mapLevels(img, (v) => v + delta * 255);
}

/** Gamma: 255 · (v / 255)^gamma. Above 1 darkens the mid-tones; 0 and 255 stay where they are. */
export function applyGamma(img: SquareImage, gamma: number): SquareImage {
  requireRange('gamma', gamma, 0.05, 20);
  return mapLevels(img, (v) => 255 * (v / 255) ** gamma);
}

/** Contrast: scales the distance of every pixel from the image's mean by `factor` (1 = unchanged). */
export function scaleContrast(img: SquareImage, factor: number): SquareImage {
  requireRange('factor', factor, 0, 10);
  check(img);
  let sum = 0;
  for (const v of img.pixels) sum += v;
  const mean = sum / img.pixels.length;
  return mapLevels(img, (v) => mean + (v - mean) * factor);
}

/**
 * Window: keeps the gray levels [lo, hi] and stretches them to [0, 255]; darker pixels become
 * black and brighter ones white (a display window narrower than the one the model was trained on).
 */
export function applyWindow(img: SquareImage, lo: number, hi: number): SquareImage {
  requireRange('lo', lo, 0, 254);
  requireRange('hi', hi, lo + 1, 255);
  return mapLevels(img, (v) => ((v - lo) * 255) / (hi - lo));
}

/**
 * An inverted film (white bones on black read as black on white, e.g. a MONOCHROME1 DICOM shown
 * without its inversion): 127.5 − contrast · (v − 127.5). Contrast 1 is the exact negative.
 */
export function invertFilm(img: SquareImage, contrast = 1): SquareImage {
  requireRange('contrast', contrast, 0, 1);
  return mapLevels(img, (v) => 127.5 - contrast * (v - 127.5));
}

// ---------------------------------------------------------------- filters

function gaussianKernel(sigma: number): Float64Array {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const k = new Float64Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  return k;
}

/** Separable Gaussian filter with replicated edges, unrounded. */
function blurFloat(img: SquareImage, sigma: number): Float64Array {
  const { size: n, pixels } = img;
  const k = gaussianKernel(sigma);
  const r = (k.length - 1) / 2;
  const edge = (i: number) => (i < 0 ? 0 : i >= n ? n - 1 : i);
  const rows = new Float64Array(n * n);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      let acc = 0;
      for (let j = -r; j <= r; j++) acc += k[j + r] * pixels[y * n + edge(x + j)];
      rows[y * n + x] = acc;
    }
  }
  const out = new Float64Array(n * n);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      let acc = 0;
      for (let j = -r; j <= r; j++) acc += k[j + r] * rows[edge(y + j) * n + x];
      out[y * n + x] = acc;
    }
  }
  return out;
}

/** Gaussian blur with standard deviation `sigma` pixels (0 = unchanged). */
export function gaussianBlur(img: SquareImage, sigma: number): SquareImage {
  requireRange('sigma', sigma, 0, 100);
  check(img);
  if (sigma === 0) return { pixels: img.pixels.slice(), size: img.size };
  const f = blurFloat(img, sigma);
  return { pixels: Uint8Array.from(f, clamp8), size: img.size };
}

/** Unsharp mask: v + amount · (v − blur(v, sigma)), as scanner and PACS "edge enhancement" does. */
export function unsharpMask(img: SquareImage, amount: number, sigma = 1): SquareImage {
  requireRange('amount', amount, 0, 10);
  requireRange('sigma', sigma, 0.1, 100);
  check(img);
  const f = blurFloat(img, sigma);
  return { pixels: Uint8Array.from(img.pixels, (v, i) => clamp8(v + amount * (v - f[i]))), size: img.size };
}

/** Standard normal draws from a uniform Rng (Box–Muller). */
function normal(rand: Rng): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** Additive Gaussian noise of `sigma` gray levels, independent per pixel, clipped to [0, 255]. */
export function addGaussianNoise(img: SquareImage, sigma: number, rand: Rng): SquareImage {
  requireRange('sigma', sigma, 0, 255);
  check(img);
  return { pixels: Uint8Array.from(img.pixels, (v) => clamp8(v + sigma * normal(rand))), size: img.size };
}

/** Encodes as a baseline JPEG at `quality` (1–100) and decodes again: block artefacts and lost detail. */
export async function jpegRecode(img: SquareImage, quality: number): Promise<SquareImage> {
  requireRange('quality', quality, 1, 100);
  check(img);
  const raw = { raw: { width: img.size, height: img.size, channels: 1 as const } };
  const jpeg = await sharp(img.pixels, raw)
    .jpeg({ quality: Math.round(quality), chromaSubsampling: '4:4:4' })
    .toBuffer();
  const { data, info } = await sharp(jpeg).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  if (info.width !== img.size || info.height !== img.size || info.channels !== 1) {
    throw new Error(
      `jpegRecode: decoded ${info.width}×${info.height}×${info.channels}, expected ${img.size}×${img.size}×1`,
    );
  }
  return { pixels: new Uint8Array(data.buffer, data.byteOffset, data.length).slice(), size: img.size };
}

/**
 * Down- then up-sampling: the image at `factor` × its side (area average), then back to the
 * full side (bilinear), as a low-resolution copy of a film would look.
 */
export function downUpSample(img: SquareImage, factor: number): SquareImage {
  requireRange('factor', factor, 0.01, 1);
  check(img);
  const small = Math.max(1, Math.round(img.size * factor));
  if (small === img.size) return { pixels: img.pixels.slice(), size: img.size };
  const down = resizeSquare(img.pixels, img.size, img.size, small);
  return { pixels: resizeSquare(down, small, small, img.size), size: img.size };
}

// ---------------------------------------------------------------- geometry

/**
 * Resamples with a map from each OUTPUT pixel to the INPUT position it shows (bilinear).
 * Positions outside the image take the nearest edge pixel, or `fill` when it is a gray level.
 */
function resample(
  img: SquareImage,
  source: (x: number, y: number) => [number, number],
  fill: number | 'edge',
): SquareImage {
  check(img);
  const { size: n, pixels } = img;
  const out = new Uint8Array(n * n);
  const at = (x: number, y: number) => pixels[Math.min(n - 1, Math.max(0, y)) * n + Math.min(n - 1, Math.max(0, x))];
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const [sx, sy] = source(x, y);
      if (fill !== 'edge' && (sx < -0.5 || sy < -0.5 || sx > n - 0.5 || sy > n - 0.5)) {
        out[y * n + x] = fill;
        continue;
      }
      const x0 = Math.floor(sx),
        y0 = Math.floor(sy);
      const fx = sx - x0,
        fy = sy - y0;
      const top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx;
      const bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx;
      out[y * n + x] = clamp8(top * (1 - fy) + bottom * fy);
    }
  }
  return { pixels: out, size: n };
}

/** Rotation by `degrees` (positive = counter-clockwise on screen) about the centre; corners become black. */
export function rotate(img: SquareImage, degrees: number): SquareImage {
  requireRange('degrees', degrees, -180, 180);
  const c = (img.size - 1) / 2;
  const a = (degrees * Math.PI) / 180;
  const cos = Math.cos(a),
    sin = Math.sin(a);
  // The inverse rotation maps output to input; y points down on screen.
  return resample(img, (x, y) => [c + cos * (x - c) - sin * (y - c), c + sin * (x - c) + cos * (y - c)], 0);
}

/**
 * Aspect change: the content is scaled horizontally by `factor` about the centre (below 1 the
 * chest looks narrower, as a film of another aspect ratio does after the squash to a square);
 * the sides are filled with the edge pixels.
 */
export function squashAspect(img: SquareImage, factor: number): SquareImage {
  requireRange('factor', factor, 0.2, 5);
  const c = (img.size - 1) / 2;
  return resample(img, (x, y) => [c + (x - c) / factor, y], 'edge');
}

/** Crop of the centre 1/zoom of the side, stretched back to the full side (zoom ≥ 1). */
export function zoomCrop(img: SquareImage, zoom: number): SquareImage {
  requireRange('zoom', zoom, 1, 10);
  const c = (img.size - 1) / 2;
  return resample(img, (x, y) => [c + (x - c) / zoom, c + (y - c) / zoom], 'edge');
}

/** Padding: the whole image shrunk into the centre, with a black border `fraction` of the side on each edge. */
export function padBorder(img: SquareImage, fraction: number): SquareImage {
  requireRange('fraction', fraction, 0, 0.45);
  const c = (img.size - 1) / 2;
  const scale = 1 - 2 * fraction;
  return resample(img, (x, y) => [c + (x - c) / scale, c + (y - c) / scale], 0);
}

/**
 * Collimation: black bands over the edges (the film outside the collimated beam), `fraction` of
 * the side on each of the four edges. The anatomy does not move, unlike padBorder.
 */
export function collimate(img: SquareImage, fraction: number): SquareImage {
  requireRange('fraction', fraction, 0, 0.45);
  check(img);
  const n = img.size;
  const b = Math.round(fraction * n);
  const out = img.pixels.slice();
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      if (x < b || y < b || x >= n - b || y >= n - b) out[y * n + x] = 0;
    }
  }
  return { pixels: out, size: n };
}

// ---------------------------------------------------------------- burned-in annotations

/** Sets the pixels of a `rows` bitmap (strings of '#' and '.') at (x, y), each bit a cell × cell block. */
function stamp(
  out: Uint8Array,
  n: number,
  rows: readonly string[],
  x: number,
  y: number,
  cell: number,
  value: number,
): void {
  rows.forEach((row, j) => {
    for (let i = 0; i < row.length; i++) {
      if (row[i] !== '#') continue;
      for (let dy = 0; dy < cell; dy++) {
        for (let dx = 0; dx < cell; dx++) {
          const px = x + i * cell + dx,
            py = y + j * cell + dy;
          if (px >= 0 && py >= 0 && px < n && py < n) out[py * n + px] = value;
        }
      }
    }
  });
}

/** The two letters of a laterality marker, 5 × 7 cells. */
const LETTERS: Record<'L' | 'R', readonly string[]> = {
  L: ['#....', '#....', '#....', '#....', '#....', '#....', '#####'],
  R: ['####.', '#...#', '#...#', '####.', '#.#..', '#..#.', '#...#'],
};

export interface MarkerOptions {
  letter: 'L' | 'R';
  /** Height of the marker plate as a fraction of the side. */
  height: number;
  /** Which top corner the marker sits in. */
  corner: 'left' | 'right';
}

/**
 * A laterality marker: a bright plate with the letter cut out in black, in a top corner, as the
 * lead "L"/"R" markers on films look.
 */
export function sideMarker(img: SquareImage, opts: MarkerOptions): SquareImage {
  requireRange('height', opts.height, 0, 0.5);
  check(img);
  const n = img.size;
  const out = img.pixels.slice();
  const cell = Math.max(1, Math.round((opts.height * n) / 9)); // 7 letter rows + a 1-cell margin above and below
  const w = 7 * cell,
    h = 9 * cell;
  const x0 = opts.corner === 'left' ? Math.round(0.04 * n) : n - Math.round(0.04 * n) - w;
  const y0 = Math.round(0.04 * n);
  for (let y = y0; y < y0 + h && y < n; y++)
    for (let x = Math.max(0, x0); x < x0 + w && x < n; x++) out[y * n + x] = 250;
  stamp(out, n, LETTERS[opts.letter], x0 + cell, y0 + cell, cell, 0);
  return { pixels: out, size: n };
}

/**
 * Burned-in text: `lines` lines of text-like glyphs (random 3 × 5 bitmaps, no font needed) in
 * bright pixels from the top-left corner, as patient names and dates printed on a film look.
 * `height` is one line's glyph height as a fraction of the side.
 */
export function burnText(img: SquareImage, lines: number, height: number, rand: Rng): SquareImage {
  requireRange('lines', lines, 0, 20);
  requireRange('height', height, 0, 0.2);
  check(img);
  const n = img.size;
  const out = img.pixels.slice();
  const cell = Math.max(1, Math.round((height * n) / 5));
  const margin = Math.round(0.03 * n);
  for (let l = 0; l < Math.round(lines); l++) {
    const y = margin + l * 7 * cell;
    const chars = 6 + Math.floor(rand() * 6);
    for (let k = 0; k < chars; k++) {
      if (rand() < 0.15) continue; // a space between words
      const glyph = Array.from({ length: 5 }, () =>
        Array.from({ length: 3 }, () => (rand() < 0.55 ? '#' : '.')).join(''),
      );
      stamp(out, n, glyph, margin + k * 4 * cell, y, cell, 245);
    }
  }
  return { pixels: out, size: n };
}
