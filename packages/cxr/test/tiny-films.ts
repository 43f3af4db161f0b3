// Small data folders of links to the shared films, for tests that train or evaluate in seconds.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RecipeInput } from '../src/train/recipe';
import { CHEST_XRAY } from './shared-data';

/** One epoch of the small reference network at 32 px on a few films: about a second. */
export const TINY_RECIPE: Partial<RecipeInput> = {
  arch: 'reference',
  inputSize: 32,
  epochs: 1,
  batchSize: 4,
  augment: 'none',
  tta: [],
};

/**
 * Training without its extras (no augmentation, no balancing, no TTA; a constant learning rate, no warm-up, no
 * label smoothing) on 30% validation: runs whose learning a test can hold to a number. Add arch, size, epochs.
 */
export const PLAIN_RECIPE: Partial<RecipeInput> = {
  valFraction: 0.3,
  batchSize: 16,
  augment: 'none',
  lr: 1e-3,
  schedule: 'constant',
  warmupEpochs: 0,
  labelSmoothing: 0,
  balance: 'none',
  tta: [],
};

/** The first n film names of the shared train split's class folder, in a stable order. */
export const sharedFilms = (cls: 'NORMAL' | 'PNEUMONIA', n: number) =>
  fs
    .readdirSync(path.join(CHEST_XRAY, 'train', cls))
    .filter((f) => !f.startsWith('.'))
    .sort()
    .slice(0, n);

/**
 * Links n films per class into DIR/NORMAL and DIR/PNEUMONIA (`train/` in front with `layout: 'kaggle'`, which
 * `cxr train` needs; a flat folder is what `cxr evaluate` reads). Returns the data root.
 */
export function linkFilms(root: string, n: number, layout: 'kaggle' | 'flat'): string {
  for (const cls of ['NORMAL', 'PNEUMONIA'] as const) {
    const dir = layout === 'kaggle' ? path.join(root, 'train', cls) : path.join(root, cls);
    fs.mkdirSync(dir, { recursive: true });
    for (const f of sharedFilms(cls, n)) fs.symlinkSync(path.join(CHEST_XRAY, 'train', cls, f), path.join(dir, f));
  }
  return root;
}
