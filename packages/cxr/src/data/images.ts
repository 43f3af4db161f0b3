// In-memory image sets: preprocessed grayscale pixels of one size, with labels and file names.
// This is what training, validation and evaluation iterate over.
import * as path from 'node:path';

export interface ImageSet {
  size: number;
  /** n * size * size bytes, image after image. */
  pixels: Uint8Array;
  labels: Uint8Array;
  files: string[];
  patients: string[];
}

export function subset(set: ImageSet, indices: readonly number[]): ImageSet {
  const per = set.size * set.size;
  const pixels = new Uint8Array(indices.length * per);
  indices.forEach((src, dst) => pixels.set(set.pixels.subarray(src * per, (src + 1) * per), dst * per));
  return {
    size: set.size,
    pixels,
    labels: Uint8Array.from(indices, (i) => set.labels[i]),
    files: indices.map((i) => set.files[i]),
    patients: indices.map((i) => set.patients[i]),
  };
}

export function count(set: ImageSet): { n: number; normal: number; pneumonia: number } {
  let pneumonia = 0;
  for (const l of set.labels) pneumonia += l;
  return { n: set.labels.length, normal: set.labels.length - pneumonia, pneumonia };
}

/** The pixels of the images at `indices`, in that order (one training batch). */
export function gatherPixels(set: ImageSet, indices: readonly number[]): Uint8Array {
  const per = set.size * set.size;
  const buf = new Uint8Array(indices.length * per);
  indices.forEach((src, dst) => buf.set(set.pixels.subarray(src * per, (src + 1) * per), dst * per));
  return buf;
}

/**
 * Film paths relative to the data root they were read from, '/'-separated ('train/NORMAL/IM-0119-0001.jpeg'):
 * a predictions file then names its films alike on every machine and does not carry this machine's folders.
 * A path outside the root (never the case for loaded sets) is kept as given.
 */
export function filesRelativeTo(root: string, files: readonly string[]): string[] {
  const base = path.resolve(root);
  return files.map((f) => {
    const rel = path.relative(base, path.resolve(f));
    return rel.startsWith('..') || path.isAbsolute(rel) ? f : rel.split(path.sep).join('/');
  });
}
