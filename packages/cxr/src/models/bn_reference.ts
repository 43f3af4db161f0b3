// Reference batch-norm statistics of a model folder (bn-reference.json): for every member and
// batch-norm layer, the pooled per-channel mean and variance of the layer's input over the model's
// clean validation films, in inference mode. `cxr adapt` adapts relative to them (adapt/bn_stats.ts):
// a site whose films look like these validation films leaves the model unchanged. Written by
// training, `cxr ensemble` and `cxr adapt-reference`; valid only for the weights it was measured
// on (each member's weights digest is recorded and checked).
//
// Format 2 also keeps the moments of each class's films apart (NORMAL, PNEUMONIA). A layer's input over
// a site differs from the validation films' not only by how the films were taken but by how many
// pneumonia films the site has: the validation split is about three quarters pneumonia, a hospital's
// films are mostly normal, and adapting to that difference as if it were the machine's moves normal
// films towards PNEUMONIA (round 13, docs/site-adaptation.md). With the classes apart, `cxr adapt`
// compares a site with the validation films mixed in the site's own proportion (mixReference).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { loadRecordedSplit } from '../data/dataset_images';
import { writeFileAtomic } from '../atomic_write';
import { bnLayers } from './bn_moments';
import { layerInputMoments } from './layer_inputs';
import { loadModel, memberDirs, weightsDigest } from './io';

export const BN_REFERENCE_FILE = 'bn-reference.json';
export const BN_REFERENCE_FORMAT = 'cxr-bn-reference/2';
/** Format 1: the pooled moments only (read, never written). */
const BN_REFERENCE_FORMAT_1 = 'cxr-bn-reference/1';

const Stats = z.object({ mean: z.array(z.number()), variance: z.array(z.number().nonnegative()) }).strict();
export type BnStats = z.infer<typeof Stats>;

const Member = z
  .object({
    dir: z.string(),
    /** weightsDigest of the member's folder when measured. */
    weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
    layers: z.record(z.string(), Stats),
    /** The same moments over each class's films alone: [NORMAL, PNEUMONIA] (format 2). */
    byClass: z.tuple([z.record(z.string(), Stats), z.record(z.string(), Stats)]).optional(),
  })
  .strict();

export const BnReference = z
  .object({
    format: z.enum([BN_REFERENCE_FORMAT_1, BN_REFERENCE_FORMAT]),
    /** The films measured: how many, from where, and their split. */
    films: z
      .object({
        count: z.number().int().min(2),
        source: z.string(),
        fingerprint: z.string().optional(),
        /** Films of each class: [NORMAL, PNEUMONIA] (format 2, with the members' byClass). */
        byClass: z.tuple([z.number().int().min(2), z.number().int().min(2)]).optional(),
      })
      .strict(),
    members: z.array(Member).min(1),
    createdAt: z.string(),
  })
  .strict();
export type BnReference = z.infer<typeof BnReference>;

/** Per layer (by name): the pooled moments of its input over the n films, the model as it is. */
export async function measureBnStats(
  model: tfl.LayersModel,
  pixels: Uint8Array,
  n: number,
  size: number,
  batchSize = 32,
): Promise<Record<string, BnStats>> {
  if (n < 2) throw new Error(`reference statistics need at least 2 films, got ${n}`);
  const layers = bnLayers(model);
  // Nothing is updated, so every layer's input can be measured in the same pass.
  const acc = layers.length ? await layerInputMoments(model, layers, pixels, n, size, batchSize) : [];
  return Object.fromEntries(
    layers.map((l, k) => [l.name, { mean: Array.from(acc[k].mean), variance: Array.from(acc[k].variance()) }]),
  );
}

/** The films of one class, copied out of a set of size × size images. */
function classPixels(pixels: Uint8Array, labels: ArrayLike<number>, size: number, cls: number): Uint8Array {
  const per = size * size;
  const idx = Array.from(labels, (l, i) => (l === cls ? i : -1)).filter((i) => i >= 0);
  const out = new Uint8Array(idx.length * per);
  idx.forEach((i, k) => out.set(pixels.subarray(i * per, (i + 1) * per), k * per));
  return out;
}

/**
 * The moments of a mixture of the classes' films, a share `pneumonia` of them PNEUMONIA: per channel, the
 * mixed mean, and the mixed second moment less its square (each film pools the same number of positions).
 */
export function mixStats(byClass: readonly [BnStats, BnStats], pneumonia: number): BnStats {
  const [a, b] = byClass;
  const w = [1 - pneumonia, pneumonia];
  const mean = a.mean.map((m, c) => w[0] * m + w[1] * b.mean[c]);
  const variance = a.mean.map((m, c) => {
    const second = w[0] * (a.variance[c] + m * m) + w[1] * (b.variance[c] + b.mean[c] * b.mean[c]);
    return Math.max(0, second - mean[c] * mean[c]);
  });
  return { mean, variance };
}

/** A member's reference for a site with this share of pneumonia films, every layer mixed. */
export function mixReference(byClass: readonly [Map<string, BnStats>, Map<string, BnStats>], pneumonia: number) {
  return new Map(
    [...byClass[0].keys()].map((name) => [
      name,
      mixStats([byClass[0].get(name) as BnStats, byClass[1].get(name) as BnStats], pneumonia),
    ]),
  );
}

export function saveBnReference(modelDir: string, ref: BnReference): void {
  const file = path.join(modelDir, BN_REFERENCE_FILE);
  writeFileAtomic(file, `${JSON.stringify(BnReference.parse(ref))}\n`);
}

/**
 * The reference statistics of each member (in `memberDirs` order), or null with the reason: no
 * file, an unreadable one, or one measured for other weights. `byClass`: each member's moments per
 * class and the validation films' share of pneumonia, or null for a format-1 file.
 */
