// Fitting the OOD gate of a trained model: features of the training split -> Gaussian, scores of
// the validation split -> threshold. It must see the same patient split as training did (the
// validation images are the held-out "typical X-rays" that set the threshold), so the split is
// rebuilt from what cxr.json recorded: valFraction, splitSeed, limitPerClass.
import * as path from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { loadModel } from '../models/io';
import { toInput } from '../models/infer';
import { DEFAULT_SPLIT_SEED, DEFAULT_VAL_FRACTION } from '../data/split';
import { loadTrainVal, recordedSplit } from '../data/dataset_images';
import type { ImageSet } from '../data/images';
import { features, splitModel, type ModelParts } from './model_parts';
import { CHANGE_NAMES, perturbAt, perturbImages } from '../data/perturb_catalog';
import { normalizeImages, type NormalizeMode } from '../data/preprocess';
import { createRng } from '../data/random';
import {
  fitGaussian,
  oodScore,
  OOD_FORMAT,
  type OodModel,
  percentile,
  saveOod,
  scoreSummary,
  weightsDigest,
} from './ood';

/** Class-balanced percentile of the validation films' scores (clean and mildly changed) that sets the threshold. */
export const DEFAULT_OOD_PERCENTILE = 99.5;
/** Mild: the robustness benchmark's lowest graded strength. */
export const MILD_STRENGTH = 1 / 3;
/** Every catalogue change but the negative, which makes a non-X-ray rather than a different film. */
export const MILD_CHANGES = CHANGE_NAMES.filter((c) => c !== 'invert');

/** Penultimate features of every image of a set, row-major n × d. */
export function setFeatures(parts: ModelParts, set: ImageSet, batchSize = 32): Promise<Float32Array> {
  return squareFeatures(parts, set.pixels, set.labels.length, set.size, batchSize);
}

/** Penultimate features of n size×size squares (already normalised as the model expects), row-major n × d. */
export async function squareFeatures(
  parts: ModelParts,
  pixels: Uint8Array,
  n: number,
  size: number,
  batchSize = 32,
): Promise<Float32Array> {
  const d = parts.featureDim;
  const per = size * size;
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i += batchSize) {
    const m = Math.min(batchSize, n - i);
    const x = toInput(pixels.subarray(i * per, (i + m) * per), m, size);
    const h = features(parts, x);
    out.set(h.dataSync() as Float32Array, i * d);
    x.dispose();
    h.dispose();
    await new Promise((r) => setImmediate(r));
  }
  return out;
}

export interface FitFromSetsOptions {
  /** Class-balanced percentile of the validation scores (clean and mildly changed) used as the threshold. */
  percentile?: number;
  member?: number;
  /** Folder of the member's model.json + weights.bin (for the weights digest). */
  memberDir: string;
  /** The model's normalisation, applied after each mild change. */
  normalize?: NormalizeMode;
  /**
   * The sets' squares before that normalisation (same films, same order). A film arrives changed and the
   * Predictor normalises it after, so with `equalize` or `fov` the mild changes act on these, as the robustness
   * benchmark's do. Without them the changes act on the normalised squares, normalised again: films the model
   * never sees (a framing change applied after `fov` has cropped to the body, noise on an equalised film).
   */
  raw?: { train: Uint8Array; val: Uint8Array };
  /** Catalogue changes and strength of the mild copies (default: every change but the negative, at 1/3). */
  changes?: readonly string[];
  strength?: number;
  seed?: number;
  log?: (line: string) => void;
  /** Recorded as is under "fitted" (data root, split, counts...). */
  fitted?: Record<string, unknown>;
}

/**
 * The OOD gate of `model` from in-memory train/validation sets (e.g. at the end of training).
 *
 * Why this shape (issue 9: a p99 of the clean validation scores around one mean flagged 4.7% of the
 * test split's NORMAL films and none of its pneumonia films, and 94% of mildly collimated films):
 *  - one mean per class, one covariance of the within-class deviations: the score is the distance to
 *    the nearer class, so the minority class (NORMAL) is not further from the centre for being rarer;
 *  - the covariance also sees each training film once more under one mild change of the robustness
 *    catalogue (framing, exposure, blur...), so the directions real films vary in are not "far";
 *  - the threshold is the `percentile` of the validation films' scores, clean and under every mild
 *    change, taken per class and the larger of the two kept (class-balanced).
 * Training and validation folders only: no test film is read.
 */
