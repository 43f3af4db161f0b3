// The nuisance changes by name, each with one strength knob in [0, 1]: 0 is the untouched image,
// 1 the strongest version the robustness benchmark tries. Sizes (blur radius, border width...)
// scale with the image side, so a strength means the same at 64 px and at 224 px.
import { createRng, type Rng, type Seed } from './random';
import {
  addGaussianNoise,
  adjustExposure,
  applyGamma,
  applyWindow,
  burnText,
  collimate,
  downUpSample,
  gaussianBlur,
  invertFilm,
  jpegRecode,
  padBorder,
  rotate,
  scaleContrast,
  sideMarker,
  squashAspect,
  type SquareImage,
  unsharpMask,
  zoomCrop,
} from './perturb';

export interface Change {
  name: string;
  /** What the change imitates, for reports. */
  description: string;
  /** The underlying parameter at a strength, in words (e.g. "gamma 1.50"). */
  parameter(strength: number, size: number): string;
  apply(img: SquareImage, strength: number, rand: Rng): SquareImage | Promise<SquareImage>;
}

const px = (fraction: number, size: number) => fraction * size;
const f2 = (x: number) => x.toFixed(2);
const sharpenSigma = (size: number) => Math.max(0.5, px(1 / 160, size));

export const CHANGES: readonly Change[] = [
  {
    name: 'exposure-up',
    description: 'brighter film (over-exposure or a brighter display)',
    parameter: (s) => `+${Math.round(0.25 * s * 255)} gray levels`,
    apply: (img, s) => adjustExposure(img, 0.25 * s),
  },
  {
    name: 'exposure-down',
    description: 'darker film (under-exposure)',
    parameter: (s) => `−${Math.round(0.25 * s * 255)} gray levels`,
    apply: (img, s) => adjustExposure(img, -0.25 * s),
  },
  {
    name: 'gamma-up',
    description: 'darker mid-tones (gamma above 1; black and white kept)',
    parameter: (s) => `gamma ${f2(1 + s)}`,
    apply: (img, s) => applyGamma(img, 1 + s),
  },
  {
    name: 'gamma-down',
    description: 'brighter mid-tones (gamma below 1; black and white kept)',
    parameter: (s) => `gamma ${f2(1 / (1 + s))}`,
    apply: (img, s) => applyGamma(img, 1 / (1 + s)),
  },
  {
    name: 'contrast-down',
    description: 'flatter film (contrast reduced around the mean)',
    parameter: (s) => `contrast × ${f2(1 - 0.6 * s)}`,
    apply: (img, s) => scaleContrast(img, 1 - 0.6 * s),
  },
  {
    name: 'contrast-up',
    description: 'harsher film (contrast raised around the mean)',
    parameter: (s) => `contrast × ${f2(1 + 0.8 * s)}`,
    apply: (img, s) => scaleContrast(img, 1 + 0.8 * s),
  },
  {
    name: 'window',
    description: 'a narrower display window, clipped and stretched',
    parameter: (s) => `levels ${Math.round(64 * s)}–${255 - Math.round(64 * s)}`,
    apply: (img, s) => applyWindow(img, Math.round(64 * s), 255 - Math.round(64 * s)),
  },
  {
    name: 'blur',
    description: 'Gaussian blur (a soft detector or motion)',
    parameter: (s, n) => `σ ${f2(px(s / 80, n))} px`,
    apply: (img, s) => gaussianBlur(img, px(s / 80, img.size)),
  },
  {
    name: 'sharpen',
    description: 'unsharp mask (vendor edge enhancement)',
    // The σ applied, floored at 0.5 px (under 80 px the scaled one is less): the page said 'σ 0.40 px' at 64 px.
    parameter: (s, n) => `amount ${f2(2 * s)}, σ ${f2(sharpenSigma(n))} px`,
    apply: (img, s) => unsharpMask(img, 2 * s, sharpenSigma(img.size)),
  },
  {
    name: 'noise',
    description: 'Gaussian pixel noise (quantum noise at a low dose)',
    parameter: (s) => `σ ${(20 * s).toFixed(1)} gray levels`,
    apply: (img, s, rand) => addGaussianNoise(img, 20 * s, rand),
  },
  {
    name: 'jpeg',
    description: 'JPEG re-encoding at a low quality',
    parameter: (s) => `quality ${jpegQuality(s)}`,
    apply: (img, s) => (s === 0 ? img : jpegRecode(img, jpegQuality(s))),
  },
  {
    name: 'resample',
    description: 'down- then up-sampling (a low-resolution copy)',
    parameter: (s, n) => `via ${Math.max(1, Math.round(n * (1 - 0.75 * s)))} px`,
    apply: (img, s) => downUpSample(img, 1 - 0.75 * s),
  },
  {
    name: 'aspect',
    description: 'aspect squash (a film of another aspect ratio, squashed to a square)',
    parameter: (s) => `width × ${f2(1 - 0.3 * s)}`,
    apply: (img, s) => squashAspect(img, 1 - 0.3 * s),
  },
  {
    name: 'zoom',
    description: 'crop of the centre, enlarged (tighter framing)',
    parameter: (s) => `zoom × ${f2(1 + 0.3 * s)}`,
    apply: (img, s) => zoomCrop(img, 1 + 0.3 * s),
  },
  {
    name: 'padding',
    description: 'the film shrunk inside a black border (looser framing, a scanned print)',
    parameter: (s) => `${Math.round(100 * 0.15 * s)}% border per side`,
    apply: (img, s) => padBorder(img, 0.15 * s),
  },
  {
    name: 'collimation',
    description: 'black collimation bands over the edges (anatomy unmoved)',
    parameter: (s) => `${Math.round(100 * 0.12 * s)}% band per side`,
    apply: (img, s) => collimate(img, 0.12 * s),
  },
  {
    name: 'text',
    description: 'burned-in text lines (names, dates) in the top-left corner',
    parameter: (s) => `${Math.ceil(3 * s)} line(s), glyphs ${f2(100 * (0.02 + 0.02 * s))}% of the side`,
    apply: (img, s, rand) => (s === 0 ? img : burnText(img, Math.ceil(3 * s), 0.02 + 0.02 * s, rand)),
  },
  {
    name: 'marker',
    description: 'an "L" or "R" laterality marker plate in a top corner',
    parameter: (s) => `plate ${Math.round(100 * (0.04 + 0.08 * s))}% of the side`,
    apply: (img, s, rand) =>
      s === 0
        ? img
        : sideMarker(img, {
            letter: rand() < 0.5 ? 'L' : 'R',
            corner: rand() < 0.5 ? 'left' : 'right',
            height: 0.04 + 0.08 * s,
          }),
  },
  {
    name: 'rotation',
    description: 'a small rotation (the patient or the film set askew); black corners',
    parameter: (s) => `±${(12 * s).toFixed(0)}°`,
    apply: (img, s, rand) => rotate(img, (rand() < 0.5 ? -1 : 1) * 12 * s),
  },
  {
    name: 'invert',
    description: 'an inverted film (negative), at a contrast equal to the strength',
    parameter: (s) => (s === 0 ? 'none' : `negative, contrast ${f2(s)}`),
    apply: (img, s) => (s === 0 ? img : invertFilm(img, s)),
  },
];