export function loadBnReference(
  modelDir: string,
  memberDirs: readonly string[],
):
  | {
      members: Array<Map<string, BnStats>>;
      byClass: { members: Array<[Map<string, BnStats>, Map<string, BnStats>]>; pneumonia: number } | null;
      ref: BnReference;
    }
  | { members: null; problem: string } {
  const file = path.join(modelDir, BN_REFERENCE_FILE);
  if (!fs.existsSync(file)) return { members: null, problem: `${file} not found` };
  let parsed: ReturnType<typeof BnReference.safeParse>;
  try {
    parsed = BnReference.safeParse(JSON.parse(fs.readFileSync(file, 'utf8')));
  } catch (e) {
    return { members: null, problem: `${file}: ${(e as Error).message}` };
  }
  if (!parsed.success) return { members: null, problem: `${file}: ${parsed.error.issues[0]?.message ?? 'invalid'}` };
  const ref = parsed.data;
  if (ref.members.length !== memberDirs.length)
    return { members: null, problem: `${file} has ${ref.members.length} members, the model ${memberDirs.length}` };
  for (const [k, m] of ref.members.entries()) {
    if (m.weightsSha256 !== weightsDigest(memberDirs[k]))
      return { members: null, problem: `${file} was measured for other weights (member ${k + 1})` };
  }
  const counts = ref.films.byClass;
  const split = ref.members.map((m) => m.byClass);
  const byClass =
    counts && split.every((b) => b !== undefined)
      ? {
          members: split.map(
            (b) => b!.map((layers) => new Map(Object.entries(layers))) as [Map<string, BnStats>, Map<string, BnStats>],
          ),
          pneumonia: counts[1] / (counts[0] + counts[1]),
        }
      : null;
  return { members: ref.members.map((m) => new Map(Object.entries(m.layers))), byClass, ref };
}

/**
 * Measures every member of a loaded model on the films (the model's clean validation films) and
 * writes bn-reference.json into `modelDir`. `memberDirs`: the members' folders, in order.
 */
export async function writeBnReference(
  modelDir: string,
  members: readonly tfl.LayersModel[],
  memberDirs: readonly string[],
  films: {
    pixels: Uint8Array;
    n: number;
    size: number;
    source: string;
    fingerprint?: string;
    /** 0 NORMAL, 1 PNEUMONIA per film: the classes are measured apart too (when each has 2 films or more). */
    labels?: ArrayLike<number>;
  },
): Promise<BnReference> {
  const pneumonia = films.labels ? Array.from(films.labels).reduce((s, l) => s + (l === 1 ? 1 : 0), 0) : 0;
  const counts: [number, number] | null =
    films.labels && pneumonia >= 2 && films.n - pneumonia >= 2 ? [films.n - pneumonia, pneumonia] : null;
  const out: BnReference['members'] = [];
  for (const [k, m] of members.entries()) {
    const member = {
      dir: path.relative(modelDir, memberDirs[k]) || '.',
      weightsSha256: weightsDigest(memberDirs[k]),
    };
    if (counts && films.labels) {
      const labels = films.labels;
      const [normal, pneu] = [0, 1].map((c) => classPixels(films.pixels, labels, films.size, c));
      const byClass: [Record<string, BnStats>, Record<string, BnStats>] = [
        await measureBnStats(m, normal, counts[0], films.size),
        await measureBnStats(m, pneu, counts[1], films.size),
      ];
      // The pooled moments are the classes' mixed in the films' own proportion.
      const share = counts[1] / films.n;
      const layers = Object.fromEntries(
        Object.keys(byClass[0]).map((name) => [name, mixStats([byClass[0][name], byClass[1][name]], share)]),
      );
      out.push({ ...member, layers, byClass });
    } else {
      out.push({ ...member, layers: await measureBnStats(m, films.pixels, films.n, films.size) });
    }
  }
  const ref: BnReference = {
    format: BN_REFERENCE_FORMAT,
    films: {
      count: films.n,
      source: films.source,
      ...(films.fingerprint ? { fingerprint: films.fingerprint } : {}),
      ...(counts ? { byClass: counts } : {}),
    },
    members: out,
    createdAt: new Date().toISOString(),
  };
  saveBnReference(modelDir, ref);
  return ref;
}

/**
 * bn-reference.json for a model folder from its own validation films (the split cxr.json records,
 * under `dataRoot`); refused when the images there are not the ones the model was trained on.
 */
export async function writeBnReferenceFromData(
  modelDir: string,
  dataRoot: string,
  opts: { cacheDir?: string; progress?: boolean; log?: (line: string) => void } = {},
): Promise<BnReference> {
  const loaded = await loadModel(modelDir);
  try {
    const { meta } = loaded;
    const { val, info } = await loadRecordedSplit(dataRoot, meta, {
      cacheDir: opts.cacheDir,
      progress: opts.progress,
      warn: opts.log,
    });
    if (typeof meta.data.fingerprint === 'string' && meta.data.fingerprint !== info.fingerprint) {
      throw new Error(
        `the images under ${dataRoot} are not the ones ${modelDir} was trained on (split fingerprint differs)`,
      );
    }
    opts.log?.(`measuring batch-norm inputs on ${val.labels.length} validation films`);
    return await writeBnReference(modelDir, loaded.members, memberDirs(modelDir, meta), {
      pixels: val.pixels,
      n: val.labels.length,
      size: val.size,
      source: `validation split (split seed ${info.splitSeed})`,
      fingerprint: info.fingerprint,
      labels: val.labels,
    });
  } finally {
    for (const m of loaded.members) m.dispose();
  }
}
