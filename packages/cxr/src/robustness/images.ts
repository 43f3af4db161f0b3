// The images a robustness run scores: a labelled folder (NORMAL/ and PNEUMONIA/), or, given the
// data root a model was trained from (it has train/), that model's own patient-level validation
// split as recorded in its cxr.json — the split its operating point was chosen on. Only JPEG and PNG
// films are read (the preprocessed cache decodes no other format); the rest are set aside by their
// leading bytes before `--limit` draws, so that the draw is met and the run says what it left out.
import * as fs from 'node:fs';
import { filmFormatOfFile } from '../data/dicom';
import { forEachConcurrent } from '../data/pool';
import * as path from 'node:path';
import type { ImageRecord } from '../data/dataset';
import { createRng, type Seed, shuffleInPlace } from '../data/random';
import type { ModelMeta } from '../models/metadata';
import {
  filesFingerprint,
  limitedSplit,
  loadImageSet,
  loadTrainVal,
  recordedSplit,
  splitRecords,
} from '../data/dataset_images';
import type { ImageSet } from '../data/images';
import { missingPathWords, statIfThere } from '../paths';

export interface BenchmarkImages {
  set: ImageSet;
  /** In words: "folder …" or "validation split of … (valFraction 0.15, seed 42)". */
  source: string;
  kind: 'folder' | 'validation-split';
  /** Files of the folder (or split) not drawn from, each with why. */
  leftOut: LeftOut[];
}

export interface LeftOut {
  file: string;
  reason: string;
}

