// `cxr ensemble`: several trained models as one model folder. Inference already averages the
// logits of the sub-folders that cxr.json lists under `members` (models/infer.ts); what is new
// here is choosing the ensemble's own temperature and operating points, on the validation split
// the members share (an average of calibrated members is not calibrated, and its thresholds are
// not theirs). Members trained on different splits would leak validation images into training,
// so they are refused.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadOod, OOD_FILE, saveOod } from '../explain/ood';
import { fitOodFromSets } from '../explain/ood_fit';
import { bnLayers } from '../models/bn_moments';
import { writeModelCard } from '../models/card';
import {
  loadModel,
  type LoadedModel,
  parseJsonFile,
  readMeta,
  readModelFile,
  saveLayersModel,
  type WeightStorage,
  writeDirAtomic,
} from '../models/io';
import { type EnsembleRecord, MODEL_FORMAT, type ModelMeta, parseMeta } from '../models/metadata';
import { roundWeightsToFloat16 } from '../models/weights_float16';
import { type Calibration, calibrateOnValidation, writeValidationFiles } from './calibrate';
import { noGateLine, writeValidationReference } from './finish';
import { temperatureBoundNote } from '../eval/calibration';
import { loadTrainVal, recordedSplit } from '../data/dataset_images';
import type { ImageSet } from '../data/images';
import { makeDirs } from '../make_dirs';

export interface EnsembleOptions {
  members: string[];
  outDir: string;
  name?: string;
  /** Data root holding train/ (default: the one the members recorded, if it exists). */
  data?: string;
  cacheDir?: string;
  /** 'float16' stores the members in half precision (half the bytes), calibrated as stored. */
  weights?: WeightStorage;
  command?: string;
  log?: (line: string) => void;
  /** Fit (or copy) the not-a-chest-X-ray gate (default true); false: `cxr train --seeds ... --no-gate`. */
  gate?: boolean;
}

export class EnsembleRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnsembleRefused';
  }
}

/** The split a member was validated on, as one comparable value. */
function splitKey(meta: ModelMeta): string {
  const s = recordedSplit(meta);
  return JSON.stringify({
    fingerprint: meta.data.fingerprint ?? null,
    valFraction: s.valFraction ?? null,
    seed: s.seed ?? null,
    valSplit: s.valSplit,
    limitPerClass: s.limitPerClass,
  });
}

const short = (fingerprint: unknown) => (typeof fingerprint === 'string' ? `${fingerprint.slice(0, 8)}…` : 'none');

/**
 * How two members' validation splits differ, in words, and the `cxr train` options that make them one.
 * The fingerprint hashes the split's films, so it differs whenever anything else does: it is named only
 * when nothing else explains it (other films in the data folder, or another folder).
 */
export function splitDifference(a: ModelMeta, b: ModelMeta): { what: string[]; fix: string[] } {
  const [sa, sb] = [recordedSplit(a), recordedSplit(b)];
  const what: string[] = [];
  const fix: string[] = [];
  if (sa.seed !== sb.seed) {
    // Models from before split seeds were recorded have none: say so rather than print "undefined".
    const seed = (x: number | undefined) => (x === undefined ? 'an unrecorded seed' : `seed ${x}`);
    const both = sa.seed !== undefined && sb.seed !== undefined;
    what.push(both ? `split with seeds ${sa.seed} and ${sb.seed}` : `split with ${seed(sa.seed)} and ${seed(sb.seed)}`);
    fix.push(sa.seed === undefined ? 'one --split-seed for both (retrain both)' : `--split-seed ${sa.seed}`);
  }
  if (sa.valFraction !== sb.valFraction) {
    what.push(`validation fractions ${sa.valFraction} and ${sb.valFraction}`);
    // cxr train has no option for it: the fraction is the recipe's.
    fix.push(`the same --recipe (its validation fraction is ${sa.valFraction})`);
  }
  if (sa.valSplit !== sb.valSplit) {
    what.push(`validation patients chosen ${sa.valSplit} and ${sb.valSplit}`);
    fix.push(`--val-split ${sa.valSplit}`);
  }
  if (sa.limitPerClass !== sb.limitPerClass) {
    const films = (n: number) => (n > 0 ? `at most ${n}` : 'all');
    what.push(`${films(sa.limitPerClass)} and ${films(sb.limitPerClass)} training films per class`);
    fix.push(`--limit-per-class ${sa.limitPerClass}`);
  }
  if (what.length === 0) {
    const [ra, rb] = [a.data.root, b.data.root];
    const where = typeof ra === 'string' && typeof rb === 'string' && ra !== rb ? ` (${ra} and ${rb})` : '';
    what.push(
      `different data${where}: split fingerprints ${short(a.data.fingerprint)} and ${short(b.data.fingerprint)}`,
    );
    fix.push('the same --data folder, with the same films');
  }
  return { what, fix };
}

