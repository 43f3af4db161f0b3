// A corpus of images that are not chest X-rays, made by our own code (no downloaded photos), for
// measuring how often the not-a-chest-X-ray gate refuses them (`cxr ood evaluate`, the OOD tests).
// Deterministic: image i of a kind is a pure function of (seed, kind, i). Sizes and aspect ratios
// vary as uploads do; the files are JPEG or PNG bytes, so they go through the product's own decoding.
import sharp from 'sharp';
import { createRng, type Rng, type Seed, uniform } from '../data/random';
import { documentPage, objects, pattern, scene, screenshot } from './ood_corpus_svg';

/** The kinds drawn here; inverted films are made from real films (see `invertedFilms`). */
export const DRAWN_KINDS = [
  'photo',
  'photo-gray',
  'object',
  'document',
  'screenshot',
  'pattern',
  'blank-noise',
] as const;
export type DrawnKind = (typeof DRAWN_KINDS)[number];
export const INVERTED_KIND = 'inverted-film';
export type CorpusKind = DrawnKind | typeof INVERTED_KIND;

export interface CorpusImage {
  kind: CorpusKind;
  name: string;
  bytes: Buffer;
}

export const DEFAULT_PER_KIND = 32;

function sizeOf(rand: Rng): { w: number; h: number } {
  const long = Math.round(uniform(rand, 320, 900));
  const aspect = uniform(rand, 0.6, 1.0);
  const short = Math.round(long * aspect);
  return rand() < 0.5 ? { w: long, h: short } : { w: short, h: long };
}

/** Blank, nearly blank, white noise, colour noise, salt-and-pepper: the degenerate uploads. */
function blankOrNoise(rand: Rng, w: number, h: number): { raw: Uint8Array; channels: 1 | 3 } {
  const kind = Math.floor(rand() * 5);
  const channels = kind === 3 ? 3 : 1;
  const raw = new Uint8Array(w * h * channels);
  const level = Math.floor(uniform(rand, 0, 256));
  for (let i = 0; i < raw.length; i++) {
    if (kind === 0) raw[i] = level;
    else if (kind === 1) raw[i] = Math.max(0, Math.min(255, level + Math.round(uniform(rand, -3, 3))));
    else if (kind === 2 || kind === 3) raw[i] = Math.floor(rand() * 256);
    else raw[i] = rand() < 0.1 ? (rand() < 0.5 ? 0 : 255) : level;
  }
  return { raw, channels };
}

const DRAW: Record<Exclude<DrawnKind, 'blank-noise' | 'photo-gray'>, (rand: Rng, w: number, h: number) => string> = {
  photo: scene,
  object: objects,
  document: documentPage,
  screenshot,
  pattern,
};

/** Image `index` of `kind`, as JPEG (even index) or PNG (odd) bytes. */
export async function drawNonXray(kind: DrawnKind, index: number, seed: Seed = 1): Promise<CorpusImage> {
  const rand = createRng(seed, 'ood-corpus', kind, index);
  const { w, h } = sizeOf(rand);
  let img: sharp.Sharp;
  if (kind === 'blank-noise') {
    const { raw, channels } = blankOrNoise(rand, w, h);
    img = sharp(raw, { raw: { width: w, height: h, channels } });
  } else {
    const svg = (kind === 'photo-gray' ? scene : DRAW[kind])(rand, w, h);
    img = sharp(Buffer.from(svg)).flatten({ background: '#ffffff' });
    if (kind === 'photo-gray') img = img.grayscale();
  }
  const jpeg = index % 2 === 0;
  const bytes = await (jpeg ? img.jpeg({ quality: 88 }) : img.png()).toBuffer();
  return { kind, name: `${kind}-${String(index).padStart(3, '0')}.${jpeg ? 'jpg' : 'png'}`, bytes };
}

/** `perKind` images of each drawn kind (or of the kinds asked for). */
export async function drawNonXrays(
  perKind = DEFAULT_PER_KIND,
  seed: Seed = 1,
  kinds: readonly DrawnKind[] = DRAWN_KINDS,
): Promise<CorpusImage[]> {
  const out: CorpusImage[] = [];
  for (const kind of kinds) for (let i = 0; i < perKind; i++) out.push(await drawNonXray(kind, i, seed));
  return out;
}

/** Negatives of film squares (n size×size back to back): what a MONOCHROME1 film shown raw looks like. */
export function invertedFilms(pixels: Uint8Array): Uint8Array {
  const out = new Uint8Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = 255 - pixels[i];
  return out;
}
