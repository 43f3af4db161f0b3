// A training recipe: everything that decides how a model is trained. Stored in cxr.json and in
// checkpoints so that a run can be resumed and reproduced.
import { z } from 'zod';

export const Recipe = z.object({
  arch: z.string().default('cxrnet'),
  inputSize: z.number().int().min(32).max(512).optional(),
  epochs: z.number().int().min(1).default(12),
  batchSize: z.number().int().min(1).default(32),
  optimizer: z.enum(['rmsprop', 'adam', 'sgd']).default('adam'),
  lr: z.number().positive().default(1e-3),
  schedule: z.enum(['constant', 'plateau', 'cosine', 'onecycle']).default('cosine'),
  warmupEpochs: z.number().min(0).default(0),
  balance: z.enum(['none', 'class-weights', 'oversample', 'undersample']).default('none'),
  augment: z.string().default('none'),
  labelSmoothing: z.number().min(0).max(0.5).default(0),
  /** Early stopping: epochs without a better validation AUC. 0 = off. */
  patience: z.number().int().min(0).default(0),
  valFraction: z.number().min(0.05).max(0.5).default(0.15),
  seed: z.number().int().default(42),
  /** Limit images per class (tests, --quick). 0 = all. */
  limitPerClass: z.number().int().min(0).default(0),
  tta: z.array(z.string()).default([]),
});
export type Recipe = z.infer<typeof Recipe>;
export type RecipeInput = z.input<typeof Recipe>;
