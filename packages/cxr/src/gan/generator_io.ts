// A trained GAN's exported generator: <dir>/generator/ (TF.js Layers model) and <dir>/gan.json,
// which says how to drive it. gan.json is written last, so a folder with one has its weights.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { fileLoader, modelDigest, saveLayersModel } from '../models/io';
import { writeDirAtomic } from '../models/dir_swap';
import { CLASS_NAMES, GanConfig } from './config';
import { noiseTensor, oneHot, toPixels } from './noise';
import type { Seed } from '../data/random';
import { writeFileAtomic } from '../atomic_write';

export const GAN_FORMAT = 'cxr-gan/1';

export const GanMeta = z.object({
  format: z.literal(GAN_FORMAT),
  size: z.number().int().positive(),
  zDim: z.number().int().positive(),
  classNames: z.tuple([z.literal(CLASS_NAMES[0]), z.literal(CLASS_NAMES[1])]),
  epochs: z.number().int().min(0),
  config: GanConfig,
  data: z.record(z.string(), z.unknown()).default({}),
  createdAt: z.string(),
});
export type GanMeta = z.infer<typeof GanMeta>;

export async function exportGenerator(dir: string, g: tfl.LayersModel, meta: GanMeta): Promise<void> {
  await writeDirAtomic(path.join(dir, 'generator'), (tmp) => saveLayersModel(g, tmp));
  writeFileAtomic(path.join(dir, 'gan.json'), JSON.stringify(meta, null, 2) + '\n');
}

export function readGanMeta(dir: string): GanMeta {
  const p = path.join(dir, 'gan.json');
  if (!fs.existsSync(p)) throw new Error(`${dir}: no gan.json (not a trained GAN folder; run 'cxr gan train' first)`);
  const parsed = GanMeta.safeParse(JSON.parse(fs.readFileSync(p, 'utf8')));
  if (!parsed.success)
    throw new Error(`${p}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

export interface LoadedGenerator {
  model: tfl.LayersModel;
  meta: GanMeta;
  /** sha256 of the generator's files and gan.json: which generator made a training set's images. */
  digest: string;
}

export async function loadGenerator(dir: string): Promise<LoadedGenerator> {
  const meta = readGanMeta(dir);
  const model = await tfl.loadLayersModel(fileLoader(path.join(dir, 'generator')));
  const [, s, s2, ch] = model.outputs[0].shape;
  if (s !== meta.size || s2 !== meta.size || ch !== 1)
    throw new Error(`${dir}: generator makes ${s}x${s2}x${ch}, gan.json says ${meta.size}px gray`);
  const digest = modelDigest(path.join(dir, 'generator'));
  return { model, meta, digest };
}

/**
 * Images for `labels` as uint8 gray at the GAN's size, n after n. Noise comes from the seeded
 * stream (seed, stream...), so the same call makes the same images. Batch normalisation runs in
 * inference mode (moving statistics), so an image does not depend on what else is in its batch.
 */
export function generate(
  g: tfl.LayersModel,
  zDim: number,
  labels: ArrayLike<number>,
  seed: Seed,
  stream: Array<string | number> = [],
  batchSize = 64,
): Uint8Array {
  const size = g.outputs[0].shape[1] as number;
  const out = new Uint8Array(labels.length * size * size);
  for (let i = 0; i < labels.length; i += batchSize) {
    const m = Math.min(batchSize, labels.length - i);
    const lab = Array.from({ length: m }, (_, k) => labels[i + k]);
    // One noise stream per batch offset keeps image i's noise fixed whatever n is asked for.
    const images = tf.tidy(
      () => g.predict([noiseTensor(m, zDim, seed, ...stream, 'batch', i), oneHot(lab)]) as tf.Tensor,
    );
    out.set(toPixels(images), i * size * size);
    images.dispose();
  }
  return out;
}