function jpegQuality(strength: number): number {
  return Math.max(1, Math.round(50 - 45 * strength));
}

export const CHANGE_NAMES = CHANGES.map((c) => c.name);

export function changeByName(name: string): Change {
  const c = CHANGES.find((x) => x.name === name);
  if (!c) throw new RangeError(`unknown change '${name}' (known: ${CHANGE_NAMES.join(', ')})`);
  return c;
}

/**
 * Applies change `name` at `strength` to one image. The random draws come from a stream of its
 * own per (seed, change, strength, image), so adding a change or an image does not alter the others.
 */
export async function perturbAt(
  name: string,
  img: SquareImage,
  strength: number,
  seed: Seed,
  image: number | string = 0,
): Promise<SquareImage> {
  if (!(strength >= 0 && strength <= 1)) throw new RangeError(`strength must lie in [0, 1], got ${strength}`);
  const c = changeByName(name);
  return c.apply(img, strength, createRng(seed, 'perturb', name, strength, image));
}

/**
 * Every image of a set (n size×size squares back to back) through change `name` at `strength`, into a
 * new array; image i draws from its own stream keyed by ids[i], as perturbAt does.
 */
export async function perturbImages(
  name: string,
  pixels: Uint8Array,
  ids: readonly string[],
  size: number,
  strength: number,
  seed: Seed,
): Promise<Uint8Array> {
  const per = size * size;
  const out = new Uint8Array(pixels.length);
  for (let i = 0; i < ids.length; i++) {
    const img = { pixels: pixels.subarray(i * per, (i + 1) * per), size };
    out.set((await perturbAt(name, img, strength, seed, ids[i])).pixels, i * per);
  }
  return out;
}