/** Why a file is not a film robustness reads, by its leading bytes; null for a JPEG or PNG. */
async function unreadableReason(file: string): Promise<string | null> {
  try {
    const format = await filmFormatOfFile(file);
    if (format === 'jpeg' || format === 'png') return null;
    return format === 'dicom' ? 'DICOM' : 'not an image';
  } catch (e) {
    return `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
}

/** The records whose files are JPEG or PNG films, and the others with why, in the records' order. */
export async function readableRecords<T extends { path: string }>(
  records: readonly T[],
): Promise<{ readable: T[]; leftOut: LeftOut[] }> {
  const reasons = new Array<string | null>(records.length);
  await forEachConcurrent(
    records.map((r, i) => [r, i] as const),
    8,
    async ([r, i]) => {
      reasons[i] = await unreadableReason(r.path);
    },
  );
  return {
    readable: records.filter((_, i) => reasons[i] === null),
    leftOut: records.flatMap((r, i) => (reasons[i] === null ? [] : [{ file: r.path, reason: reasons[i]! }])),
  };
}

/** "3 files left out (JPEG and PNG only): 2 DICOM, 1 not an image". */
function leftOutWords(leftOut: readonly LeftOut[]): string {
  const counts = new Map<string, number>();
  for (const l of leftOut) counts.set(l.reason, (counts.get(l.reason) ?? 0) + 1);
  const parts = [...counts].map(([reason, n]) => `${n} ${reason}`).join(', ');
  return `${leftOut.length} file${leftOut.length === 1 ? '' : 's'} left out (JPEG and PNG only): ${parts}`;
}

export interface ImageChoice {
  /** Images per class at most (0 = all), chosen by `seed`. */
  limit?: number;
  seed?: Seed;
  warn?: (line: string) => void;
  progress?: boolean;
}

const hasClasses = (dir: string) => ['NORMAL', 'PNEUMONIA'].every((c) => fs.existsSync(path.join(dir, c)));

/**
 * Why `dir` cannot be a folder of benchmark films (null when it can): checked before any work, so that a
 * mistyped folder is refused at once rather than after every change has been scored.
 */
export function benchmarkFolderProblem(dir: string): string | null {
  const st = statIfThere(dir);
  if (!st) return missingPathWords(dir);
  if (!st.isDirectory()) return 'is a file, not a folder: give a folder with NORMAL/ and PNEUMONIA/ subfolders';
  if (!hasClasses(dir) && !isTrainingRoot(dir))
    return 'expected NORMAL/ and PNEUMONIA/ subfolders, or a data root with train/';
  return null;
}

/** True when `data` is a Kaggle-layout root whose train/ split the model's validation came from. */
export function isTrainingRoot(data: string): boolean {
  return hasClasses(path.join(data, 'train'));
}

/**
 * Refuses a training root other than the model's: its "validation split" would hold films the model
 * trained on, or other films altogether. The bytes are compared first (fast); only a mismatch there
 * loads the split as training did (files that do not decode are left out of its fingerprint).
 */
async function checkSameData(
  data: string,
  meta: ModelMeta,
  train: ImageRecord[],
  val: ImageRecord[],
  warn?: (line: string) => void,
): Promise<void> {
  const recorded = meta.data.fingerprint;
  if (typeof recorded !== 'string') return;
  const unread: string[] = [];
  if ((await filesFingerprint(train, val, unread)) === recorded) return;
  if (unread.length) {
    // Films the file system will not give now (deleted, their permission or share gone after the folder was
    // listed) leave the bytes unchecked, not the split: it is made from the listed names. They are counted
    // unreadable by the evaluation, rather than the whole run refused as another folder's.
    warn?.(
      `warning: ${data}: ${unread.length} film(s) cannot be read now (e.g. ${unread[0]}), so whether this is the ` +
        `data ${meta.name} was trained on is not checked; its validation split is taken from the file names`,
    );
    return;
  }
  const split = recordedSplit(meta);
  const { info } = await loadTrainVal(data, {
    ...split,
    valFraction: split.valFraction!,
    seed: split.seed!,
    size: meta.inputSize,
  });
  if (info.fingerprint === recorded) return;
  const root = typeof meta.data.root === 'string' ? ` (it recorded ${meta.data.root})` : '';
  throw new Error(
    `${data} is not the data ${meta.name} was trained on (its split fingerprint differs): its validation split ` +
      `is only defined in the training folder the model used${root}; pass that, or a NORMAL/PNEUMONIA folder`,
  );
}

/** The records of the model's recorded validation split inside a training root, and of the whole train/ folder. */
export async function validationRecords(
  data: string,
  meta: ModelMeta,
  opts: { warn?: (line: string) => void } = {},
): Promise<{ records: ImageRecord[]; source: string; folder: ImageRecord[] }> {
  const split = recordedSplit(meta);
  if (split.valFraction === undefined || split.seed === undefined) {
    throw new Error(
      `${meta.name}: cxr.json does not record its validation split (data.valFraction, data.splitSeed); ` +
        'pass a NORMAL/PNEUMONIA folder instead',
    );
  }
  const folder = await splitRecords(data, 'train');
  const { train, val } = limitedSplit(folder, { ...split, valFraction: split.valFraction, seed: split.seed });
  await checkSameData(data, meta, train, val, opts.warn);
  const how = split.valSplit === 'block' ? 'block split' : `seed ${split.seed}`;
  return {
    records: val,
    folder,
    source: `validation split of ${data} (${val.length} images, valFraction ${split.valFraction}, ${how})`,
  };
}

/**
 * At most `limit` images per class, drawn by `seed` (a shuffle of each class, then the first
 * `limit`), kept in their original order.
 */
export function chooseRecords<T extends { label: number }>(
  records: readonly T[],
  limit: number,
  seed: Seed,
  passOver: ReadonlySet<T> = new Set(),
): T[] {
  if (!(limit > 0)) return records.filter((r) => !passOver.has(r));
  const keep = new Set<number>();
  for (const label of [0, 1]) {
    const idx = records.flatMap((r, i) => (r.label === label ? [i] : []));
    // `passOver` (films that did not decode) is dropped after the shuffle, so that the next film of the same
    // shuffle takes each one's place and the other films drawn stay the ones drawn without it.
    shuffleInPlace(idx, createRng(seed, 'robustness-limit', label))
      .filter((i) => !passOver.has(records[i]))
      .slice(0, limit)
      .forEach((i) => keep.add(i));
  }
  return records.filter((_, i) => keep.has(i));
}

/** Decodes the chosen images once (through the preprocessed cache) at the model's input size. */
export async function loadBenchmarkImages(
  data: string,
  meta: ModelMeta,
  opts: ImageChoice = {},
): Promise<BenchmarkImages> {
  const problem = benchmarkFolderProblem(data);
  if (problem) throw new Error(`${data}: ${problem}`);
  let all: ImageRecord[];
  let splitSource = '';
  let kind: BenchmarkImages['kind'];
  if (isTrainingRoot(data)) {
    ({ records: all, source: splitSource } = await validationRecords(data, meta, { warn: opts.warn }));
    kind = 'validation-split';
  } else {
    all = await splitRecords(data);
    kind = 'folder';
  }
  const { readable: records, leftOut } = await readableRecords(all);
  if (leftOut.length) {
    const shown = leftOut.slice(0, 5).map((l) => `${path.relative(data, l.file)} (${l.reason})`);
    opts.warn?.(`warning: ${data}: ${leftOutWords(leftOut)}: ${shown.join(', ')}${leftOut.length > 5 ? ', ...' : ''}`);
  }
  if (records.length === 0) throw new Error(`${data}: no JPEG or PNG films (${leftOutWords(leftOut)})`);
  // A JPEG or PNG by its leading bytes may still not decode (cut short, corrupt). docs/robustness.md promises a
  // draw from films it can read and every file left out named: such a file joins `leftOut` with the decoder's
  // reason, and under --limit the next film of its class in the draw's order takes its place (decoded films come
  // from the image cache, so a second pass reads only the new ones).
  const undecodable = new Set<ImageRecord>();
  const reasons = new Map<string, string>();
  let chosen: ImageRecord[];
  let set: ImageSet;
  for (;;) {
    chosen = chooseRecords(records, opts.limit ?? 0, opts.seed ?? 1, undecodable);
    set = await loadImageSet(chosen, kind === 'folder' ? records[0].split : 'validation', {
      size: meta.inputSize,
      warn: opts.warn,
      progress: opts.progress,
      // The cache's own list of what it could not decode, with why (its message leads with the file's path).
      skipped: (files) => {
        for (const f of files)
          if (f.message.startsWith(`${f.path}: `)) reasons.set(f.path, f.message.slice(f.path.length + 2));
      },
    });
    const decoded = new Set(set.files);
    const failed = chosen.filter((r) => !decoded.has(r.path));
    for (const r of failed) {
      undecodable.add(r);
      leftOut.push({ file: r.path, reason: reasons.get(r.path) ?? 'does not decode' });
    }
    // Without a limit every film was read already; with one, draw again only when a film failed.
    if (failed.length === 0 || !(opts.limit && opts.limit > 0)) break;
  }
  const films = records.length - undecodable.size;
  let source = kind === 'folder' ? `folder ${data} (${films} images)` : splitSource;
  if (leftOut.length) source += `, ${leftOutWords(leftOut)}`;
  if (chosen.length < films)
    source += `, ${chosen.length} chosen (at most ${opts.limit} per class, seed ${opts.seed ?? 1})`;
  if (set.labels.length === 0) throw new Error(`${data}: no readable images`);
  return { set, source, kind, leftOut };
}
