// `cxr evaluate`: a saved model on a labelled folder, at an operating point chosen on validation.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type LoadedModel, loadModel, modelIdentity } from '../models/io';
import type { ModelMeta } from '../models/metadata';
import { calibrated, predictAllLogits } from '../models/infer';
import { loadImageSet, splitRecords } from '../data/dataset_images';
import { filesRelativeTo } from '../data/images';
import { DecodeError, decodeFile } from '../data/decode';
import { type GroupRow, metricsByGroup } from '../eval/groups';
import { evaluate } from '../eval/metrics';
import { isTrainingRoot, validationRecords } from '../robustness/images';
import { periodGrouper } from '../data/period_balance';
import { parsePatient } from '../data/patients';
import {
  describeModel,
  type EvaluatedModel,
  evaluatedModel,
  type Metrics,
  type SetAsideFiles,
  storedOrigin,
} from '../eval/metrics_schema';
import { makeOutputDir } from '../make_dirs';
import { sameFilms } from './films_source';
import { repoRoot } from '../paths';
import { type OverlapRecord, overlapRecord, overlapRelativeTo } from '../eval/training_overlap';
import type { ImageRecord } from '../data/dataset';
import {
  dicomPaths,
  type PipelineStatus,
  type PipelineSummary,
  pipelineAnswers,
  type PipelineRun,
  readFailure,
  summarise,
} from './evaluate_pipeline';

/**
 * Names a run folder keeps for its own split: training writes metrics/val.json (the patient-level
 * validation split every threshold was chosen on). An evaluation never writes over them.
 */
const RUN_OWN_SPLITS = new Set(['val', 'train', 'validation']);

/** The split name that, on a training root, means the model's own recorded validation split. */
export const VALIDATION_SPLIT = 'validation';

/** The file name (without .json) an evaluation of `split` is written under in predictions/ and metrics/. */
export function evaluationFileName(split: string): string {
  return RUN_OWN_SPLITS.has(split) ? `eval-${split}` : split;
}

export interface EvaluateRunOptions {
  modelDir: string;
  data: string;
  split?: string;
  operatingPoint?: string;
  /** Also report metrics per group of file names (eval/groups.ts). */
  groups?: RegExp;
  /**
   * Group by series and sparse or dense stretch of patient numbers instead (data/period_balance.ts),
   * the stretches counted over the whole training folder for `--split validation`, else over the set.
   */
  periodGroups?: boolean;
  out?: string;
  /**
   * Write over an evaluation of other films that `out` holds under the same name (without it that is refused,
   * as `cxr experiments --overwrite` is needed to train over a folder's runs).
   */
  overwrite?: boolean;
  progress?: boolean;
  warn?: (line: string) => void;
  /** Told each file written under `out`. */
  wrote?: (file: string) => void;
  /**
   * Told the split's name and its films as a metrics file records them once they are known, before any film is
   * scored: `cxr compare --out` refuses a folder it must not write into before minutes of scoring, not after.
   */
  beforeScoring?: (split: string, storedSource: string) => void;
  /** Told each scored film's label and probability (`cxr compare` pairs two models' on the same films). */
  scored?: (films: ScoredFilms) => void;
}

/** The films an evaluation scored, in one order: its headline metrics are of these. */
export interface ScoredFilms {
  /** The split's name as the evaluation writes it: test, all, validation (the model's own), ... */
  split: string;
  files: string[];
  labels: number[];
  probs: number[];
}

/** A file of the folder that no reader could read: in no count, metric or verdict of the evaluation. */
export interface UnreadableFile {
  file: string;
  /** Why, as the reader says it: the prediction pipeline's (JPEG, PNG, DICOM), or training's on its own split. */
  error: string;
}

