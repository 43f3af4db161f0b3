// From a data folder to in-memory ImageSets through the preprocessed cache.
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { cacheImages, type SkippedFile } from './cache';
import { DecodeError, readImageFile } from './decode';
import { forEachConcurrent } from './pool';
import { DatasetLayoutError, type DatasetLayoutErrorCode, ImageRecord, type ScanOptions, scanDataset } from './dataset';
import { normalizeImages, type NormalizeMode } from './preprocess';
import { DEFAULT_SPLIT_SEED, DEFAULT_VAL_FRACTION, type PatientSplit, splitByPatient, type SplitMode } from './split';
import { ImageSet } from './images';

export interface LoadOptions {
  size: number;
  cacheDir?: string;
  progress?: boolean;
  warn?: (line: string) => void;
  /** The model's per-image normalisation, applied to every loaded image (cxr.json preprocessing.normalize). */
  normalize?: NormalizeMode;
  /** Told the files that could not be read or decoded (each also a `warn` line), with why. */
  skipped?: (files: readonly SkippedFile[]) => void;
}

export async function loadImageSet(
  records: readonly ImageRecord[],
  name: string,
  opts: LoadOptions,
): Promise<ImageSet> {
  const set = await cacheImages(records, {
    size: opts.size,
    cacheDir: opts.cacheDir,
    name,
    progress: opts.progress,
    warn: opts.warn,
  });
  opts.skipped?.(set.skipped);
  // The pack stores images by slot (shared across subsets), so gather them in record order.
  const per = set.size * set.size;
  const pixels = new Uint8Array(set.length * per);
  for (let i = 0; i < set.length; i++) pixels.set(set.pixelsOf(i), i * per);
  normalizeImages(pixels, set.length, set.size, opts.normalize);
  return {
    size: set.size,
    pixels,
    labels: set.labels(),
    files: set.images.map((r) => r.path),
    patients: set.images.map((r) => r.patient),
    sha256: set.images.map((r) => r.sha256),
  } as ImageSet & { sha256: string[] };
}

/** Records of one split; a folder holding NORMAL/ and PNEUMONIA/ directly is its own split. */
export async function splitRecords(root: string, split?: string, opts: ScanOptions = {}): Promise<ImageRecord[]> {
  const all = await scanDataset(root, opts);
  const splits = [...new Set(all.map((r) => r.split))];
  // A DatasetLayoutError as the scan's own refusals: a program (runEvaluation's caller) branches on its code.
  const refuse = (code: DatasetLayoutErrorCode, message: string) =>
    new DatasetLayoutError(path.resolve(root), message, code);
  if (all.length === 0) {
    throw refuse(
      'NO_IMAGES',
      `${root}: no images in NORMAL/ and PNEUMONIA/ (nor in train/, val/ or test/ holding them)`,
    );
  }
  const want = split ?? (splits.length === 1 ? splits[0] : splits.includes('test') ? 'test' : undefined);
  if (!want) throw refuse('SPLIT_NEEDED', `${root} has splits ${splits.join(', ')}: choose one with --split`);
  const records = all.filter((r) => r.split === want);
  if (records.length === 0)
    throw refuse('NO_IMAGES', `${root}: split '${want}' has no images (found: ${splits.join(', ') || 'none'})`);
  return records;
}

/** Limits each class to n images (deterministically: the first n by patient-sorted order). */
export function limitPerClass(records: ImageRecord[], n: number): ImageRecord[] {
  if (n <= 0) return records;
  const out: ImageRecord[] = [];
  for (const label of [0, 1]) {
    const cls = records.filter((r) => r.label === label);
    // Spread the pick over the class so a subset is not one patient's images.
    const step = Math.max(1, Math.floor(cls.length / n));
    for (let i = 0; i < cls.length && out.filter((r) => r.label === label).length < n; i += step) out.push(cls[i]);
  }
  return out;
}

export interface SplitChoice {
  valFraction: number;
  seed: number;
  limitPerClass: number;
  valSplit: SplitMode;
}

/**
 * The split a recipe (train/recipe.ts) asks for; `splitSeed`, when set, fixes the split apart from
 * the training seed.
 */
export function splitOf(r: {
  valFraction: number;
  seed: number;
  splitSeed?: number;
  limitPerClass: number;
  valSplit: SplitMode;
}): SplitChoice {
  return {
    valFraction: r.valFraction,
    seed: r.splitSeed ?? r.seed,
    limitPerClass: r.limitPerClass,
    valSplit: r.valSplit,
  };
}

/**
 * The split a trained model recorded in cxr.json (`data`, else its recipe), so that calibration and
 * the OOD gate see exactly its validation images. Fields it lacks are undefined.
 */
