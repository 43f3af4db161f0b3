// `cxr evaluate`: a saved model on a labelled folder, at an operating point chosen on validation.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type LoadedModel, loadModel } from '../models/io';
import type { ModelMeta } from '../models/metadata';
import { calibrated, predictAllLogits } from '../models/infer';
import { loadImageSet, splitRecords } from '../data/dataset_images';
import { DecodeError, decodeFile } from '../data/decode';
import { type GroupRow, metricsByGroup } from '../eval/groups';
import { evaluate } from '../eval/metrics';
import { isTrainingRoot, validationRecords } from '../robustness/images';
import { periodGrouper } from '../data/period_balance';
import { parsePatient } from '../data/patients';
import type { EvaluatedModel, Metrics, SetAsideFiles } from '../eval/metrics_schema';
import { repoRoot } from '../paths';
import { type OverlapRecord, overlapRecord } from '../eval/training_overlap';
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
import { checkEarlierEvaluation, checkOutFolder, evaluationFileName, writeEvaluationFiles } from './evaluation_out';
import { EvaluationRefused } from './evaluation_refused';

/** The split name that, on a training root, means the model's own recorded validation split. */
export const VALIDATION_SPLIT = 'validation';

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
  if (!op) {
    const has = Object.keys(meta.operatingPoints).join(', ');
    throw new EvaluationRefused('UNKNOWN_OPERATING_POINT', `model has no operating point '${opName}' (has: ${has})`);
  }
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
  if (o.out) checkEarlierEvaluation({ ...o, out: o.out }, evaluationFileName(split), storedSource, model);
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
    throw new EvaluationRefused('NO_READABLE_IMAGES', `${o.data}: no readable images${why}`);
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
    const origin = { source: storedSource, operatingPoint: opName };
    const { assessedOnly } = pipeline;
    const scoredFilms = { split, files, labels, probs, verdicts: statuses };
    const evaluation = { ...scoredFilms, model, origin, metrics, assessedOnly, unreadable, setAside, overlap };
    writeEvaluationFiles({ out: o.out, data: o.data, ...evaluation }, o.wrote);
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

/** `--split validation` on a folder without train/: what it needs, and the folder to give. */
function notTrainingRoot(data: string, meta: ModelMeta): EvaluationRefused {
  const abs = path.resolve(data);
  const recorded = typeof meta.data.root === 'string' ? meta.data.root : undefined;
  const hint =
    path.basename(abs).toLowerCase() === 'train'
      ? ` (${data} is a train/ folder itself: the folder above it, ${path.dirname(abs)})`
      : recorded
        ? ` (this model was trained on ${recorded})`
        : '';
  return new EvaluationRefused(
    'NOT_A_TRAINING_ROOT',
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