export type EvaluationResult = Metrics &
  PipelineSummary & {
    /**
     * The files left out because they could not be read (not in `n`; not `verdicts.refused`, which counts
     * films the evaluation read and scored that the pipeline would still answer with an input error).
     */
    unreadable: { count: number; files: UnreadableFile[] };
    /**
     * The films read and scored (in the headline metrics) that the pipeline would not assess, each with the status
     * and the reasons `cxr predict` would give it: what `verdicts` counts apart from `assessed`, film by film.
     */
    setAside: SetAsideFiles;
    operatingPoint: string;
    model: EvaluatedModel;
    source: string;
    /**
     * The not-a-chest-X-ray gate the pipeline's verdicts went through; null where the model has none usable (no
     * ood.json, a corrupt one, one of other weights): then only the image checks make a film "cannot assess".
     */
    oodGate: PipelineRun['oodGate'];
    /**
     * What limits the pipeline's answers (the gate off and why, a run that did not finish), also said on stderr
     * (`pipelineNotes`), then the metrics' own notes (why a rate is n/a).
     */
    notes: string[];
    /** The notes of the pipeline alone: said on stderr as they are found, so the table need not repeat them. */
    pipelineNotes: string[];
    /** Films the model trained on (or was validated on) among these: the figures are optimistic; see the type. */
    trainingOverlap: OverlapRecord;
    groups?: GroupRow[];
  };

export async function runEvaluation(o: EvaluateRunOptions): Promise<EvaluationResult> {
  const loaded = await loadModel(o.modelDir);
  // Freed once scored, and on every refusal before that (an unknown operating point, an --out it must not write,
  // no films): a program calling runEvaluation kept the whole model's tensors for each call that rejected.
  let freed = false;
  const free = () => {
    if (!freed) loaded.members.forEach((m) => m.dispose());
    freed = true;
  };
  try {
    return await evaluateLoaded(o, loaded, free);
  } finally {
    free();
  }
}

