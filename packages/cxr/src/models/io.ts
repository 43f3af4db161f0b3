// Saving and loading TF.js Layers models as plain files (model.json + weights.bin) without
// tfjs-node, plus cxr.json beside them. Saves are atomic: a killed process leaves either the
// old folder or the new one, never a half-written mix.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { z } from 'zod';
import { modelLoadError } from './load_error';
import { ModelMeta, parseMeta } from './metadata';
import { encodeFloat16 } from './weights_float16';
import { parseWeightsManifest, specsBytes, type WeightsManifest, weightFilesOf } from './weights_manifest';
import { makeDirs } from '../make_dirs';
import { HOST, makeTempDir, sweepStaleTemps } from './dir_swap';

const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';
/** What to do about a model folder whose files are missing or damaged. */
const COPY_AGAIN = 'copy the model folder again';

/** How weights are written: float32 as trained, or float16 (half the bytes; models/weights_float16.ts). */
export type WeightStorage = 'float32' | 'float16';

function fileSaver(dir: string, storage: WeightStorage): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      let weights =
        artifacts.weightData == null ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      let specs = artifacts.weightSpecs ?? [];
      if (storage === 'float16') ({ specs, data: weights } = encodeFloat16(specs, weights));
      const modelJson = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: specs }],
      };
      fs.writeFileSync(path.join(dir, WEIGHTS_BIN), Buffer.from(weights));
      fs.writeFileSync(path.join(dir, MODEL_JSON), JSON.stringify(modelJson));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  };
}

/**
 * Reads a TF.js Layers model folder (model.json + its weight shards) from disk. `remedy` is what a damaged file
 * tells the user to do: copy a model folder again, but delete a run's checkpoint to start over (its caller's).
 */
export function fileLoader(dir: string, remedy = COPY_AGAIN): tf.io.IOHandler {
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      const jsonPath = path.join(dir, MODEL_JSON);
      if (!fs.existsSync(jsonPath)) throw new Error(`${dir}: no ${MODEL_JSON} (not a TF.js model folder)`);
      const json = parseJsonText(fs.readFileSync(jsonPath, 'utf8'), jsonPath, remedy);
      const manifest = parseWeightsManifest(json, jsonPath, remedy);
      return tf.io.getModelArtifactsForJSON(json as tf.io.ModelJSON, async () => {
        const all = Buffer.concat(weightFilesOf(manifest).map((p) => readModelFile(dir, p, remedy)));
        const specs = manifest.flatMap((g) => g.weights);
        const expected = specsBytes(specs);
        if (all.byteLength !== expected) {
          throw new Error(
            `${dir}: the weight files hold ${all.byteLength} bytes where ${MODEL_JSON} describes ${expected} ` +
              `(truncated, or from another model): ${remedy}`,
          );
        }
        return [specs, all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)];
      });
    },
  };
}

/**
 * The weight manifest of the model folder `dir` (models/weights_manifest.ts): the weight files its model.json
 * names and the weights in them, or an error naming the file (missing, not JSON, no manifest) and `remedy`.
 */
export function readWeightsManifest(dir: string, remedy = COPY_AGAIN): WeightsManifest {
  const file = path.join(dir, MODEL_JSON);
  const text = readModelFile(dir, MODEL_JSON, remedy).toString('utf8');
  return parseWeightsManifest(parseJsonText(text, file, remedy), file, remedy);
}

/**
 * A file of a model folder (model.json, or a weight file it names), or an error that says the folder is
 * incomplete and what to do, as a truncated weights.bin is told (a bare "ENOENT: no such file or directory,
 * open 'm/weights.bin'" said neither).
 */
export function readModelFile(dir: string, name: string, remedy = COPY_AGAIN): Buffer {
  try {
    return fs.readFileSync(path.join(dir, name));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    throw new Error(
      `${dir}: no ${name}${name === MODEL_JSON ? '' : `, the weight file ${MODEL_JSON} names`} ` +
        `(the model folder is incomplete): ${remedy}`,
    );
  }
}

/** A JSON file, or an error naming it. */
export function parseJsonFile(file: string): unknown {
  return parseJsonText(fs.readFileSync(file, 'utf8'), file);
}

/** `remedy`, when given, says what to do about a file that is cut short or edited. */
function parseJsonText(text: string, file: string, remedy?: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    if (e instanceof SyntaxError)
      throw new Error(`${file}: not valid JSON (${e.message})${remedy ? `: ${remedy}` : ''}`);
    throw e;
  }
}