/** Refuses members that cannot be averaged or calibrated together; returns their metadata. */
export function checkMembers(dirs: string[]): ModelMeta[] {
  if (dirs.length < 2) throw new EnsembleRefused(`an ensemble needs at least 2 members, got ${dirs.length}`);
  for (const d of dirs) {
    if (!fs.existsSync(path.join(d, 'cxr.json')))
      throw new EnsembleRefused(`${d}: not a cxr model folder (no cxr.json there)`);
  }
  // By what the members are, not how they are named: a symlink or a copy of a member is the same member.
  const seen = new Map<string, string>();
  for (const d of dirs) {
    const digest = memberWeightsDigest(d);
    for (const key of [`path:${fs.realpathSync(d)}`, ...(digest ? [`weights:${digest}`] : [])]) {
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        throw new EnsembleRefused(
          `the same member is named twice: ${d} is ${key.startsWith('path') ? '' : 'a copy of '}${earlier}`,
        );
      }
      seen.set(key, d);
    }
  }
  const metas = dirs.map((d) => {
    const m = readMeta(d);
    if (m.members.length) throw new EnsembleRefused(`${d} is itself an ensemble: name its members instead`);
    return m;
  });
  const [first] = metas;
  // Compared field by field in a fixed order; an absent normalisation is 'none' (older cxr.json files).
  // `inModel` describes a step inside the member's own graph (a backbone's RGB scaling), not what a caller
  // feeds it, so a backbone member and a from-scratch member take the same input.
  const prep = (m: ModelMeta) => {
    const { inModel: _inside, ...outside } = m.preprocessing;
    const p: Record<string, unknown> = { ...outside, normalize: m.preprocessing.normalize ?? 'none' };
    const sorted = Object.fromEntries(
      Object.keys(p)
        .sort()
        .map((k) => [k, p[k]]),
    );
    return JSON.stringify({ inputSize: m.inputSize, preprocessing: sorted, classNames: m.classNames });
  };
  metas.forEach((m, i) => {
    if (prep(m) !== prep(first)) {
      throw new EnsembleRefused(
        `members differ in input: ${dirs[0]} takes ${prep(first)}, ${dirs[i]} takes ${prep(m)}; ` +
          'members must share input size, preprocessing and classes',
      );
    }
  });
  for (const [i, m] of metas.entries()) {
    const s = recordedSplit(m);
    if (typeof m.data.fingerprint !== 'string' || s.valFraction === undefined || s.seed === undefined) {
      throw new EnsembleRefused(
        `${dirs[i]}: cxr.json does not record its validation split (data fingerprint, valFraction, seed)`,
      );
    }
    if (splitKey(m) !== splitKey(first)) {
      const { what, fix } = splitDifference(first, m);
      throw new EnsembleRefused(
        `${dirs[0]} and ${dirs[i]} were validated on different splits (${what.join('; ')}): ` +
          "the ensemble's temperature and thresholds need one validation split that no member trained on; " +
          `retrain ${dirs[i]} to match ${dirs[0]}: ${fix.join(', ')} ` +
          '(or train the members together: cxr train --seeds A B C --split-seed N)',
      );
    }
  }
  return metas;
}

/** The weight files model.json names (an ensemble's own model.json names none: refused later). */
function weightFiles(dir: string): string[] {
  const file = path.join(dir, 'model.json');
  if (!fs.existsSync(file)) return [];
  const json = parseJsonFile(file) as { weightsManifest?: unknown } | null;
  const manifest = json?.weightsManifest ?? [];
  const paths = (g: unknown) => (g as { paths?: unknown } | null)?.paths;
  const isNames = (p: unknown) => Array.isArray(p) && p.every((f) => typeof f === 'string');
  if (!Array.isArray(manifest) || !manifest.every((g) => isNames(paths(g))))
    throw new EnsembleRefused(
      `${file}: not a TF.js model.json (its weightsManifest does not list weight files): copy the model folder again`,
    );
  const files = manifest.flatMap((g) => paths(g) as string[]);
  for (const f of files) {
    if (path.isAbsolute(f) || f.split(/[\\/]/).includes('..'))
      throw new EnsembleRefused(`${dir}/model.json names a weight file outside its folder: ${f}`);
  }
  return files;
}

