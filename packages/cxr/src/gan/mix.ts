// Generated images as extra classifier training data. They are appended to the training set
// only, after the patient split, so validation (and with it checkpoint choice, calibration and
// thresholds) stays purely real. They are marked by their names: file and patient 'gan:<CLASS>/<n>'.
import { resizeSquare } from '../data/preprocess';
import { classCounts } from '../data/balance';
import { type ImageRecord, scanDataset } from '../data/dataset';
import { limitedSplit, type SplitChoice } from '../data/dataset_images';
import type { ImageSet } from '../data/images';
import { CLASS_NAMES } from './config';
import { type GanMeta, generate, loadGenerator, readGanMeta } from './generator_io';

/** N per class, or 'balance': as many of the minority class as it lacks, none of the majority. */
export type GanImages = number | 'balance';

/** File names of generated images in an ImageSet start with this (they have no file). */
export const SYNTHETIC_PREFIX = 'gan:';

export function ganCounts(spec: GanImages, labels: ArrayLike<number>): [number, number] {
  if (spec === 'balance') {
    const [n0, n1] = classCounts(labels);
    return [Math.max(0, n1 - n0), Math.max(0, n0 - n1)];
  }
  if (!Number.isInteger(spec) || spec < 0)
    throw new RangeError(`GAN images per class must be a whole number >= 0, got ${spec}`);
  return [spec, spec];
}

/** Upsampled (or shrunk) to `size` with the same squash/resize the classifier's images go through. */
export async function syntheticSet(
  ganDir: string,
  counts: [number, number],
  size: number,
  seed: number,
): Promise<{ set: ImageSet; digest: string; ganSize: number }> {
  const { model, meta, digest } = await loadGenerator(ganDir);
  try {
    const per = size * size;
    const total = counts[0] + counts[1];
    const pixels = new Uint8Array(total * per);
    const labels = new Uint8Array(total);
    const files: string[] = [];
    let at = 0;
    for (const cls of [0, 1] as const) {
      // Each class its own noise stream: a NORMAL and a PNEUMONIA image never share a latent.
      const raw = generate(model, meta.zDim, Array(counts[cls]).fill(cls), seed, ['mix', CLASS_NAMES[cls]]);
      const s = meta.size;
      for (let i = 0; i < counts[cls]; i++, at++) {
        const tile = raw.subarray(i * s * s, (i + 1) * s * s);
        pixels.set(s === size ? tile : resizeSquare(tile, s, s, size), at * per);
        labels[at] = cls;
        files.push(`${SYNTHETIC_PREFIX}${CLASS_NAMES[cls]}/${String(i + 1).padStart(5, '0')}`);
      }
    }
    return { set: { size, pixels, labels, files, patients: [...files] }, digest, ganSize: meta.size };
  } finally {
    model.dispose();
  }
}

export function concatSets(a: ImageSet, b: ImageSet): ImageSet {
  if (a.size !== b.size) throw new Error(`cannot join ${a.size}px and ${b.size}px image sets`);
  const pixels = new Uint8Array(a.pixels.length + b.pixels.length);
  pixels.set(a.pixels);
  pixels.set(b.pixels, a.pixels.length);
  const labels = new Uint8Array(a.labels.length + b.labels.length);
  labels.set(a.labels);
  labels.set(b.labels, a.labels.length);
  return { size: a.size, pixels, labels, files: [...a.files, ...b.files], patients: [...a.patients, ...b.patients] };
}

/** The patient split a GAN was trained on, as gan.json records it (its config where its data record lacks a field). */
export function ganSplit(meta: GanMeta): SplitChoice {
  const d = meta.data;
  const num = (v: unknown, fallback: number) => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
  return {
    seed: num(d.splitSeed, meta.config.seed),
    valFraction: num(d.valFraction, meta.config.valFraction),
    limitPerClass: num(d.limitPerClass, meta.config.limitPerClass),
    valSplit: d.valSplit === 'block' || d.valSplit === 'random' ? d.valSplit : meta.config.valSplit,
  };
}

const describe = (s: SplitChoice) =>
  `split seed ${s.seed}, validation fraction ${s.valFraction}, ${s.valSplit} validation patients, ` +
  (s.limitPerClass > 0 ? `at most ${s.limitPerClass} films per class` : 'all films');

/**
 * The `cxr gan train` options that train a GAN on split s (--quick's subset limit overridden too; a limit of 0,
 * all films, is `cxr gan train`'s default without --quick).
 */
const ganOptions = (s: SplitChoice) =>
  `--seed ${s.seed} --val-fraction ${s.valFraction}` +
  (s.limitPerClass > 0 ? ` --limit-per-class ${s.limitPerClass}` : '') +
  (s.valSplit === 'block' ? ' --val-split block' : '');

const SPLIT_KEYS = ['seed', 'valFraction', 'valSplit', 'limitPerClass'] as const;

/**
 * How the refusal of checkGanSplit advises giving the run the GAN's split: `cxr train`'s flags by default; a
 * command whose split is fixed (`cxr experiments seed`) says so instead, and only the GAN can change.
 */
export type GanSplitAdvice = { runFlags: true } | { runFlags: false; fixedBy: string };

/**
 * Refuses a GAN trained on another patient split than the run's: its training images would then include
 * children the run validates on, whose likenesses would reach training through the generated images, and
 * validation (checkpoint choice, calibration, thresholds) would no longer be unseen data. The split is compared
 * by what decides it (seed, validation share, how patients are picked, the subset); the films themselves are
 * compared once loaded (checkGanFilms). `records`: the data folder's training films, before any subset limit.
 * Another split is refused even where, on these films, no validation patient happens to be among the GAN's
 * training patients: the protocol (docs/gan.md) is one split for both, not a leak count that the next change
 * of the data folder may raise.
 */