async function evaluateLoaded(o: EvaluateRunOptions, loaded: LoadedModel, free: () => void): Promise<EvaluationResult> {
  const { meta } = loaded;
  const model: EvaluatedModel = { name: meta.name, version: meta.version, sha256: loaded.sha256 };
  if (o.out) checkOutFolder(o.out, model, o.modelDir);
  const opName = o.operatingPoint ?? meta.defaultOperatingPoint;
  // Its own points only: 'toString' or '__proto__' found Object's and scored at a threshold of undefined (0.5).
  const op = Object.hasOwn(meta.operatingPoints, opName) ? meta.operatingPoints[opName] : undefined;
  if (!op)
    throw new Error(`model has no operating point '${opName}' (has: ${Object.keys(meta.operatingPoints).join(', ')})`);
  // `--split validation` on a training root: the patient-level split the model was calibrated on.
  const ownValidation = o.split === VALIDATION_SPLIT && isTrainingRoot(o.data);
  // No folder is named `validation` (data/dataset.ts SPLIT_NAMES): elsewhere it could only fail as "no images".
  if (o.split === VALIDATION_SPLIT && !ownValidation) throw notTrainingRoot(o.data, meta);
  // `folder`: what patient-number stretches are counted over (the whole training folder for the own split).
  const { records, source, folder } = ownValidation
    ? await validationRecords(o.data, meta, { warn: o.warn })
    : await splitRecords(o.data, o.split, { warn: o.warn }).then((r) => ({
        records: r,
        source: `${o.data} (${r[0].split})`,
        folder: r,
      }));
  const split = ownValidation ? VALIDATION_SPLIT : records[0].split;
  // The films as the --out metrics file records them: the real path, the same whichever way --data named it.
  const storedSource = `${fs.realpathSync(o.data)} (${split})`;
  if (o.out) checkEarlierEvaluation(o, evaluationFileName(split), storedSource, model);
  o.beforeScoring?.(split, storedSource);
  // The model's own split holds what training read (JPEG and PNG, train/data_check.ts checkData); any other
  // folder's DICOM films are scored too, read as a prediction reads them.
  const dicom = ownValidation ? new Set<string>() : await dicomPaths(records);
  const images = records.filter((r) => !dicom.has(r.path));
  const probOf = new Map<string, number>();
  if (images.length > 0) {
    const set = await loadImageSet(images, split, {
      size: meta.inputSize,
      normalize: meta.preprocessing.normalize,
      progress: o.progress,
      // No line per file the cache cannot read: such a file is read again below by the reader the
      // evaluation stands for, and listed under `unreadable` with what that reader says of it.
      warn: () => {},
    });
    const logits = await predictAllLogits(loaded.members, set.pixels, set.labels.length, set.size, { tta: meta.tta });
    calibrated(logits, meta.temperature, meta.logitBias).forEach((p, i) => probOf.set(set.files[i], p));
  }
  free();

  // Every film goes through the pipeline, those the cache could not read too (but on the model's own split,
  // which holds only what training read): the pipeline reads DICOM, and says why it cannot read a file.
  const screened = ownValidation ? records.filter((r) => probOf.has(r.path)) : records;
  const pipelineRun = await pipelineAnswers(
    o.modelDir,
    screened.map((r) => r.path),
    { operatingPoint: opName, progress: o.progress },
  );
  const { answers } = pipelineRun;
  const notes = pipelineRun.notes;
  for (const n of notes) o.warn?.(`note: ${n}`);
  const answerOf = new Map(screened.map((r, i) => [r.path, answers[i]] as const));
  const films: { record: ImageRecord; prob: number; status: PipelineStatus; reasons: string[] }[] = [];
  const unreadable: UnreadableFile[] = [];
  for (const record of records) {
    const a = answerOf.get(record.path);
    // The cache's probability where it read the film: the headline metrics are what they always were.
    // But a film the file system no longer gives (deleted, its permission or its share gone while the
    // evaluation ran) is unreadable, though the cache read it a moment before: no verdict can be had of it.
    const unread = a && 'unread' in a;
    const prob = unread
      ? undefined
      : (probOf.get(record.path) ?? (a && 'probability' in a ? a.probability : undefined));
    if (prob === undefined) {
      const error = a && 'error' in a ? a.error : await trainingReaderError(record.path);
      o.warn?.(`warning: skipping ${record.path}: ${error}`);
      unreadable.push({ file: record.path, error });
      continue;
    }
    if (a && 'error' in a) o.warn?.(`warning: the prediction pipeline cannot read ${record.path}: ${a.error}`);
    // A film the pipeline refuses has its input error for a reason, as `cxr predict` would print it.
    const verdict =
      a && 'status' in a ? a : { status: 'refused' as const, reasons: a && 'error' in a ? [a.error] : [] };
    films.push({ record, prob, status: verdict.status, reasons: verdict.reasons });
  }
  if (films.length === 0) {
    const why = unreadable.length ? ` (${unreadable.length} could not be read, e.g. ${unreadable[0].error})` : '';
    throw new Error(`${o.data}: no readable images${why}`);
  }
  const files = films.map((f) => f.record.path);
  const labels = films.map((f) => f.record.label as number);
  const probs = films.map((f) => f.prob);
  const statuses = films.map((f) => f.status);
  const metrics = evaluate(labels, probs, { threshold: op.threshold });
  const pipeline = summarise(statuses, labels, probs, op.threshold);
  o.scored?.({ split, files, labels, probs });
  // The model's own validation split is asked for by name: what it holds is no surprise to warn of.
  const overlap = ownValidation ? null : await overlapRecord(meta, files, o.data, repoRoot());
  if (overlap) o.warn?.(overlap.warning);
  const setAside = films.flatMap(({ record, status, reasons }) =>
    status === 'assessed' ? [] : [{ file: record.path, status, reasons }],
  );
  if (o.out) {
    const name = evaluationFileName(split);
    makeOutputDir(path.join(o.out, 'predictions'), '--out');
    makeOutputDir(path.join(o.out, 'metrics'), '--out');
    const predictionsFile = path.join(o.out, 'predictions', `${name}.json`);
    const metricsFile = path.join(o.out, 'metrics', `${name}.json`);
    // Each file says which model made it: a folder's report, and calibrate's restating, check it is their own.
    const predictions = { files: filesRelativeTo(o.data, files), labels, probs, verdicts: statuses, model };
    fs.writeFileSync(predictionsFile, JSON.stringify(predictions));
    // The films no reader could read are in no count: recorded, so that the folder's report says what it left out.
    const skipped = unreadable.map((u) => ({ ...u, file: filesRelativeTo(o.data, [u.file])[0] }));
    // So are the films the pipeline would not assess, with why: the folder's report says which they are.
    const aside = setAside.map((f) => ({ ...f, file: filesRelativeTo(o.data, [f.file])[0] }));
    // Which films and which point: a later evaluation of other films is not written over it unasked.
    const origin = { source: storedSource, operatingPoint: opName };
    const stored = {
      ...metrics,
      ...origin,
      unreadable: { count: skipped.length, files: skipped },
      setAside: { count: aside.length, files: aside },
      trainingOverlap: overlapRelativeTo(overlap, o.data),
      model,
    };
    fs.writeFileSync(metricsFile, JSON.stringify(stored, null, 2) + '\n');
    o.wrote?.(predictionsFile);
    o.wrote?.(metricsFile);
    // A split of its own for `cxr report`: the films the pipeline assesses (none: an earlier run's file goes).
    const assessedFile = path.join(o.out, 'metrics', `${name}-assessed.json`);
    if (pipeline.assessedOnly) {
      // The same films' overlap: the assessed figures are as optimistic, and cxr report notes it on their section too.
      const assessed = {
        ...pipeline.assessedOnly,
        ...origin,
        trainingOverlap: overlapRelativeTo(overlap, o.data),
        model,
      };
      fs.writeFileSync(assessedFile, JSON.stringify(assessed, null, 2) + '\n');
      o.wrote?.(assessedFile);
    } else {
      fs.rmSync(assessedFile, { force: true });
    }
  }
  return {
    ...metrics,
    ...pipeline,
    unreadable: { count: unreadable.length, files: unreadable },
    setAside: { count: setAside.length, files: setAside },
    operatingPoint: opName,
    model,
    source,
    oodGate: pipelineRun.oodGate,
    // The metrics' notes after the pipeline's: `notes` was the pipeline's alone, spread over the metrics' own.
    notes: [...notes, ...(metrics.notes ?? [])],
    pipelineNotes: notes,
    trainingOverlap: overlap,
    ...(o.groups || o.periodGroups
      ? { groups: metricsByGroup(files, labels, probs, op.threshold, o.groups ?? byPeriod()) }
      : {}),
  };

  function byPeriod(): (file: string, i: number) => string {
    const group = periodGrouper(
      folder.map((r) => r.patient),
      folder.map((r) => r.label),
    );
    return (file, i) => group(parsePatient(file).id, labels[i]);
  }
}

