// A GAN run's settings, stored in the run folder (config.json) so that --resume and
// `cxr gan sample` rebuild exactly the networks that were trained.
import { z } from 'zod';

export const GanConfig = z.object({
  /** Side of the generated images; the generator doubles 4 px up to it. */
  size: z.union([z.literal(32), z.literal(64), z.literal(128)]).default(64),
  zDim: z.number().int().min(4).max(512).default(64),
  /** Channels of the generator's last hidden layer; each coarser layer has twice as many. */
  gWidth: z.number().int().min(4).max(256).default(32),
  /** Channels of the discriminator's first layer; each finer-to-coarser step doubles them. */
  dWidth: z.number().int().min(4).max(256).default(32),
  epochs: z.number().int().min(1).default(15),
  batchSize: z.number().int().min(2).default(32),
  lr: z.number().positive().default(2e-4),
  beta1: z.number().min(0).max(1).default(0.5),
  beta2: z.number().min(0).max(1).default(0.999),
  /** 'bce': non-saturating GAN loss; 'hinge': the hinge loss of SAGAN/BigGAN. */
  loss: z.enum(['bce', 'hinge']).default('bce'),
  /** One-sided label smoothing: the discriminator's target for real images (bce only). */
  realTarget: z.number().min(0.5).max(1).default(0.9),
  /**
   * 'oversample' draws NORMAL images again until both classes are seen equally often, so the
   * minority class gets as many generator updates as the majority.
   */
  balance: z.enum(['none', 'oversample']).default('oversample'),
  seed: z.number().int().default(42),
  /** The classifier's patient split, so the GAN never sees a validation patient. */
  valFraction: z.number().min(0.05).max(0.5).default(0.15),
  /** How validation patients are picked, as the classifier's --val-split (data/split.ts). */
  valSplit: z.enum(['random', 'block']).default('random'),
  limitPerClass: z.number().int().min(0).default(0),
  /** Step-level log lines every this many steps (epoch lines are always written). */
  logEvery: z.number().int().min(1).default(25),
});
export type GanConfig = z.infer<typeof GanConfig>;
export type GanConfigInput = z.input<typeof GanConfig>;

/** --quick: a small subset and narrow networks, for CI (well under a minute on 2 cores). */
export const QUICK: GanConfigInput = {
  size: 64,
  zDim: 32,
  gWidth: 8,
  dWidth: 8,
  epochs: 2,
  batchSize: 16,
  limitPerClass: 40,
  logEvery: 2,
};

export const CLASS_NAMES = ['NORMAL', 'PNEUMONIA'] as const;
export type GanClass = (typeof CLASS_NAMES)[number];

export function classIndex(name: string): 0 | 1 {
  const i = CLASS_NAMES.indexOf(name.toUpperCase() as GanClass);
  if (i < 0) throw new Error(`unknown class '${name}' (known: ${CLASS_NAMES.join(', ')})`);
  return i as 0 | 1;
}
