// Reference batch-norm statistics of a model folder (bn-reference.json): for every member and
// batch-norm layer, the pooled per-channel mean and variance of the layer's input over the model's
// clean validation films, in inference mode. `cxr adapt` adapts relative to them (adapt/bn_stats.ts):
// a site whose films look like these validation films leaves the model unchanged. Written by
// training, `cxr ensemble` and `cxr adapt-reference`; valid only for the weights it was measured
// on (each member's weights digest is recorded and checked).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { loadRecordedSplit } from '../data/dataset_images';
import { bnLayers, layerInputMoments } from './bn_moments';
import { loadModel, memberDirs, weightsDigest } from './io';

export const BN_REFERENCE_FILE = 'bn-reference.json';
export const BN_REFERENCE_FORMAT = 'cxr-bn-reference/1';

const Stats = z.object({ mean: z.array(z.number()), variance: z.array(z.number().nonnegative()) }).strict();
export type BnStats = z.infer<typeof Stats>;

const Member = z
  .object({
    dir: z.string(),
    /** weightsDigest of the member's folder when measured. */
    weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
    layers: z.record(z.string(), Stats),
  })
  .strict();

export const BnReference = z
  .object({
    format: z.literal(BN_REFERENCE_FORMAT),
    /** The films measured: how many, from where, and their split. */
    films: z
      .object({ count: z.number().int().min(2), source: z.string(), fingerprint: z.string().optional() })
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

export function saveBnReference(modelDir: string, ref: BnReference): void {
  const file = path.join(modelDir, BN_REFERENCE_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${JSON.stringify(BnReference.parse(ref))}\n`);
  fs.renameSync(tmp, file);
}

/**
 * The reference statistics of each member (in `memberDirs` order), or null with the reason: no
 * file, an unreadable one, or one measured for other weights.
 */
export function loadBnReference(
  modelDir: string,
  memberDirs: readonly string[],
): { members: Array<Map<string, BnStats>>; ref: BnReference } | { members: null; problem: string } {
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
  return { members: ref.members.map((m) => new Map(Object.entries(m.layers))), ref };
}

/**
 * Measures every member of a loaded model on the films (the model's clean validation films) and
 * writes bn-reference.json into `modelDir`. `memberDirs`: the members' folders, in order.
 */
export async function writeBnReference(
  modelDir: string,
  members: readonly tfl.LayersModel[],
  memberDirs: readonly string[],
  films: { pixels: Uint8Array; n: number; size: number; source: string; fingerprint?: string },
): Promise<BnReference> {
  const out: BnReference['members'] = [];
  for (const [k, m] of members.entries()) {
    out.push({
      dir: path.relative(modelDir, memberDirs[k]) || '.',
      weightsSha256: weightsDigest(memberDirs[k]),
      layers: await measureBnStats(m, films.pixels, films.n, films.size),
    });
  }
  const ref: BnReference = {
    format: BN_REFERENCE_FORMAT,
    films: { count: films.n, source: films.source, ...(films.fingerprint ? { fingerprint: films.fingerprint } : {}) },
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
    });
  } finally {
    for (const m of loaded.members) m.dispose();
  }
}
