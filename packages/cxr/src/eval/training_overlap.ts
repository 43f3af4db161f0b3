// Which of the films an evaluation scores the model has seen: those of its training split (it learned them) and
// of its validation split (its thresholds and its best epoch were chosen on them). Figures on either are
// optimistic, and nothing else in an evaluation says so: a hospital that copies the public data into its "local"
// sample, or evaluates the training root's train/ split, gets figures that look like a validation.
//
// cxr.json records the split by its definition (valFraction, splitSeed, limitPerClass, valSplit) and a fingerprint
// of its films' SHA-256s, not the films themselves. So the split is made again, as training made it, in the
// training root the films may come from (--data itself, the folder above it, the root the model records), the
// fingerprint confirms it is the model's, and films are matched by their bytes, whatever they are called or
// wherever they were copied. Sizes are compared first: a sample sharing no file size with the training folder
// shares no film with it, and is told so after a directory listing, without reading the training films.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { scanDataset } from '../data/dataset';
import { limitPerClass, recordedSplit, splitFingerprint } from '../data/dataset_images';
import { DecodeError, readImageFile } from '../data/decode';
import { forEachConcurrent } from '../data/pool';
import { DEFAULT_SPLIT_SEED, DEFAULT_VAL_FRACTION, splitByPatient } from '../data/split';
import { filesRelativeTo } from '../data/images';
import { sha256Of } from '../hash';

/** The films of an evaluation the model trained or was validated on, and where its split was found. */
export interface TrainingOverlap {
  /** The training root (the folder with train/) in which the model's split was made again. */
  root: string;
  /**
   * 'fingerprint': the split made again has the fingerprint cxr.json records, so it is the model's. 'split': the
   * model records no fingerprint; the split it records was applied to this root's train/ folder.
   */
  matchedBy: 'fingerprint' | 'split';
  /** The evaluated films whose bytes are those of a film the model trained on. */
  training: string[];
  /** The evaluated films whose bytes are those of a film of its validation split. */
  validation: string[];
}

/** What of a cxr.json the check reads (models/metadata.ts ModelMeta has these fields). */
export interface SplitRecord {
  name: string;
  data: Record<string, unknown>;
  recipe: Record<string, unknown>;
}

const hasTrain = (root: string) => ['NORMAL', 'PNEUMONIA'].every((c) => fs.existsSync(path.join(root, 'train', c)));

/**
 * Where the model's training root may be: the evaluated folder (a Kaggle root), the folder above it (its train/ or
 * test/ given directly), and the root cxr.json records, as written (from the working folder) and from `base`
 * (the repository, whose `../shared` it usually names). Each real folder once.
 */
function candidateRoots(data: string, recorded: unknown, base?: string): string[] {
  const tries = [data, path.dirname(path.resolve(data))];
  if (typeof recorded === 'string') tries.push(path.resolve(recorded), ...(base ? [path.resolve(base, recorded)] : []));
  const seen = new Set<string>();
  const out: string[] = [];
  for (const t of tries) {
    if (!hasTrain(t)) continue;
    const real = fs.realpathSync(t);
    if (!seen.has(real)) out.push(t);
    seen.add(real);
  }
  return out;
}

async function sizes(files: readonly string[]): Promise<(number | null)[]> {
  const out = new Array<number | null>(files.length).fill(null);
  await forEachConcurrent(files, 16, async (f, i) => {
    out[i] = await fs.promises.stat(f).then(
      (s) => (s.isFile() ? s.size : null),
      () => null,
    );
  });
  return out;
}

/** Each file's SHA-256 as training's fingerprint took it (data/dataset_images.ts filesFingerprint); null if unread. */
async function digests(files: readonly string[]): Promise<(string | null)[]> {
  const out = new Array<string | null>(files.length).fill(null);
  await forEachConcurrent(files, 8, async (f, i) => {
    try {
      out[i] = sha256Of(await readImageFile(f));
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
    }
  });
  return out;
}

/**
 * The evaluated `films` that are films of the model's training or validation split, or null where none is, or
 * where the model's training root is not to be found here (a model trained elsewhere: nothing can be said).
 */