/** sha256 over a member's weight files (two members with equal digests are one model); '' without any. */
function memberWeightsDigest(dir: string): string {
  const files = weightFiles(dir);
  if (!files.length) return '';
  const h = crypto.createHash('sha256');
  for (const f of files) h.update(readModelFile(dir, f));
  return h.digest('hex');
}

/** The files of a member model (model.json and the weight files it names), copied byte for byte. */
function copyMember(from: string, to: string): void {
  makeDirs(to);
  for (const f of ['model.json', ...weightFiles(from)]) fs.copyFileSync(path.join(from, f), path.join(to, f));
  copyMemberMeta(from, to);
}

/** A member's own cxr.json, kept beside its weights for provenance. */
function copyMemberMeta(from: string, to: string): void {
  if (fs.existsSync(path.join(from, 'cxr.json')))
    fs.copyFileSync(path.join(from, 'cxr.json'), path.join(to, 'cxr.json'));
}

/** A member rounded to float16, written in half precision, with its own cxr.json for provenance. */
async function saveHalfMember(model: LoadedModel['members'][number], from: string, to: string): Promise<void> {
  await saveLayersModel(model, to, 'float16');
  copyMemberMeta(from, to);
}

/** What both ways of combining members start from: their metadata, the output folder and their shared split. */
export interface PreparedMembers {
  metas: ModelMeta[];
  first: ModelMeta;
  out: string;
  root: string;
  tta: ModelMeta['tta'];
  train: ImageSet;
  val: ImageSet;
  info: Awaited<ReturnType<typeof loadTrainVal>>['info'];
}

/** Checks the members and the output folder, and loads the members' shared training and validation split. */
export async function prepareMembers(o: EnsembleOptions): Promise<PreparedMembers> {
  const log = o.log ?? (() => {});
  const metas = checkMembers(o.members);
  const out = path.resolve(o.outDir);
  if (o.members.some((d) => path.resolve(d) === out) || (fs.existsSync(out) && fs.readdirSync(out).length > 0)) {
    throw new EnsembleRefused(
      `--out ${o.outDir} already exists and is not empty (or is a member): choose a new folder`,
    );
  }
  const first = metas[0];
  const recordedRoot =
    typeof first.data.root === 'string' && fs.existsSync(first.data.root) ? first.data.root : undefined;
  const root = o.data ?? recordedRoot;
  if (!root)
    throw new EnsembleRefused("the members' recorded data folder is not here: pass --data (the folder holding train/)");
  const tta = first.tta;
  metas.forEach((m, i) => {
    if (JSON.stringify(m.tta) !== JSON.stringify(tta))
      log(`note: ${o.members[i]} used test-time views [${m.tta}]; the combined model uses the first member's [${tta}]`);
  });

  const split = recordedSplit(first);
  const { train, val, info } = await loadTrainVal(root, {
    ...split,
    valFraction: split.valFraction!,
    seed: split.seed!,
    size: first.inputSize,
    normalize: first.preprocessing.normalize,
    cacheDir: o.cacheDir,
    warn: log,
  });
  if (info.fingerprint !== first.data.fingerprint) {
    throw new EnsembleRefused(
      `the images under ${root} are not the ones the members were trained on (split fingerprint differs)`,
    );
  }
  return { metas, first, out, root, tta, train, val, info };
}

/** The ensemble record's member rows: where each member came from and what it was. */
export function memberRows(o: EnsembleOptions, metas: ModelMeta[], loaded: LoadedModel[], dirs: (string | null)[]) {
  return metas.map((m, i) => ({
    dir: dirs[i],
    from: path.resolve(o.members[i]),
    name: m.name,
    version: m.version,
    arch: m.arch,
    sha256: loaded[i].sha256,
    validationAuc: typeof m.validation?.auc === 'number' ? m.validation.auc : null,
  }));
}