export async function fitOodFromSets(
  model: LayersModel,
  train: ImageSet,
  val: ImageSet,
  opts: FitFromSetsOptions,
): Promise<OodModel> {
  const log = opts.log ?? (() => {});
  const parts = splitModel(model);
  const d = parts.featureDim;
  const { size } = train;
  const strength = opts.strength ?? MILD_STRENGTH;
  const changes = [...(opts.changes ?? MILD_CHANGES)];
  const seed = opts.seed ?? 1;
  const norm = (px: Uint8Array, n: number) => normalizeImages(px, n, size, opts.normalize);
  const nt = train.labels.length;
  const trainRaw = opts.raw?.train ?? train.pixels;
  const valRaw = opts.raw?.val ?? val.pixels;
  if (trainRaw.length !== train.pixels.length || valRaw.length !== val.pixels.length)
    throw new RangeError('fitOodFromSets: raw squares do not match the sets');
  const trainFeatures = await setFeatures(parts, train);
  // One mild change per training film, drawn per file so the draw does not depend on the set's order.
  const per = size * size;
  const mild = new Uint8Array(train.pixels.length);
  for (let i = 0; i < nt; i++) {
    const change = changes[Math.floor(createRng(seed, 'ood-fit', train.files[i] ?? i)() * changes.length)];
    const img = { pixels: trainRaw.subarray(i * per, (i + 1) * per), size };
    mild.set((await perturbAt(change, img, strength, seed, train.files[i] ?? i)).pixels, i * per);
  }
  const mildFeatures = await squareFeatures(parts, norm(mild, nt), nt, size);
  const all = new Float32Array(2 * nt * d);
  all.set(trainFeatures);
  all.set(mildFeatures, nt * d);
  const labels = [...train.labels, ...train.labels];
  const classes = [...new Set(labels)].sort();
  const classMeans = classes.map((c) => {
    const m = new Float64Array(d);
    const rows = labels.flatMap((l, i) => (l === c ? [i] : []));
    for (const i of rows) for (let j = 0; j < d; j++) m[j] += all[i * d + j] / rows.length;
    return m;
  });
  const centred = new Float64Array(all.length);
  labels.forEach((l, i) => {
    const m = classMeans[classes.indexOf(l)];
    for (let j = 0; j < d; j++) centred[i * d + j] = all[i * d + j] - m[j];
  });
  const gauss = fitGaussian(centred, labels.length, d);
  const mean = new Float64Array(d);
  for (let i = 0; i < labels.length; i++) for (let j = 0; j < d; j++) mean[j] += all[i * d + j] / labels.length;
  const gate = {
    mean: Array.from(mean),
    classMeans: classMeans.map((m) => Array.from(m)),
    precision: gauss.precision,
    dim: d,
  };
  const scoresOf = (f: Float32Array, n: number) =>
    Array.from({ length: n }, (_, i) => oodScore(gate, f.subarray(i * d, (i + 1) * d)));
  const trainScores = scoresOf(trainFeatures, nt);
  const nv = val.labels.length;
  const pooled: { labels: number[]; scores: number[] } = { labels: [], scores: [] };
  let valScores: number[] = [];
  if (nv) {
    valScores = scoresOf(await setFeatures(parts, val), nv);
    pooled.labels.push(...val.labels);
    pooled.scores.push(...valScores);
    for (const change of changes) {
      log(`OOD threshold: validation films under ${change} at strength ${strength.toFixed(2)}`);
      const px = await perturbImages(change, valRaw, val.files, size, strength, seed);
      pooled.labels.push(...val.labels);
      pooled.scores.push(...scoresOf(await squareFeatures(parts, norm(px, nv), nv, size), nv));
    }
  } else {
    // Without a validation split the training scores stand in; they run lower (the Gaussian was fitted on them).
    pooled.labels.push(...train.labels);
    pooled.scores.push(...trainScores);
  }
  const p = opts.percentile ?? DEFAULT_OOD_PERCENTILE;
  const pooledOf = (c: number) => pooled.scores.filter((_, i) => pooled.labels[i] === c);
  const perClass = classes.map((c) => percentile(pooledOf(c), p));
  return {
    format: OOD_FORMAT,
    featureLayer: parts.featureLayer,
    member: opts.member ?? 0,
    dim: d,
    mean: gate.mean,
    classMeans: gate.classMeans,
    precision: Array.from(gauss.precision),
    shrinkage: gauss.shrinkage,
    threshold: Math.max(...perClass.filter((t) => Number.isFinite(t))),
    percentile: p,
    weightsSha256: weightsDigest(opts.memberDir),
    scores: {
      train: scoreSummary(trainScores),
      validation: scoreSummary(nv ? valScores : trainScores),
      // The clean and mildly changed validation films of each class (key: class index), which set the threshold.
      ...Object.fromEntries(classes.map((c) => [`pooled${c}`, scoreSummary(pooledOf(c))])),
    },
    fitted: {
      ...opts.fitted,
      method: 'nearest class mean, within-class covariance of training films + one mild change each',
      trainImages: nt,
      validationImages: nv,
      thresholdFrom: nv ? 'validation+mild' : 'train',
      threshold: { classBalancedPercentile: p, perClass, changes, strength, pooledScores: pooled.scores.length },
      createdAt: new Date().toISOString(),
    },
  };
}