export function checkGanSplit(
  ganDir: string,
  run: { root: string; split: SplitChoice; records: readonly ImageRecord[]; valPatients: ReadonlySet<string> },
  advice: GanSplitAdvice = { runFlags: true },
): void {
  const gan = ganSplit(readGanMeta(ganDir));
  if (SPLIT_KEYS.every((k) => gan[k] === run.split[k])) return;
  const ganTrain = new Set(limitedSplit([...run.records], gan).train.map((r) => r.patient));
  const seen = [...run.valPatients].filter((p) => ganTrain.has(p)).length;
  const runFlags: Record<(typeof SPLIT_KEYS)[number], string> = {
    seed: `--split-seed ${gan.seed}`,
    valFraction: `--val-fraction ${gan.valFraction}`,
    valSplit: `--val-split ${gan.valSplit}`,
    limitPerClass: `--limit-per-class ${gan.limitPerClass}`,
  };
  const n = run.valPatients.size;
  const why =
    seen > 0
      ? `in ${run.root}, ${seen} of this run's ${n} validation patients are among the GAN's training patients, ` +
        'and their likenesses would enter training through its images'
      : `in ${run.root}, none of this run's ${n} validation patients is among the GAN's training patients, ` +
        "yet another split is refused all the same: the GAN must be trained on the run's own split (docs/gan.md), " +
        'whose validation patients it never sees by construction, not on one that misses them by chance';
  const fix =
    `Train a GAN on this run's split (cxr gan train --data ${run.root} --out NEW_FOLDER ` + `${ganOptions(run.split)})`;
  const other = advice.runFlags
    ? `, or give this run the GAN's split (${SPLIT_KEYS.filter((k) => gan[k] !== run.split[k])
        .map((k) => runFlags[k])
        .join(' ')})`
    : ` and pass it as --gan-model: ${advice.fixedBy} trains every row on this split`;
  throw new Error(
    `--gan-model ${ganDir} was trained on another patient split than this run's ` +
      `(the GAN's: ${describe(gan)}; this run's: ${describe(run.split)}): ${why}. ${fix}${other}`,
  );
}

/**
 * checkGanSplit before anything trains, from the data folder's file list alone (nothing decoded): a command that
 * trains several rows (`cxr experiments seed`) refuses a GAN of another split at once, not when its GAN row
 * starts after hours of the others. The training films are ROOT/train's, as `cxr train` reads them.
 */
export async function checkGanSplitOf(
  ganDir: string,
  root: string,
  split: SplitChoice,
  advice: GanSplitAdvice,
): Promise<void> {
  const gan = ganSplit(readGanMeta(ganDir));
  if (SPLIT_KEYS.every((k) => gan[k] === split[k])) return;
  const records = (await scanDataset(root, { warn: () => {} })).filter((r) => r.split === 'train');
  const val = limitedSplit(records, split).val;
  checkGanSplit(ganDir, { root, split, records, valPatients: new Set(val.map((r) => r.patient)) }, advice);
}

/**
 * With the split's parameters equal (checkGanSplit), the GAN's recorded split fingerprint must be the run's:
 * another fingerprint means other films (another folder, or this one changed since), whose patients cannot be
 * checked against the run's validation patients. A gan.json without one (an older GAN) is let through.
 */
function checkGanFilms(ganDir: string, meta: GanMeta, run: { root: string; fingerprint: string }): void {
  const recorded = meta.data.fingerprint;
  if (typeof recorded !== 'string' || recorded === run.fingerprint) return;
  const where = typeof meta.data.root === 'string' ? ` (it trained on ${meta.data.root})` : '';
  throw new Error(
    `--gan-model ${ganDir} was trained on other films than this run's split holds${where}: split fingerprints ` +
      `${recorded.slice(0, 8)}… and ${run.fingerprint.slice(0, 8)}…, so its training patients cannot be checked ` +
      `against this run's validation patients. Train a GAN on this data (cxr gan train --data ${run.root} ` +
      `--out NEW_FOLDER ${ganOptions(ganSplit(meta))})`,
  );
}

export interface GanMixRecipe {
  ganImages?: GanImages;
  ganModel?: string;
  seed: number;
}

/**
 * The training set with the recipe's generated images appended (unchanged when it asks for
 * none), and what to record about them in the model's metadata.
 */
export async function withGanImages(
  train: ImageSet,
  r: GanMixRecipe,
  log: (line: string) => void,
  /** The run's loaded split (its root and fingerprint), checked against the GAN's (checkGanFilms). */
  split?: { root: string; fingerprint: string },
): Promise<{ train: ImageSet; info: Record<string, unknown> }> {
  if (r.ganImages === undefined || r.ganImages === 0) {
    if (r.ganModel) log(`a GAN model (${r.ganModel}) but no --gan-images: no generated images added`);
    return { train, info: {} };
  }
  if (!r.ganModel)
    throw new Error(`the recipe adds GAN images (${r.ganImages}): pass the generator with --gan-model DIR`);
  if (split) checkGanFilms(r.ganModel, readGanMeta(r.ganModel), split);
  const counts = ganCounts(r.ganImages, train.labels);
  const { set, digest, ganSize } = await syntheticSet(r.ganModel, counts, train.size, r.seed);
  log(
    `adding ${counts[0]} NORMAL and ${counts[1]} PNEUMONIA GAN images (${ganSize}px -> ${train.size}px) ` +
      'to the training set only',
  );
  return {
    train: concatSets(train, set),
    info: {
      synthetic: {
        normal: counts[0],
        pneumonia: counts[1],
        perClass: r.ganImages,
        generator: r.ganModel,
        generatorSha256: digest,
        ganSize,
      },
    },
  };
}