/** cxr.json of a model combined from members: the first member's input, the new calibration and record. */
export function combinedMeta(
  p: Pick<PreparedMembers, 'metas' | 'first' | 'root'>,
  c: Calibration,
  o: { name: string; arch: string; members: string[]; record: EnsembleRecord },
): ModelMeta {
  const { first, root } = p;
  const createdAt = new Date().toISOString();
  return parseMeta(
    {
      format: MODEL_FORMAT,
      name: o.name,
      version: createdAt.replace(/[-:]/g, '').slice(0, 15),
      arch: o.arch,
      inputSize: first.inputSize,
      preprocessing: first.preprocessing,
      classNames: first.classNames,
      temperature: c.temperature,
      logitBias: c.bias,
      operatingPoints: c.operatingPoints,
      defaultOperatingPoint: Object.hasOwn(c.operatingPoints, first.defaultOperatingPoint)
        ? first.defaultOperatingPoint
        : 'balanced',
      tta: first.tta,
      members: o.members,
      recipe: {},
      // The members' subset limit too: the ensemble has no recipe that would say it.
      data: { ...first.data, root, limitPerClass: recordedSplit(first).limitPerClass },
      validation: { ...c.metrics },
      ensemble: o.record,
      createdAt,
    },
    `${o.record.method === 'weight-soup' ? 'soup' : 'ensemble'} cxr.json`,
  );
}

export async function buildEnsemble(o: EnsembleOptions): Promise<ModelMeta> {
  const log = o.log ?? (() => {});
  const { metas, first, out, root, tta, train, val, info } = await prepareMembers(o);
  const loaded: LoadedModel[] = [];
  try {
    for (const d of o.members) loaded.push(await loadModel(d));
    const members = loaded.map((l) => l.members[0]);
    const half = o.weights === 'float16';
    if (half) for (const m of members) roundWeightsToFloat16(m);
    log(`calibrating ${members.length} members together on ${val.labels.length} validation images`);
    const c = await calibrateOnValidation(members, val, tta);
    const dirs = members.map((_, i) => `m${i + 1}`);
    const record: EnsembleRecord = {
      method: 'mean-logit',
      members: memberRows(o, metas, loaded, dirs),
      ...(half ? { weights: 'float16' as const } : {}),
    };
    const meta = combinedMeta({ metas, first, root }, c, {
      name: o.name ?? `ensemble-${metas.map((m) => m.name).join('+')}`,
      arch: `ensemble(${metas.map((m) => m.arch).join(', ')})`,
      members: dirs,
      record,
    });
    await writeDirAtomic(out, async (tmp) => {
      for (const [i, d] of o.members.entries()) {
        if (!half) copyMember(d, path.join(tmp, dirs[i]));
        else await saveHalfMember(members[i], d, path.join(tmp, dirs[i]));
      }
      // The gate reads member 0's features: its ood.json still fits copied weights byte for byte
      // (rounded ones are other weights, so the gate is fitted again on them).
      const gate = loadOod(o.members[0], o.members[0]);
      if (o.gate === false) {
        log(noGateLine(out));
      } else if (!half && gate.model && gate.model.member === 0) {
        fs.copyFileSync(path.join(o.members[0], OOD_FILE), path.join(tmp, OOD_FILE));
      } else {
        log(`fitting the OOD gate on the first member's features (${train.labels.length} training images)`);
        saveOod(
          tmp,
          await fitOodFromSets(members[0], train, val, {
            memberDir: path.join(tmp, dirs[0]),
            normalize: meta.preprocessing.normalize,
            fitted: { ...info },
          }),
        );
      }
      fs.writeFileSync(path.join(tmp, 'cxr.json'), JSON.stringify(meta, null, 2) + '\n');
      if (members.some((m) => bnLayers(m).length > 0)) {
        log(
          `measuring the members' batch-norm inputs on the ${val.labels.length} validation films (bn-reference.json)`,
        );
        await writeValidationReference({
          model: members[0],
          members,
          dirs: dirs.map((d) => path.join(tmp, d)),
          val,
          outDir: tmp,
          dataInfo: info,
        });
      }
      writeModelCard(tmp, meta, o.command);
      writeValidationFiles(tmp, root, val.files, c);
    });
    log(
      `ensemble written to ${o.outDir}: ` +
        `validation AUC ${c.metrics.auc?.toFixed(4) ?? 'n/a'}, T=${c.temperature.toFixed(3)}, ` +
        `screening ${c.operatingPoints.screening.threshold.toFixed(3)}, ` +
        `balanced ${c.operatingPoints.balanced.threshold.toFixed(3)}`,
    );
    const note = temperatureBoundNote(c.temperature);
    if (note) log(note);
    return meta;
  } finally {
    for (const l of loaded) l.members.forEach((m) => m.dispose());
  }
}
