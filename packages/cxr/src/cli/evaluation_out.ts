// Where runEvaluation's `out` folder (`cxr evaluate --out`) gets its files: their names, what the evaluation
// refuses to write over (another model's folder, an evaluation of other films under the same name), and the files
// themselves, predictions/NAME.json, metrics/NAME.json and metrics/NAME-assessed.json, which `cxr report` reads.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { modelIdentity } from '../models/io';
import { filesRelativeTo } from '../data/images';
import {
  describeModel,
  type EvaluatedModel,
  evaluatedModel,
  type Metrics,
  type SetAsideFiles,
  storedOrigin,
} from '../eval/metrics_schema';
import { type OverlapRecord, overlapRelativeTo } from '../eval/training_overlap';
import { makeOutputDir } from '../make_dirs';
import type { PipelineStatus } from './evaluate_pipeline';
import { EvaluationRefused } from './evaluation_refused';
import { sameFilms } from './films_source';

/**
 * Names a run folder keeps for its own split: training writes metrics/val.json (the patient-level
 * validation split every threshold was chosen on). An evaluation never writes over them.
 */
const RUN_OWN_SPLITS = new Set(['val', 'train', 'validation']);

/** The file name (without .json) an evaluation of `split` is written under in predictions/ and metrics/. */
export function evaluationFileName(split: string): string {
  return RUN_OWN_SPLITS.has(split) ? `eval-${split}` : split;
}

/**
 * Refuses an --out folder that holds another model (a cxr.json of another identity): the evaluation's files
 * would sit beside that model's own, and its report would show them under its name. The evaluated model's own
 * folder, a copy of it, or a folder without a model are fine.
 */
export function checkOutFolder(out: string, model: EvaluatedModel, modelDir: string): void {
  if (!fs.existsSync(path.join(out, 'cxr.json'))) return;
  let there: ReturnType<typeof modelIdentity>;
  try {
    there = modelIdentity(out);
  } catch (e) {
    throw new EvaluationRefused(
      'OUT_MODEL_UNREADABLE',
      `--out ${out} holds a cxr.json that cannot be read (${(e as Error).message}), so whose folder it is cannot ` +
        `be told: give the evaluated model's own folder (--out ${modelDir}) or a folder without a cxr.json`,
      { cause: e },
    );
  }
  if (there.sha256 === model.sha256) return;
  const other = { name: there.meta.name, version: there.meta.version, sha256: there.sha256 };
  throw new EvaluationRefused(
    'OUT_OTHER_MODEL',
    `--out ${out} holds another model, ${describeModel(other)}, not the one evaluated, ${describeModel(model)}: ` +
      "its report would show this evaluation as that model's. Write it to the evaluated model's own folder " +
      `(--out ${modelDir}) or to a folder without a cxr.json`,
  );
}

/** What checkEarlierEvaluation needs of runEvaluation's options. */
export interface OutOptions {
  out: string;
  overwrite?: boolean;
  warn?: (line: string) => void;
}

/**
 * Refuses to write over an evaluation of other films that --out holds under the same name (two local samples,
 * each `all`, would otherwise leave only the second): the metrics file records its films (`source`). The same
 * films again (a rerun, another operating point) are replaced, as are files of earlier versions, which record
 * no films to tell; by another model only in the model's own folder; --overwrite replaces the others, saying so.
 */
export function checkEarlierEvaluation(o: OutOptions, name: string, source: string, model: EvaluatedModel): void {
  const file = path.join(o.out, 'metrics', `${name}.json`);
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
  const ownFolder = fs.existsSync(path.join(o.out, 'cxr.json'));
  const same = earlier.source !== undefined && sameFilms(earlier.source, source);
  if (before && before.sha256 !== model.sha256 && !ownFolder && same) {
    if (o.overwrite) {
      o.warn?.(`warning: --overwrite: replacing ${file}, the evaluation by ${describeModel(before)}`);
      return;
    }
    throw new EvaluationRefused(
      'OUT_OTHER_EVALUATION',
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
  throw new EvaluationRefused(
    'OUT_OTHER_EVALUATION',
    `--out ${o.out} already holds an evaluation of other films under the name '${name}': ${file} is of ` +
      `${earlier.source}${at}, and this one, of ${source}, would replace it (predictions/${name}.json too). ` +
      'Give another --out folder for these films, or --overwrite to replace the earlier evaluation',
  );
}

/** One evaluation as its --out files record it (paths absolute here; written relative to `data`). */
export interface EvaluationFiles {
  out: string;
  data: string;
  split: string;
  /** The films scored, in one order, with their labels, probabilities and the pipeline's verdicts. */
  files: string[];
  labels: number[];
  probs: number[];
  verdicts: PipelineStatus[];
  model: EvaluatedModel;
  /** Which films (as stored: the real path) and which operating point. */
  origin: { source: string; operatingPoint: string };
  metrics: Metrics;
  /** The metrics of the films the pipeline assesses; null where it assesses all or none. */
  assessedOnly: Metrics | null;
  unreadable: { file: string; error: string }[];
  setAside: SetAsideFiles['files'];
  overlap: OverlapRecord;
}

/** Writes an evaluation's files into its --out folder, telling `wrote` each one. */
export function writeEvaluationFiles(e: EvaluationFiles, wrote?: (file: string) => void): void {
  const { out, data, model, origin, overlap } = e;
  const name = evaluationFileName(e.split);
  makeOutputDir(path.join(out, 'predictions'), '--out');
  makeOutputDir(path.join(out, 'metrics'), '--out');
  const predictionsFile = path.join(out, 'predictions', `${name}.json`);
  const metricsFile = path.join(out, 'metrics', `${name}.json`);
  // Each file says which model made it: a folder's report, and calibrate's restating, check it is their own.
  const files = filesRelativeTo(data, e.files);
  const predictions = { files, labels: e.labels, probs: e.probs, verdicts: e.verdicts, model };
  fs.writeFileSync(predictionsFile, JSON.stringify(predictions));
  // The films no reader could read are in no count: recorded, so that the folder's report says what it left out.
  const skipped = e.unreadable.map((u) => ({ ...u, file: filesRelativeTo(data, [u.file])[0] }));
  // So are the films the pipeline would not assess, with why: the folder's report says which they are.
  const aside = e.setAside.map((f) => ({ ...f, file: filesRelativeTo(data, [f.file])[0] }));
  // Which films and which point: a later evaluation of other films is not written over it unasked.
  const stored = {
    ...e.metrics,
    ...origin,
    unreadable: { count: skipped.length, files: skipped },
    setAside: { count: aside.length, files: aside },
    trainingOverlap: overlapRelativeTo(overlap, data),
    model,
  };
  fs.writeFileSync(metricsFile, JSON.stringify(stored, null, 2) + '\n');
  wrote?.(predictionsFile);
  wrote?.(metricsFile);
  // A split of its own for `cxr report`: the films the pipeline assesses (none: an earlier run's file goes).
  const assessedFile = path.join(out, 'metrics', `${name}-assessed.json`);
  if (e.assessedOnly) {
    // The same films' overlap: the assessed figures are as optimistic, and cxr report notes it on their section too.
    const assessed = { ...e.assessedOnly, ...origin, trainingOverlap: overlapRelativeTo(overlap, data), model };
    fs.writeFileSync(assessedFile, JSON.stringify(assessed, null, 2) + '\n');
    wrote?.(assessedFile);
  } else {
    fs.rmSync(assessedFile, { force: true });
  }
}
