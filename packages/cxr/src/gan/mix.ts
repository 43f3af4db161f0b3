// Generated images as extra classifier training data. They are appended to the training set
// only, after the patient split, so validation (and with it checkpoint choice, calibration and
// thresholds) stays purely real. They are marked by their names: file and patient 'gan:<CLASS>/<n>'.
import { resizeSquare } from '../data/preprocess';
import { classCounts } from '../data/balance';
import type { ImageSet } from '../data/images';
import { CLASS_NAMES } from './config';
import { generate, loadGenerator } from './generator_io';

/** N per class, or 'balance': as many of the minority class as it lacks, none of the majority. */
export type GanImages = number | 'balance';

/** File names of generated images in an ImageSet start with this (they have no file). */
export const SYNTHETIC_PREFIX = 'gan:';

export function ganCounts(spec: GanImages, labels: ArrayLike<number>): [number, number] {
  if (spec === 'balance') {
    const [n0, n1] = classCounts(labels);
    return [Math.max(0, n1 - n0), Math.max(0, n0 - n1)];
  }
  if (!Number.isInteger(spec) || spec < 0)
    throw new RangeError(`GAN images per class must be a whole number >= 0, got ${spec}`);
  return [spec, spec];
}

/** Upsampled (or shrunk) to `size` with the same squash/resize the classifier's images go through. */
export async function syntheticSet(
  ganDir: string,
  counts: [number, number],
  size: number,
  seed: number,
): Promise<{ set: ImageSet; digest: string; ganSize: number }> {
  const { model, meta, digest } = await loadGenerator(ganDir);
  try {
    const per = size * size;
    const total = counts[0] + counts[1];
    const pixels = new Uint8Array(total * per);
    const labels = new Uint8Array(total);
    const files: string[] = [];
    let at = 0;
    for (const cls of [0, 1] as const) {
      // Each class its own noise stream: a NORMAL and a PNEUMONIA image never share a latent.
      const raw = generate(model, meta.zDim, Array(counts[cls]).fill(cls), seed, ['mix', CLASS_NAMES[cls]]);
      const s = meta.size;
      for (let i = 0; i < counts[cls]; i++, at++) {
        const tile = raw.subarray(i * s * s, (i + 1) * s * s);
        pixels.set(s === size ? tile : resizeSquare(tile, s, s, size), at * per);
        labels[at] = cls;
        files.push(`${SYNTHETIC_PREFIX}${CLASS_NAMES[cls]}/${String(i + 1).padStart(5, '0')}`);
      }
    }
    return { set: { size, pixels, labels, files, patients: [...files] }, digest, ganSize: meta.size };
  } finally {
    model.dispose();
  }
}

export function concatSets(a: ImageSet, b: ImageSet): ImageSet {
  if (a.size !== b.size) throw new Error(`cannot join ${a.size}px and ${b.size}px image sets`);
  const pixels = new Uint8Array(a.pixels.length + b.pixels.length);
  pixels.set(a.pixels);
  pixels.set(b.pixels, a.pixels.length);
  const labels = new Uint8Array(a.labels.length + b.labels.length);
  labels.set(a.labels);
  labels.set(b.labels, a.labels.length);
  return { size: a.size, pixels, labels, files: [...a.files, ...b.files], patients: [...a.patients, ...b.patients] };
}

export interface GanMixRecipe {
  ganImages?: GanImages;
  ganModel?: string;
  seed: number;
}

/**
 * The training set with the recipe's generated images appended (unchanged when it asks for
 * none), and what to record about them in the model's metadata.
 */
export async function withGanImages(
  train: ImageSet,
  r: GanMixRecipe,
  log: (line: string) => void,
): Promise<{ train: ImageSet; info: Record<string, unknown> }> {
  if (r.ganImages === undefined || r.ganImages === 0) {
    if (r.ganModel) log(`a GAN model (${r.ganModel}) but no --gan-images: no generated images added`);
    return { train, info: {} };
  }
  if (!r.ganModel)
    throw new Error(`the recipe adds GAN images (${r.ganImages}): pass the generator with --gan-model DIR`);
  const counts = ganCounts(r.ganImages, train.labels);
  const { set, digest, ganSize } = await syntheticSet(r.ganModel, counts, train.size, r.seed);
  log(
    `adding ${counts[0]} NORMAL and ${counts[1]} PNEUMONIA GAN images (${ganSize}px -> ${train.size}px) ` +
      'to the training set only',
  );
  return {
    train: concatSets(train, set),
    info: {
      synthetic: {
        normal: counts[0],
        pneumonia: counts[1],
        perClass: r.ganImages,
        generator: r.ganModel,
        generatorSha256: digest,
        ganSize,
      },
    },
  };
}
