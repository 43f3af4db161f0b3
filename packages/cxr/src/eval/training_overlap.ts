// Which of the films an evaluation scores the model has seen: those of its training split (it learned them) and
// of its validation split (its thresholds and its best epoch were chosen on them). Figures on either are
// optimistic, and nothing else in an evaluation says so: a hospital that copies the public data into its "local"
// sample, or evaluates the training root's train/ split, gets figures that look like a validation.
//
// cxr.json records the split by its definition (valFraction, splitSeed, limitPerClass, valSplit) and a fingerprint
// of its films' SHA-256s, not the films themselves. So the split is made again, as training made it, in the
// training root the films may come from (--data itself, the folder above it, the root the model records), the
// fingerprint confirms it is the model's, and films are matched by their bytes, whatever they are called or
// wherever they were copied. Sizes are compared first: only the split's films of a sample film's size are read,
// and the rest only once one of them is a sample film (to confirm the split by its fingerprint).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { scanDataset } from '../data/dataset';
import { limitedSplit, recordedSplit, splitFingerprint } from '../data/dataset_images';
import { DecodeError, readImageFile } from '../data/decode';
import { forEachConcurrent } from '../data/pool';
import { DEFAULT_SPLIT_SEED, DEFAULT_VAL_FRACTION } from '../data/split';
import { filesRelativeTo } from '../data/images';
import { sha256Of } from '../hash';
import { z } from 'zod';

/** The films of an evaluation the model trained or was validated on, and where its split was found. */
export interface TrainingOverlap {
  /** The training root (the folder with train/) in which the model's split was made again. */
  root: string;
  /**
   * 'fingerprint': the split made again has the fingerprint cxr.json records, so it is the model's. 'split': the
   * split cxr.json records, applied to the root it records, not confirmed (`unconfirmed` says why).
   */
  matchedBy: 'fingerprint' | 'split';
  /**
   * Where matchedBy is 'split': the model records no fingerprint, or the films' digests differ from the one it
   * records (training took only the films it could decode, which this check does not decode; or the folder changed).
   */
  unconfirmed?: 'no-fingerprint' | 'fingerprint-differs';
  /** The evaluated films whose bytes are those of a film the model trained on. */
  training: string[];
  /** The evaluated films whose bytes are those of a film of its validation split (and of none it trained on). */
  validation: string[];
}

/** What of a cxr.json the check reads (models/metadata.ts ModelMeta has these fields). */
export interface SplitRecord {
  name: string;
  data: Record<string, unknown>;
  recipe: Record<string, unknown>;
}

/** How the check reads a film's bytes (readImageFile; a test counts the reads). */
export type ReadFilm = (file: string) => Promise<Buffer>;

const hasTrain = (root: string) => ['NORMAL', 'PNEUMONIA'].every((c) => fs.existsSync(path.join(root, 'train', c)));

/**
 * Where the model's training root may be: the root cxr.json records, as written (from the working folder) and
 * from `base` (the repository, whose `../shared` it usually names); and, only where a fingerprint can confirm the
 * split made there, the evaluated folder (a Kaggle root) and the folder above it (its train/ or test/ given
 * directly). Any folder laid out alike is not the model's on its layout alone. Each real folder once.
 */
