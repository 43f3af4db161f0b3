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
import {
  fitGaussian,
  mahalanobis,
  OOD_FORMAT,
  type OodModel,
  percentile,
  saveOod,
  scoreSummary,
  weightsDigest,
} from './ood';

export const DEFAULT_OOD_PERCENTILE = 99;

/** Penultimate features of every image of a set, row-major n × d. */
export async function setFeatures(parts: ModelParts, set: ImageSet, batchSize = 32): Promise<Float32Array> {
  const n = set.labels.length;
  const d = parts.featureDim;
  const per = set.size * set.size;
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i += batchSize) {
    const m = Math.min(batchSize, n - i);
    const x = toInput(set.pixels.subarray(i * per, (i + m) * per), m, set.size);
    const h = features(parts, x);
    out.set(h.dataSync() as Float32Array, i * d);
    x.dispose();
    h.dispose();
    await new Promise((r) => setImmediate(r));
  }
  return out;
}

export interface FitFromSetsOptions {
  /** Percentile of validation scores used as the threshold (default 99). */
  percentile?: number;
  member?: number;
  /** Folder of the member's model.json + weights.bin (for the weights digest). */
  memberDir: string;
  /** Recorded as is under "fitted" (data root, split, counts...). */
  fitted?: Record<string, unknown>;
}

/** The OOD gate of `model` from in-memory train/validation sets (e.g. at the end of training). */
export async function fitOodFromSets(
  model: LayersModel,
  train: ImageSet,
  val: ImageSet,
  opts: FitFromSetsOptions,
): Promise<OodModel> {
  const parts = splitModel(model);
  const d = parts.featureDim;
  const trainFeatures = await setFeatures(parts, train);
  const gauss = fitGaussian(trainFeatures, train.labels.length, d);
  const scoresOf = async (set: ImageSet, feats?: Float32Array) => {
    const f = feats ?? (await setFeatures(parts, set));
    return Array.from({ length: set.labels.length }, (_, i) => mahalanobis(gauss, f.subarray(i * d, (i + 1) * d)));
  };
  const trainScores = await scoresOf(train, trainFeatures);
  // Without a validation split the training scores stand in; they run lower (the Gaussian was fitted on them).
  const valScores = val.labels.length ? await scoresOf(val) : trainScores;
  const p = opts.percentile ?? DEFAULT_OOD_PERCENTILE;
  return {
    format: OOD_FORMAT,
    featureLayer: parts.featureLayer,
    member: opts.member ?? 0,
    dim: d,
    mean: Array.from(gauss.mean),
    precision: Array.from(gauss.precision),
    shrinkage: gauss.shrinkage,
    threshold: percentile(valScores, p),
    percentile: p,
    weightsSha256: weightsDigest(opts.memberDir),
    scores: { train: scoreSummary(trainScores), validation: scoreSummary(valScores) },
    fitted: {
      ...opts.fitted,
      trainImages: train.labels.length,
      validationImages: val.labels.length,
      thresholdFrom: val.labels.length ? 'validation' : 'train',
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
    const { train, val, info } = await loadTrainVal(dataRoot, {
      ...split,
      valFraction,
      seed,
      size: meta.inputSize,
      normalize: meta.preprocessing.normalize,
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
    const ood = await fitOodFromSets(loaded.members[0], train, val, {
      percentile: opts.percentile,
      memberDir,
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