/**
 * Refuses an --out folder that holds another model (a cxr.json of another identity): the evaluation's files
 * would sit beside that model's own, and its report would show them under its name. The evaluated model's own
 * folder, a copy of it, or a folder without a model are fine.
 */
function checkOutFolder(out: string, model: EvaluatedModel, modelDir: string): void {
  if (!fs.existsSync(path.join(out, 'cxr.json'))) return;
  let there: ReturnType<typeof modelIdentity>;
  try {
    there = modelIdentity(out);
  } catch (e) {
    throw new Error(
      `--out ${out} holds a cxr.json that cannot be read (${(e as Error).message}), so whose folder it is cannot ` +
        `be told: give the evaluated model's own folder (--out ${modelDir}) or a folder without a cxr.json`,
    );
  }
  if (there.sha256 === model.sha256) return;
  const other = { name: there.meta.name, version: there.meta.version, sha256: there.sha256 };
  throw new Error(
    `--out ${out} holds another model, ${describeModel(other)}, not the one evaluated, ${describeModel(model)}: ` +
      "its report would show this evaluation as that model's. Write it to the evaluated model's own folder " +
      `(--out ${modelDir}) or to a folder without a cxr.json`,
  );
}

/**
 * Refuses to write over an evaluation of other films that --out holds under the same name (two local samples,
 * each `all`, would otherwise leave only the second): the metrics file records its films (`source`). The same
 * films again (a rerun, another operating point) are replaced, as are files of earlier versions, which record
 * no films to tell; by another model only in the model's own folder; --overwrite replaces the others, saying so.
 */