export async function trainingOverlap(
  meta: SplitRecord,
  films: readonly string[],
  data: string,
  opts: { base?: string } = {},
): Promise<TrainingOverlap | null> {
  const split = recordedSplit(meta);
  const recorded = typeof meta.data.fingerprint === 'string' ? meta.data.fingerprint : undefined;
  // Neither the films nor the whole definition recorded: any split made here would be a guess.
  if (recorded === undefined && (split.valFraction === undefined || split.seed === undefined)) return null;
  const filmSizes = await sizes(films);
  const wanted = new Set(filmSizes.filter((s) => s !== null));
  for (const root of candidateRoots(data, meta.data.root, opts.base)) {
    const folder = await scanDataset(root, { warn: () => {} }).then((all) => all.filter((r) => r.split === 'train'));
    const folderSizes = await sizes(folder.map((r) => r.path));
    // No film of the sample has the size of any film here: none is one of them (and nothing more is read).
    if (!folderSizes.some((s) => s !== null && wanted.has(s))) continue;
    const { train, val } = splitByPatient(limitPerClass(folder, split.limitPerClass), {
      valFraction: split.valFraction ?? DEFAULT_VAL_FRACTION,
      seed: split.seed ?? DEFAULT_SPLIT_SEED,
      mode: split.valSplit,
    });
    const trainSums = await digests(train.map((r) => r.path));
    const valSums = await digests(val.map((r) => r.path));
    const known = (sums: (string | null)[]) => sums.filter((s): s is string => s !== null);
    // Another folder laid out alike (or this one changed since): its split is not the model's.
    if (recorded !== undefined && splitFingerprint(known(trainSums), known(valSums)) !== recorded) continue;
    const side = new Map<string, 'training' | 'validation'>();
    for (const s of known(trainSums)) side.set(s, 'training');
    for (const s of known(valSums)) side.set(s, 'validation');
    const folderSizeSet = new Set(folderSizes);
    const maybe = films.filter((_, i) => filmSizes[i] !== null && folderSizeSet.has(filmSizes[i]));
    const sums = await digests(maybe);
    const found: TrainingOverlap = {
      root,
      matchedBy: recorded !== undefined ? 'fingerprint' : 'split',
      training: [],
      validation: [],
    };
    maybe.forEach((f, i) => {
      const where = sums[i] === null ? undefined : side.get(sums[i] as string);
      if (where) found[where].push(f);
    });
    return found.training.length + found.validation.length > 0 ? found : null;
  }
  return null;
}

/** The warning an evaluation prints (and records) when some of its films are the model's own. */
export function overlapWarning(o: TrainingOverlap, total: number, modelName: string): string {
  const parts: string[] = [];
  if (o.training.length) parts.push(`${o.training.length} were in ${modelName}'s training split (it learned them)`);
  if (o.validation.length)
    parts.push(
      `${o.validation.length} were in ${o.training.length ? 'its' : `${modelName}'s`} validation split ` +
        '(its operating points and best epoch were chosen on them)',
    );
  const how =
    o.matchedBy === 'fingerprint'
      ? `the split it records, made again in ${o.root} and confirmed by its fingerprint`
      : `the split it records (valFraction, seed), applied to ${o.root}; it records no fingerprint to confirm it by`;
  return (
    `warning: of the ${total} films, ${parts.join('; ')}: the figures are optimistic, not what the model ` +
    `does on films it never saw. Films matched by their bytes against ${how}. Evaluate on films the model ` +
    'was not trained on (e.g. the test split, or films of your own)'
  );
}

/**
 * The evaluated films the model has seen, as an evaluation reports them (`trainingOverlap` in --json), with the
 * warning said of them: the figures on them are optimistic. Null where none is, or where the model's training
 * data is not here to tell.
 */
export type OverlapRecord = {
  warning: string;
  root: string;
  matchedBy: TrainingOverlap['matchedBy'];
  training: { count: number; files: string[] };
  validation: { count: number; files: string[] };
} | null;

/** trainingOverlap as an evaluation records it; `base` as trainingOverlap's. */
export async function overlapRecord(
  meta: SplitRecord,
  files: readonly string[],
  data: string,
  base?: string,
): Promise<OverlapRecord> {
  const o = await trainingOverlap(meta, files, data, { base });
  if (!o) return null;
  return {
    warning: overlapWarning(o, files.length, meta.name),
    root: o.root,
    matchedBy: o.matchedBy,
    training: { count: o.training.length, files: o.training },
    validation: { count: o.validation.length, files: o.validation },
  };
}

/** The record as a file under --out keeps it: films relative to the data folder, as its other lists are. */
export function overlapRelativeTo(o: OverlapRecord, data: string): OverlapRecord {
  return (
    o && {
      ...o,
      training: { count: o.training.count, files: filesRelativeTo(data, o.training.files) },
      validation: { count: o.validation.count, files: filesRelativeTo(data, o.validation.files) },
    }
  );
}
