// Training-time "site shift" augmentation: each training film, with some probability, goes through
// one change of the robustness catalogue (perturb_catalog.ts) at a random strength, on its 8-bit
// square before anything else. The benchmark showed NORMAL films' scores rising under softer,
// flatter and resampled films; a network that has seen such films labelled NORMAL learns that these
// are not signs of pneumonia. Only some changes are used for training, so the rest of the benchmark
// stays a test of shifts the model never saw (the recipe records which).
import { z } from 'zod';
import { changeByName } from './perturb_catalog';
import { createRng, type Seed, uniform } from './random';

export const shiftAugmentSchema = z
  .object({
    /** Share of training films changed in each batch. */
    probability: z.number().min(0).max(1),
    /** Strengths are drawn from [0, maxStrength] (the catalogue's scale: 1 = its strongest graded change). */
    maxStrength: z.number().min(0).max(1),
    /** Catalogue change names; only those that run synchronously (not 'jpeg'). */
    changes: z.array(z.string()).min(1),
  })
  .strict();
export type ShiftAugment = z.infer<typeof shiftAugmentSchema>;

/** Intensity, sharpness and resolution: what differs between sites and years of one archive. */
export const SITE_SHIFT_AUGMENT: ShiftAugment = {
  probability: 0.5,
  maxStrength: 1,
  changes: [
    'exposure-up',
    'exposure-down',
    'gamma-up',
    'gamma-down',
    'contrast-down',
    'contrast-up',
    'blur',
    'sharpen',
    'noise',
    'resample',
  ],
};

/** Throws a readable error for an unknown or asynchronous change, before training starts. */
export function checkShiftAugment(cfg: ShiftAugment): void {
  for (const name of cfg.changes) {
    const c = changeByName(name);
    const probe = c.apply({ pixels: new Uint8Array(16), size: 4 }, 0.5, () => 0.5);
    if (probe instanceof Promise) {
      probe.catch(() => {});
      throw new Error(`shift augmentation: change '${name}' is asynchronous and cannot run inside a training step`);
    }
  }
}

/**
 * Changes the n size×size films in `pixels` in place. Deterministic for a seed: the draws come
 * from one stream per batch.
 */
export function shiftAugmentBatch(pixels: Uint8Array, n: number, size: number, cfg: ShiftAugment, seed: Seed): void {
  const rand = createRng(seed, 'shift-augment');
  const per = size * size;
  for (let i = 0; i < n; i++) {
    const pick = rand();
    const which = Math.min(cfg.changes.length - 1, Math.floor(rand() * cfg.changes.length));
    const strength = uniform(rand, 0, cfg.maxStrength);
    if (pick >= cfg.probability || strength === 0) continue;
    const img = { pixels: pixels.subarray(i * per, (i + 1) * per), size };
    const out = changeByName(cfg.changes[which]).apply(img, strength, rand);
    if (out instanceof Promise) throw new Error(`shift augmentation: change '${cfg.changes[which]}' is asynchronous`);
    pixels.set(out.pixels, i * per);
  }
}