export function recordedSplit(meta: {
  data: Record<string, unknown>;
  recipe: Record<string, unknown>;
}): Partial<SplitChoice> & { limitPerClass: number; valSplit: SplitMode } {
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  return {
    valFraction: num(meta.data.valFraction) ?? num(meta.recipe.valFraction),
    // A recipe's splitSeed, when set, is the split's seed (splitOf): its training seed is not.
    seed: num(meta.data.splitSeed) ?? num(meta.recipe.splitSeed) ?? num(meta.recipe.seed),
    limitPerClass: num(meta.data.limitPerClass) ?? num(meta.recipe.limitPerClass) ?? 0,
    valSplit: meta.data.valSplit === 'block' ? 'block' : 'random',
  };
}

/**
 * The films a split definition trains and validates on, from a train/ folder's records: at most
 * `limitPerClass` per class, then split by patient. The one place this is done, so that training, its data
 * check, robustness's validation films and evaluate's training-overlap check pick the same films.
 */
export function limitedSplit(
  records: ImageRecord[],
  choice: Omit<SplitChoice, 'valSplit'> & { valSplit?: SplitMode },
): PatientSplit<ImageRecord> {
  return splitByPatient(limitPerClass(records, choice.limitPerClass), {
    valFraction: choice.valFraction,
    seed: choice.seed,
    mode: choice.valSplit,
  });
}

/** Patient-level train/validation split of the `train` split, then both loaded at `size`. */
export async function loadTrainVal(
  root: string,
  opts: LoadOptions & Omit<SplitChoice, 'valSplit'> & { valSplit?: SplitMode },
) {
  const split = limitedSplit(await splitRecords(root, 'train', { warn: opts.warn }), opts);
  const train = await loadImageSet(split.train, 'train', opts);
  const val = await loadImageSet(split.val, 'validation', opts);
  const fingerprint = splitFingerprint(
    (train as ImageSet & { sha256: string[] }).sha256,
    (val as ImageSet & { sha256: string[] }).sha256,
  );
  return {
    train,
    val,
    info: {
      root,
      fingerprint,
      valFraction: opts.valFraction,
      splitSeed: opts.seed,
      // Recorded with the split: a model combined from members (no recipe of its own) still knows it.
      limitPerClass: opts.limitPerClass,
      valSplit: opts.valSplit ?? 'random',
      trainPatients: new Set(train.patients).size,
      valPatients: new Set(val.patients).size,
    },
  };
}

/** Names a training/validation split by the content digests of its images, whatever their paths. */
export function splitFingerprint(train: readonly string[], val: readonly string[]): string {
  return crypto
    .createHash('sha256')
    .update(JSON.stringify({ train: [...train].sort(), val: [...val].sort() }))
    .digest('hex');
}

/**
 * splitFingerprint from the files' bytes, without decoding them: equal to loadTrainVal's whenever
 * every file decodes (a file that does not is left out of a loaded set, so a mismatch here is only
 * conclusive after loadTrainVal agrees). `unread` is told the files the file system would not give
 * (gone since they were listed, no permission, an I/O error): left out too, though their bytes were
 * likely in the fingerprint recorded at training.
 */
export async function filesFingerprint(
  train: readonly ImageRecord[],
  val: readonly ImageRecord[],
  unread?: string[],
): Promise<string> {
  const digest = async (records: readonly ImageRecord[]) => {
    const out: string[] = [];
    await forEachConcurrent(records, 8, async (r) => {
      try {
        out.push(
          crypto
            .createHash('sha256')
            .update(await readImageFile(r.path))
            .digest('hex'),
        );
      } catch (e) {
        // A file that cannot be read (or is over the input limit) is left out, as the cache leaves it out.
        if (!(e instanceof DecodeError)) throw e;
        if (e.code === 'READ_FAILED') unread?.push(r.path);
      }
    });
    return out;
  };
  return splitFingerprint(await digest(train), await digest(val));
}

/** What a model folder's cxr.json says about its data (models/metadata.ts ModelMeta has these fields). */
export interface RecordedData {
  data: Record<string, unknown>;
  recipe: Record<string, unknown>;
  inputSize: number;
  preprocessing: { normalize?: NormalizeMode };
}

/**
 * The patient split a model was trained on (from its cxr.json, the defaults where it records none), loaded at
 * its input size with its normalisation; `raw` leaves the squares unnormalised.
 */
export function loadRecordedSplit(
  root: string,
  meta: RecordedData,
  opts: Omit<LoadOptions, 'size' | 'normalize'> & { raw?: boolean } = {},
) {
  const { raw, ...load } = opts;
  const split = recordedSplit(meta);
  return loadTrainVal(root, {
    ...split,
    valFraction: split.valFraction ?? DEFAULT_VAL_FRACTION,
    seed: split.seed ?? DEFAULT_SPLIT_SEED,
    size: meta.inputSize,
    normalize: raw ? undefined : meta.preprocessing.normalize,
    ...load,
  });
}
