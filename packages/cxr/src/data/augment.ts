// Training-time augmentation, run on the engine on whole batches [B, S, S, 1] in [0, 1].
//
// Geometry (rotation, zoom, shift, optional flip) is one projective transform per image, so an
// image is resampled once however many of them are on. Intensity jitter (brightness: additive,
// contrast: scaling around the image's mean) models exposure differences between machines.
// The random parameters are drawn in JS from the seed, not on the engine, so a seed gives the
// same images on every backend.
//
// Horizontal flip is OFF by default: the heart sits on the left of the chest (the image's right
// on a PA film), so a mirrored radiograph shows an anatomy that does not occur, and a model
// could learn to accept it. It is available because the madz2000 notebook used it.
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { createRng, type Seed, uniform } from './random';

export const augmentConfigSchema = z.object({
  /** Rotation drawn from ±rotationDeg degrees. */
  rotationDeg: z.number().min(0).max(180),
  /** Per-axis scale drawn from [1 − zoom, 1 + zoom] (Keras zoom_range); below 1 zooms in. */
  zoom: z.number().min(0).max(0.9),
  /** Translation drawn from ±shift × side, per axis (Keras width/height_shift_range). */
  shift: z.number().min(0).max(1),
  /** Added intensity drawn from ±brightness (intensities are in [0, 1]). */
  brightness: z.number().min(0).max(1),
  /** Contrast factor drawn from [1 − contrast, 1 + contrast], around each image's mean. */
  contrast: z.number().min(0).max(1),
  /** Mirror half of the images left–right. Off by default: see the top of this file. */
  horizontalFlip: z.boolean(),
  /** How pixels outside the source image are filled; 'nearest' is Keras's default. */
  fillMode: z.enum(['nearest', 'constant', 'reflect', 'wrap']),
});
export type AugmentConfig = z.infer<typeof augmentConfigSchema>;

const NONE: AugmentConfig = {
  rotationDeg: 0,
  zoom: 0,
  shift: 0,
  brightness: 0,
  contrast: 0,
  horizontalFlip: false,
  fillMode: 'nearest',
};

export const AUGMENT_PRESETS = {
  none: NONE,
  /** Small pose and exposure changes, the kind seen between real radiographs. */
  light: { ...NONE, rotationDeg: 7, zoom: 0.08, shift: 0.05, brightness: 0.05, contrast: 0.1 },
  strong: { ...NONE, rotationDeg: 15, zoom: 0.15, shift: 0.1, brightness: 0.1, contrast: 0.2 },
  /**
   * `strong` with twice the zoom range (scale 0.7–1.3 per axis, so up to ×1.43 closer), so that a
   * tightly framed NORMAL film (chest filling the frame, as on most PNEUMONIA films) is a framing the
   * model has seen labelled NORMAL (recipe cxr-shift-framing).
   */
  framing: { ...NONE, rotationDeg: 15, zoom: 0.3, shift: 0.1, brightness: 0.1, contrast: 0.2 },
  /** The madz2000 Kaggle notebook's ImageDataGenerator, flips included. */
  madz2000: { ...NONE, rotationDeg: 30, zoom: 0.2, shift: 0.1, horizontalFlip: true },
} as const satisfies Record<string, AugmentConfig>;

export type AugmentPreset = keyof typeof AUGMENT_PRESETS;
export const DEFAULT_AUGMENT_PRESET: AugmentPreset = 'light';
/** The preset names: what a recipe's `augment` and `cxr train --augment` accept. */
export const AUGMENT_PRESET_NAMES = Object.keys(AUGMENT_PRESETS) as [AugmentPreset, ...AugmentPreset[]];
export const augmentPresetSchema = z.enum(AUGMENT_PRESET_NAMES);

const specSchema = z.union([
  augmentPresetSchema,
  augmentConfigSchema.partial().extend({ preset: augmentPresetSchema.optional() }).strict(),
]);

/**
 * A full config from a preset name, or from an object whose fields override a preset
 * (`preset`, default 'light'). Throws a readable error for anything else (it may come from a
 * command line or a JSON file).
 */
export function resolveAugment(spec: unknown = DEFAULT_AUGMENT_PRESET): AugmentConfig {
  const parsed = specSchema.safeParse(spec);
  if (!parsed.success) {
    throw new Error(`invalid augmentation '${JSON.stringify(spec)}': ${z.prettifyError(parsed.error)}`);
  }
  if (typeof parsed.data === 'string') return { ...AUGMENT_PRESETS[parsed.data] };
  const { preset = DEFAULT_AUGMENT_PRESET, ...overrides } = parsed.data;
  return { ...AUGMENT_PRESETS[preset], ...overrides };
}