function checkEarlierEvaluation(o: EvaluateRunOptions, name: string, source: string, model: EvaluatedModel): void {
  const file = path.join(o.out as string, 'metrics', `${name}.json`);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return; // None there, or none that can be read: nothing it records to keep.
  }
  const earlier = storedOrigin(json);
  // A folder without a cxr.json holds evaluations of several models (its report lists each one's splits): model
  // B's evaluation of the same films replaced model A's unasked, a lost result. A model's own folder is left as
  // it was: an older identity there is the same model before `cxr calibrate`, which restates its files.
  const before = evaluatedModel(json);
  const ownFolder = fs.existsSync(path.join(o.out as string, 'cxr.json'));
  const same = earlier.source !== undefined && sameFilms(earlier.source, source);
  if (before && before.sha256 !== model.sha256 && !ownFolder && same) {
    if (o.overwrite) {
      o.warn?.(`warning: --overwrite: replacing ${file}, the evaluation by ${describeModel(before)}`);
      return;
    }
    throw new Error(
      `--out ${o.out} already holds an evaluation of these films by another model under the name '${name}': ` +
        `${file} is of ${describeModel(before)}, and this one, of ${describeModel(model)}, would replace it ` +
        `(predictions/${name}.json too). Give another --out folder for this model, or --overwrite to replace it`,
    );
  }
  if (earlier.source === undefined || same) return;
  const at = earlier.operatingPoint ? ` at operating point ${earlier.operatingPoint}` : '';
  if (o.overwrite) {
    o.warn?.(`warning: --overwrite: replacing ${file}, the evaluation of ${earlier.source}${at}`);
    return;
  }
  throw new Error(
    `--out ${o.out} already holds an evaluation of other films under the name '${name}': ${file} is of ` +
      `${earlier.source}${at}, and this one, of ${source}, would replace it (predictions/${name}.json too). ` +
      'Give another --out folder for these films, or --overwrite to replace the earlier evaluation',
  );
}

/** `--split validation` on a folder without train/: what it needs, and the folder to give. */
function notTrainingRoot(data: string, meta: ModelMeta): Error {
  const abs = path.resolve(data);
  const recorded = typeof meta.data.root === 'string' ? meta.data.root : undefined;
  const hint =
    path.basename(abs).toLowerCase() === 'train'
      ? ` (${data} is a train/ folder itself: the folder above it, ${path.dirname(abs)})`
      : recorded
        ? ` (this model was trained on ${recorded})`
        : '';
  return new Error(
    `--split ${VALIDATION_SPLIT} is the model's own patient-level validation split, carved out of its training ` +
      `root's train/ folder, and ${data} has no train/ with NORMAL/ and PNEUMONIA/ in it: give the training root, ` +
      `the folder with train/ inside${hint}; or leave out --split to evaluate the films of ${data}`,
  );
}

/**
 * Why training's reader (JPEG and PNG, data/decode.ts) cannot read a file of the model's own split. Read
 * again rather than taken from the cache, whose stored failure may be from an earlier version's decoder.
 */
async function trainingReaderError(file: string): Promise<string> {
  try {
    await decodeFile(file, 8);
    return 'the preprocessed cache records it as unreadable (delete the cache folder, $CXR_CACHE, to read it again)';
  } catch (err) {
    if (err instanceof DecodeError) return err.code === 'READ_FAILED' ? readFailure(err) : err.detail;
    throw err;
  }
}
