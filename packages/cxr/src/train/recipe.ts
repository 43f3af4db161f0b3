// A training recipe: everything that decides how a model is trained. Stored in cxr.json and in
// checkpoints so that a run can be resumed and reproduced.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../atomic_write';
import { writeFailure } from '../make_dirs';
import { augmentPresetSchema } from '../data/augment';
import { NORMALIZE_MODES } from '../data/preprocess';
import { ARCH_NAMES } from '../models';
import { TtaViewName } from '../models/metadata';
import { shiftAugmentSchema } from '../data/shift_augment';
import { mixSchema } from '../data/mix';
import { periodBalanceSchema } from '../data/period_balance';
import { weightAverageSchema } from './weight_average';

export const Recipe = z.object({
  /** A from-scratch architecture, or 'transfer' (set when `backbone` is: train/run.ts). */
  arch: z.enum([...ARCH_NAMES, 'transfer']).default('cxrnet'),
  inputSize: z.number().int().min(32).max(512).optional(),
  epochs: z.number().int().min(1).default(12),
  batchSize: z.number().int().min(1).default(32),
  optimizer: z.enum(['rmsprop', 'adam', 'sgd']).default('adam'),
  lr: z.number().positive().default(1e-3),
  schedule: z.enum(['constant', 'plateau', 'cosine', 'onecycle']).default('cosine'),
  warmupEpochs: z.number().min(0).default(0),
  balance: z.enum(['none', 'class-weights', 'oversample', 'undersample']).default('none'),
  augment: augmentPresetSchema.default('none'),
  labelSmoothing: z.number().min(0).max(0.5).default(0),
  /** Early stopping: epochs without a better validation AUC. 0 = off. */
  patience: z.number().int().min(0).default(0),
  valFraction: z.number().min(0.05).max(0.5).default(0.15),
  /** How validation patients are picked: 'random' or 'block' (lowest patient numbers per series; data/split.ts). */
  valSplit: z.enum(['random', 'block']).default('random'),
  seed: z.number().int().default(42),
  /** Seed of the patient split alone, when it must differ from `seed` (ensemble members share one validation split). */
  splitSeed: z.number().int().optional(),
  /** Per-image intensity normalisation of the input squares (data/preprocess.ts). */
  normalize: z.enum(NORMALIZE_MODES).default('none'),
  /** Site-shift augmentation on the 8-bit films before anything else (data/shift_augment.ts). */
  shiftAugment: shiftAugmentSchema.optional(),
  /** mixup or cutmix per batch, labels mixed alike (data/mix.ts). */
  mix: mixSchema.optional(),
  /** Each class's films drawn evenly over the periods their patient numbers span (data/period_balance.ts). */
  periodBalance: periodBalanceSchema.optional(),
  /** The finished model is a moving average of the weights (train/weight_average.ts); from-scratch recipes. */
  weightAverage: weightAverageSchema.optional(),
  /** Limit images per class (tests, --quick). 0 = all. */
  limitPerClass: z.number().int().min(0).default(0),
  /**
   * Transfer learning from this ImageNet backbone (docs/transfer-learning.md); 'auto' = InceptionV3
   * if present, else the largest MobileNet.
   */
  backbone: z.string().optional(),
  /** Local backbone weights (TF.js model folder or Keras .h5) instead of the cache or a download. */
  weights: z.string().optional(),
  /** After the frozen-backbone head: unfreeze the top `blocks` backbone blocks for `epochs` more at `lr`. */
  fineTune: z
    .object({ blocks: z.number().int().min(1), epochs: z.number().int().min(1), lr: z.number().positive() })
    .optional(),
  /**
   * With a backbone: no frozen-head phase; the whole model (batch norm too) trains from the first step
   * through the from-scratch trainer, so shiftAugment, mix, periodBalance and weightAverage apply.
   */
  endToEnd: z.boolean().optional(),
  /**
   * With endToEnd: the head alone trains first, on the frozen ImageNet features (a linear probe), for
   * `epochs` at a constant `lr`; then the whole model trains for the recipe's `epochs` as usual (LP-FT,
   * Kumar et al. 2022: a random head's first gradients distort the pretrained features, which costs
   * most on inputs unlike the training set). Batch-norm statistics follow the films in the probe too.
   */
  headFirst: z.object({ epochs: z.number().int().min(1), lr: z.number().positive() }).optional(),
  /** Dropout before the transfer head's Dense layer (default 0.2). */
  headDropout: z.number().min(0).max(0.9).optional(),
  tta: z.array(TtaViewName).default([]),
  /** Generated images added to the training set only: N per class, or 'balance' (the minority's shortfall). */
  ganImages: z.union([z.number().int().min(0), z.literal('balance')]).optional(),
  /** Folder written by `cxr gan train`, required when ganImages is set. */
  ganModel: z.string().optional(),
});
export type Recipe = z.infer<typeof Recipe>;
export type RecipeInput = z.input<typeof Recipe>;

/**
 * Writes the run folder's recipe.json, the recipe --resume continues (train/run.ts writes it again on each resume).
 * Atomically: a run killed, or out of disk space, while it was written kept a cut recipe.json, and could not
 * be resumed.
 */
export function writeRecipe(runDir: string, recipe: Recipe): void {
  const file = path.join(runDir, 'recipe.json');
  try {
    writeFileAtomic(file, JSON.stringify(recipe, null, 2) + '\n');
  } catch (e) {
    const kept = fs.existsSync(file) ? 'the one it had is kept' : 'nothing was written';
    throw new Error(`${file}: the run's recipe could not be written (${writeFailure(e, runDir)}); ${kept}`, {
      cause: e,
    });
  }
}