export function isIdentity(cfg: AugmentConfig): boolean {
  return !hasGeometry(cfg) && cfg.brightness === 0 && cfg.contrast === 0;
}

function hasGeometry(cfg: AugmentConfig): boolean {
  return cfg.rotationDeg > 0 || cfg.zoom > 0 || cfg.shift > 0 || cfg.horizontalFlip;
}

/** The parameters drawn for one image; exposed for tests and for logging what was done. */
export interface ImageAugmentation {
  angleRad: number;
  zoomX: number;
  zoomY: number;
  shiftX: number;
  shiftY: number;
  flip: boolean;
  brightness: number;
  contrast: number;
}

/**
 * One draw per image. Every parameter is drawn whatever the config, so turning one knob does
 * not change the random values of the others for the same seed.
 */
export function drawAugmentations(batch: number, size: number, cfg: AugmentConfig, seed: Seed): ImageAugmentation[] {
  const rand = createRng(seed, 'augment');
  return Array.from({ length: batch }, () => {
    const angle = uniform(rand, -cfg.rotationDeg, cfg.rotationDeg);
    const zoomX = uniform(rand, 1 - cfg.zoom, 1 + cfg.zoom);
    const zoomY = uniform(rand, 1 - cfg.zoom, 1 + cfg.zoom);
    const shiftX = uniform(rand, -cfg.shift, cfg.shift) * size;
    const shiftY = uniform(rand, -cfg.shift, cfg.shift) * size;
    const flip = rand() < 0.5 && cfg.horizontalFlip;
    const brightness = uniform(rand, -cfg.brightness, cfg.brightness);
    const contrast = uniform(rand, 1 - cfg.contrast, 1 + cfg.contrast);
    return { angleRad: (angle * Math.PI) / 180, zoomX, zoomY, shiftX, shiftY, flip, brightness, contrast };
  });
}

/**
 * tf.image.transform's 8 coefficients for one image. They map an OUTPUT pixel to the INPUT
 * position it samples: centre, flip, rotate, scale, move back and shift.
 */
export function transformCoefficients(a: ImageAugmentation, size: number): number[] {
  const c = (size - 1) / 2;
  const f = a.flip ? -1 : 1;
  const cos = Math.cos(a.angleRad);
  const sin = Math.sin(a.angleRad);
  const a0 = a.zoomX * cos * f;
  const a1 = -a.zoomX * sin;
  const b0 = a.zoomY * sin * f;
  const b1 = a.zoomY * cos;
  return [a0, a1, c - a0 * c - a1 * c + a.shiftX, b0, b1, c - b0 * c - b1 * c + a.shiftY, 0, 0];
}

/**
 * Augments a batch [B, S, S, 1] of intensities in [0, 1] and returns a new tensor of the same
 * shape, still in [0, 1]. The input is not disposed (the caller owns it); nothing else leaks.
 */
export function augmentBatch(xs: tf.Tensor4D, cfg: AugmentConfig, seed: Seed): tf.Tensor4D {
  const [batch, height, width, channels] = xs.shape;
  if (height !== width || channels !== 1) {
    throw new Error(`augmentBatch: expected [B, S, S, 1], got [${xs.shape.join(', ')}]`);
  }
  if (isIdentity(cfg) || batch === 0) return xs.clone();
  const params = drawAugmentations(batch, height, cfg, seed);

  return tf.tidy(() => {
    let out: tf.Tensor4D = xs;
    if (hasGeometry(cfg)) {
      const transforms = tf.tensor2d(
        params.map((p) => transformCoefficients(p, height)),
        [batch, 8],
        'float32',
      );
      out = tf.image.transform(out, transforms, 'bilinear', cfg.fillMode, 0);
    }
    if (cfg.brightness > 0 || cfg.contrast > 0) {
      const k = tf.tensor4d(
        params.map((p) => p.contrast),
        [batch, 1, 1, 1],
      );
      const d = tf.tensor4d(
        params.map((p) => p.brightness),
        [batch, 1, 1, 1],
      );
      const mean = tf.mean(out, [1, 2, 3], true);
      out = tf.add(tf.add(tf.mul(tf.sub(out, mean), k), mean), d);
    }
    return tf.clipByValue(out, 0, 1);
  });
}