export interface FitFromDataOptions {
  percentile?: number;
  cacheDir?: string;
  progress?: boolean;
  log?: (line: string) => void;
}

/** `cxr ood fit`: rebuilds the training run's split from cxr.json, fits, writes ood.json. */
export async function fitOodFromData(
  modelDir: string,
  dataRoot: string,
  opts: FitFromDataOptions = {},
): Promise<OodModel> {
  const log = opts.log ?? (() => {});
  const loaded = await loadModel(modelDir);
  try {
    const { meta } = loaded;
    const split = recordedSplit(meta);
    const valFraction = split.valFraction ?? DEFAULT_VAL_FRACTION;
    const seed = split.seed ?? DEFAULT_SPLIT_SEED;
    const { limitPerClass } = split;
    // Loaded unnormalised: the mild changes act on the films as they arrive (fitOodFromSets `raw`).
    const normalize = meta.preprocessing.normalize ?? 'none';
    const { train, val, info } = await loadTrainVal(dataRoot, {
      ...split,
      valFraction,
      seed,
      size: meta.inputSize,
      cacheDir: opts.cacheDir,
      progress: opts.progress,
      warn: log,
    });
    if (typeof meta.data.fingerprint === 'string' && meta.data.fingerprint !== info.fingerprint) {
      log(
        `warning: the images under ${dataRoot} differ from the ones the model was trained on ` +
          '(split fingerprint mismatch); fitting anyway',
      );
    }
    log(
      `fitting the OOD gate on ${train.labels.length} training images, ` +
        `threshold from ${val.labels.length} validation images`,
    );
    const memberDir = meta.members.length ? path.join(modelDir, meta.members[0]) : modelDir;
    // Without a normalisation the squares as loaded are the model's input: no copy.
    const normalised = (set: ImageSet): ImageSet =>
      normalize === 'none'
        ? set
        : { ...set, pixels: normalizeImages(set.pixels.slice(), set.labels.length, set.size, normalize) };
    const raw = normalize === 'none' ? undefined : { train: train.pixels, val: val.pixels };
    const ood = await fitOodFromSets(loaded.members[0], normalised(train), normalised(val), {
      percentile: opts.percentile,
      memberDir,
      normalize,
      raw,
      log,
      fitted: {
        data: path.resolve(dataRoot),
        fingerprint: info.fingerprint,
        valFraction,
        splitSeed: seed,
        limitPerClass,
      },
    });
    saveOod(modelDir, ood);
    return ood;
  } finally {
    for (const m of loaded.members) m.dispose();
  }
}
