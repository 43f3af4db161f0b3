// `cxr ensemble`: several trained models as one model folder. Inference already averages the
// logits of the sub-folders that cxr.json lists under `members` (models/infer.ts); what is new
// here is choosing the ensemble's own temperature and operating points, on the validation split
// the members share (an average of calibrated members is not calibrated, and its thresholds are
// not theirs). Members trained on different splits would leak validation images into training,
// so they are refused (ensemble_members.ts: which members may be combined).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadOod, OOD_FILE, saveOod } from '../explain/ood';
import { fitOodFromSets } from '../explain/ood_fit';
import { bnLayers } from '../models/bn_moments';
import { writeModelCard } from '../models/card';
import { loadModel, type LoadedModel, saveLayersModel, type WeightStorage } from '../models/io';
import { writeDirAtomic } from '../models/dir_swap';
import { type EnsembleRecord, MODEL_FORMAT, type ModelMeta, parseMeta } from '../models/metadata';
import { roundWeightsToFloat16 } from '../models/weights_float16';
import { type Calibration, calibrateOnValidation, writeValidationFiles } from './calibrate';
import { noGateLine, writeValidationReference } from './finish';
import { temperatureBoundNote } from '../eval/calibration';
import { loadTrainVal, recordedSplit } from '../data/dataset_images';
import type { ImageSet } from '../data/images';
import { makeDirs } from '../make_dirs';
import { checkMembers, EnsembleRefused, membersDataRoot, weightFiles } from './ensemble_members';

// Where the callers of `cxr ensemble` (and the soup) have always found them.
export { checkMembers, EnsembleRefused, splitDifference } from './ensemble_members';

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
  // Absolute, so that the ensemble's own cxr.json records a folder found from anywhere.
  const root = path.resolve(membersDataRoot(first, o.data));
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