function candidateRoots(
  data: string,
  recorded: unknown,
  fingerprinted: boolean,
  base?: string,
): { root: string; recorded: boolean }[] {
  const own =
    typeof recorded === 'string' ? [path.resolve(recorded), ...(base ? [path.resolve(base, recorded)] : [])] : [];
  const tries = [...own.map((root) => ({ root, recorded: true }))];
  if (fingerprinted)
    tries.push({ root: data, recorded: false }, { root: path.dirname(path.resolve(data)), recorded: false });
  const seen = new Set<string>();
  const out: { root: string; recorded: boolean }[] = [];
  for (const t of tries) {
    if (!hasTrain(t.root)) continue;
    const real = fs.realpathSync(t.root);
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
async function digests(files: readonly string[], read: ReadFilm): Promise<(string | null)[]> {
  const out = new Array<string | null>(files.length).fill(null);
  await forEachConcurrent(files, 8, async (f, i) => {
    try {
      out[i] = sha256Of(await read(f));
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
    }
  });
  return out;
}

/**
 * The evaluated `films` that are films of the model's training or validation split, or null where none is, or
 * where the model's training root is not to be found here (a model trained elsewhere: nothing can be said).
 *
 * Only the split's films of a sample film's size are read first: a sample that shares no film with the split is
 * told so without reading the rest (at a hospital, tens of GB). The rest are read only when one film matches, to
 * confirm by the fingerprint that the split made again is the model's.
 */
export async function trainingOverlap(
  meta: SplitRecord,
  films: readonly string[],
  data: string,
  opts: { base?: string; read?: ReadFilm } = {},
): Promise<TrainingOverlap | null> {
  const read = opts.read ?? ((f: string) => readImageFile(f));
  const split = recordedSplit(meta);
  const recorded = typeof meta.data.fingerprint === 'string' ? meta.data.fingerprint : undefined;
  // Neither the films nor the whole definition recorded: any split made here would be a guess.
  if (recorded === undefined && (split.valFraction === undefined || split.seed === undefined)) return null;
  const filmSizes = await sizes(films);
  const wanted = new Set(filmSizes.filter((s) => s !== null));
  for (const { root, recorded: isRecordedRoot } of candidateRoots(data, meta.data.root, !!recorded, opts.base)) {
    const folder = await scanDataset(root, { warn: () => {} }).then((all) => all.filter((r) => r.split === 'train'));
    const { train, val } = limitedSplit(folder, {
      ...split,
      valFraction: split.valFraction ?? DEFAULT_VAL_FRACTION,
      seed: split.seed ?? DEFAULT_SPLIT_SEED,
    });
    const records = [...train, ...val].map((r) => r.path);
    const recordSizes = await sizes(records);
    // The split's films of a sample film's size: the only ones a sample film can be.
    const near = records.flatMap((_, i) => (recordSizes[i] !== null && wanted.has(recordSizes[i]) ? [i] : []));
    if (near.length === 0) continue;
    const sums = new Array<string | null>(records.length).fill(null);
    (
      await digests(
        near.map((i) => records[i]),
        read,
      )
    ).forEach((s, k) => {
      sums[near[k]] = s;
    });
    // A film of both splits (the same bytes for two patients) was learned: training is the stronger claim.
    const side = new Map<string, 'training' | 'validation'>();
    for (const i of near) {
      const s = sums[i];
      if (s !== null && (i < train.length || !side.has(s))) side.set(s, i < train.length ? 'training' : 'validation');
    }
    const nearSizes = new Set(near.map((i) => recordSizes[i]));
    const maybe = films.filter((_, i) => filmSizes[i] !== null && nearSizes.has(filmSizes[i]));
    const filmSums = await digests(maybe, read);
    const found = { training: [] as string[], validation: [] as string[] };
    maybe.forEach((f, i) => {
      const where = filmSums[i] === null ? undefined : side.get(filmSums[i] as string);
      if (where) found[where].push(f);
    });
    if (found.training.length + found.validation.length === 0) continue;
    let confirmed = false;
    if (recorded !== undefined) {
      const isNear = new Set(near);
      const rest = records.flatMap((_, i) => (isNear.has(i) ? [] : [i]));
      (
        await digests(
          rest.map((i) => records[i]),
          read,
        )
      ).forEach((s, k) => {
        sums[rest[k]] = s;
      });
      const known = (from: number, to: number) => sums.slice(from, to).filter((s): s is string => s !== null);
      confirmed = splitFingerprint(known(0, train.length), known(train.length, records.length)) === recorded;
    }
    // Another folder laid out alike (or this one changed since): its split is not the model's. In the folder the
    // model records, the digests of every readable file differ from training's of the films it could decode
    // wherever one here does not decode: the films are still the split's, said unconfirmed.
    if (!confirmed && !isRecordedRoot) continue;
    return {
      root,
      matchedBy: confirmed ? 'fingerprint' : 'split',
      ...(confirmed ? {} : { unconfirmed: recorded === undefined ? 'no-fingerprint' : 'fingerprint-differs' }),
      ...found,
    };
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
  const applied = `the split it records (valFraction, seed), applied to ${o.root}, the folder it records training on`;
  const how =
    o.matchedBy === 'fingerprint'
      ? `the split it records, made again in ${o.root} and confirmed by its fingerprint`
      : o.unconfirmed === 'fingerprint-differs'
        ? `${applied}; not confirmed by the fingerprint it records, which the films there no longer give (one ` +
          'training could not decode is among them, or the folder changed since)'
        : `${applied}; it records no fingerprint to confirm it by`;
  return (
    `warning: of the ${total} films, ${parts.join('; ')}: the figures are optimistic, not what the model ` +
    `does on films it never saw. Films matched by their bytes against ${how}. Evaluate on films the model ` +
    'was not trained on (e.g. the test split, or films of your own)'
  );
}

const Films = z.object({ count: z.number().int().nonnegative(), files: z.array(z.string()) });

/**
 * The evaluated films the model has seen, as an evaluation reports them (`trainingOverlap` in --json and in
 * metrics/<split>.json), with the warning said of them: the figures on them are optimistic. Null where none is, or
 * where the model's training data is not here to tell.
 */
export const OverlapRecord = z
  .object({
    warning: z.string(),
    root: z.string(),
    matchedBy: z.enum(['fingerprint', 'split']),
    unconfirmed: z.enum(['no-fingerprint', 'fingerprint-differs']).optional(),
    training: Films,
    validation: Films,
  })
  .nullable();
export type OverlapRecord = z.infer<typeof OverlapRecord>;

/**
 * The overlap a stored evaluation file records: null where it records that there is none; undefined where it
 * records nothing readable (files of earlier versions), so that a restated file keeps exactly what it had.
 */
export function storedOverlap(json: unknown): OverlapRecord | undefined {
  if (typeof json !== 'object' || json === null || !('trainingOverlap' in json)) return undefined;
  const r = OverlapRecord.safeParse(json.trainingOverlap);
  return r.success ? r.data : undefined;
}

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
    ...(o.unconfirmed ? { unconfirmed: o.unconfirmed } : {}),
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