/**
 * A JSON file a run writes for itself (a checkpoint's state, the record of its data), checked against its
 * schema: null when it is not there, else an error that names the file (`what` it is), what is wrong with it
 * and `remedy`, what to do.
 */
export function readCheckedJson<T>(file: string, schema: z.ZodType<T>, what: string, remedy: string): T | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read ${file} (${what}): ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${file} (${what}) is not JSON (cut short, or edited?): ${remedy}`);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new Error(`${file} (${what}) is not valid (${where}${issue.message}): ${remedy}`);
  }
  return r.data;
}

/**
 * The weight files model.json (its bytes `json`) names: weights.bin in every folder cxr writes, but a folder
 * loads whatever its manifest names (a converted model's group1-shard1of1), and a digest of weights.bin alone
 * gave two such models with other weights one identity. Null when the manifest cannot be read.
 */
function namedWeightFiles(json: Buffer, file: string): string[] | null {
  try {
    return weightFilesOf(parseWeightsManifest(JSON.parse(json.toString('utf8')), file, COPY_AGAIN));
  } catch {
    return null;
  }
}

/**
 * sha256 of a member's model.json and the weight files it names (weights.bin): what a gate or reference
 * statistics were measured for.
 */
export function weightsDigest(memberDir: string): string {
  const h = crypto.createHash('sha256');
  const json = readModelFile(memberDir, MODEL_JSON);
  h.update(json);
  const files = namedWeightFiles(json, path.join(memberDir, MODEL_JSON)) ?? [WEIGHTS_BIN];
  for (const f of files) h.update(readModelFile(memberDir, f));
  return h.digest('hex');
}

/** sha256 over model.json, the weights it names and cxr.json of a folder: the model's identity in audit logs. */
export function modelDigest(dir: string): string {
  const h = crypto.createHash('sha256');
  const read = (f: string) => {
    const p = path.join(dir, f);
    return fs.existsSync(p) ? fs.readFileSync(p) : null;
  };
  const json = read(MODEL_JSON);
  if (json) h.update(json);
  // The same bytes as before for a folder whose model.json names weights.bin: its identity is unchanged.
  const files = (json && namedWeightFiles(json, path.join(dir, MODEL_JSON))) ?? [WEIGHTS_BIN];
  for (const f of [...files, 'cxr.json']) {
    const b = read(f);
    if (b) h.update(b);
  }
  return h.digest('hex');
}

export async function saveLayersModel(
  model: tfl.LayersModel,
  dir: string,
  storage: WeightStorage = 'float32',
): Promise<void> {
  makeDirs(dir);
  await model.save(fileSaver(dir, storage));
}

/**
 * Writes a cxr model (model.json, weights.bin, cxr.json) into `dir`, which may hold other files
 * (a run's logs and reports). Each file is renamed into place; cxr.json goes last, so a folder
 * with a cxr.json always has the weights it describes.
 */
export async function saveModel(
  model: tfl.LayersModel,
  dir: string,
  meta: ModelMeta,
  storage: WeightStorage = 'float32',
): Promise<void> {
  makeDirs(dir);
  // Named for its process, so that the next save sweeps one a kill left behind (a model folder is kept for good).
  sweepStaleTemps(dir, '.save-');
  const tmp = makeTempDir(path.join(dir, `.save-${HOST}-${process.pid}-`));
  try {
    await saveLayersModel(model, tmp, storage);
    fs.writeFileSync(path.join(tmp, 'cxr.json'), JSON.stringify(meta, null, 2) + '\n');
    for (const f of [WEIGHTS_BIN, MODEL_JSON, 'cxr.json']) fs.renameSync(path.join(tmp, f), path.join(dir, f));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export function readMeta(dir: string): ModelMeta {
  try {
    return readMetaFile(dir);
  } catch (e) {
    // A ModelLoadError with its code, as loadModel's (the package exports both): a plain Error had none to branch on.
    throw modelLoadError(dir, e);
  }
}

function readMetaFile(dir: string): ModelMeta {
  const p = path.join(dir, 'cxr.json');
  try {
    fs.accessSync(p, fs.constants.R_OK);
  } catch (e) {
    // existsSync says false for a folder this user may not enter, which is no reason to call it no model.
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw new Error(`${dir}: cannot read cxr.json (no permission)`);
    // A mistyped --model is no folder at all: "no cxr.json" would send the user looking inside it.
    const st = fs.statSync(dir, { throwIfNoEntry: false });
    // A relative path is read from the current directory, which a program's reader may not know: say which.
    if (!st) throw new Error(`${dir}: no such folder${path.isAbsolute(dir) ? '' : ` (${path.resolve(dir)})`}`);
    if (!st.isDirectory()) throw new Error(`${dir}: is a file, not a folder (give the model folder holding cxr.json)`);
    throw new Error(`${dir}: no cxr.json (not a cxr model folder)`);
  }
  return parseMeta(parseJsonFile(p), p);
}

/**
 * A run folder whose training was stopped while it finished: it has written its model (cxr.json) but not yet
 * fitted its not-a-chest-X-ray gate, so checkpoints/best, which the trainers remove once the gate is fitted, is
 * still there. Such a model answers, but without its gate or report: `cxr train --resume` finishes it.
 */
export function stoppedWhileFinishing(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'cxr.json')) && fs.existsSync(path.join(dir, 'checkpoints', 'best'));
}

export interface LoadedModel {
  dir: string;
  meta: ModelMeta;
  members: tfl.LayersModel[];
  sha256: string;
}

export function memberDirs(dir: string, meta: ModelMeta): string[] {
  return meta.members.length ? meta.members.map((m) => path.join(dir, m)) : [dir];
}

/**
 * A model folder's metadata and identity (the sha256 loadModel reports) without loading its
 * weights into the engine: what `cxr enqueue` needs to name the model its jobs are for.
 */
export function modelIdentity(dir: string): { meta: ModelMeta; sha256: string } {
  const meta = readMeta(dir);
  const h = crypto.createHash('sha256');
  for (const d of memberDirs(dir, meta)) h.update(modelDigest(d));
  h.update(fs.readFileSync(path.join(dir, 'cxr.json')));
  return { meta, sha256: h.digest('hex') };
}

/**
 * TF.js's own refusal of a member's model.json (a damaged topology, a weight it has no variable for, a shape that
 * differs) names neither the file nor what to do ("cxr: Shape mismatch: [3,3,1,24] vs. [216]"): it gets both.
 * fileLoader's errors, which start with the member's folder, and the system's (an errno code) pass unchanged.
 */
function namedByTfjs(memberDir: string, e: unknown): unknown {
  if (!(e instanceof Error) || (e as NodeJS.ErrnoException).code !== undefined) return e;
  // fileLoader names the folder as given or, joined to a file's name, normalised ('./m' as 'm/model.json').
  if ([memberDir, path.normalize(memberDir)].some((d) => e.message.startsWith(d))) return e;
  const file = path.join(memberDir, MODEL_JSON);
  // Its first line: some go on with a list of reasons meant for a TF.js developer, and a command fails in one line.
  const said = e.message.split('\n')[0].trim();
  return new Error(`${file}: not a model TF.js can load (${said}): ${COPY_AGAIN}`, { cause: e });
}

/** A model folder's members, loaded; a folder that cannot be loaded is a ModelLoadError (models/load_error.ts). */
export async function loadModel(dir: string): Promise<LoadedModel> {
  const members: tfl.LayersModel[] = [];
  try {
    const { meta, sha256 } = modelIdentity(dir);
    for (const d of memberDirs(dir, meta)) {
      members.push(await tfl.loadLayersModel(fileLoader(d)).catch((e: unknown) => Promise.reject(namedByTfjs(d, e))));
    }
    return { dir, meta, members, sha256 };
  } catch (e) {
    for (const m of members) m.dispose(); // the members loaded before the one that failed
    throw modelLoadError(dir, e);
  }
}

/**
 * A command's model folder (resolved) and data root: `data`, else the one recorded at training time if it still
 * exists (relative roots were relative to the working directory); required.
 */
export function modelAndDataRoot(modelDir: string, data?: string): { dir: string; root: string } {
  const dir = path.resolve(modelDir);
  if (data !== undefined) return { dir, root: data };
  const recorded = readMeta(dir).data.root;
  if (typeof recorded !== 'string') throw new Error(`${dir}: cxr.json records no data folder: pass --data`);
  // Folders trained elsewhere (the committed ones among them) record a path of that machine.
  if (!fs.existsSync(recorded)) {
    throw new Error(`${dir}: the data folder cxr.json records (${recorded}) is not here: pass --data`);
  }
  return { dir, root: recorded };
}
