// Reads whatever a run directory holds. Everything is optional and loosely typed: a report should
// still come out of a half-finished or older run, with warnings saying what was skipped.
import * as fs from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { z } from 'zod';
import {
  describeModel,
  type EvaluatedModel,
  evaluatedModel,
  Metrics,
  type EvaluationOrigin,
  parseMetrics,
  type SetAsideFiles,
  storedOrigin,
  storedSetAside,
  storedUnreadable,
  type UnreadableFiles,
} from '../eval/metrics_schema';
import { type OverlapRecord, storedOverlap } from '../eval/training_overlap';
import { modelIdentity } from '../models/io';
import type { EpochLog } from './charts';

const Threshold = z.union([z.number(), z.looseObject({ threshold: z.number() })]);

/** cxr.json; each field falls back to undefined on its own so one odd field does not hide the rest. */
export const RunMeta = z.looseObject({
  name: z.string().optional().catch(undefined),
  version: z.union([z.string(), z.number()]).optional().catch(undefined),
  arch: z.string().optional().catch(undefined),
  inputSize: z.number().optional().catch(undefined),
  classNames: z.tuple([z.string(), z.string()]).optional().catch(undefined),
  temperature: z.number().optional().catch(undefined),
  logitBias: z.number().optional().catch(undefined),
  thresholds: z.record(z.string(), Threshold).optional().catch(undefined),
  operatingPoints: z.record(z.string(), Threshold).optional().catch(undefined),
  defaultOperatingPoint: z.string().optional().catch(undefined),
  createdAt: z.string().optional().catch(undefined),
});
export type RunMeta = z.infer<typeof RunMeta>;

const finite = z.number();
export const EpochLine = z.looseObject({
  epoch: finite,
  loss: finite.optional().catch(undefined),
  val_loss: finite.optional().catch(undefined),
  val_auc: finite.nullable().optional().catch(undefined),
  val_accuracy: finite.optional().catch(undefined),
  lr: finite.optional().catch(undefined),
  seconds: finite.optional().catch(undefined),
});

export const Predictions = z
  .object({
    files: z.array(z.string()).default([]),
    labels: z.array(z.union([z.literal(0), z.literal(1)])),
    probs: z.array(z.number().min(0).max(1)),
  })
  .refine(
    (p) => p.labels.length === p.probs.length && p.labels.length > 0,
    'labels and probs must be non-empty and equally long',
  );
export type Predictions = z.infer<typeof Predictions>;

export interface SplitData {
  name: string;
  predictions?: Predictions;
  metrics?: Metrics;
  /** The model `cxr evaluate --out` recorded making it; absent in training's own files and older ones. */
  model?: EvaluatedModel;
  /** The files `cxr evaluate` could not read, where its metrics file records them: in no number of the split. */
  unreadable?: UnreadableFiles;
  /** The films the prediction pipeline would not assess, with why, where `cxr evaluate` recorded them. */
  setAside?: SetAsideFiles;
  /** Which films (`source`) and operating point `cxr evaluate` recorded the split is of; empty for older files. */
  origin?: EvaluationOrigin;
  /** The films `cxr evaluate` found the model trained or was validated on, where it recorded any. */
  trainingOverlap?: OverlapRecord;
}

export interface RunData {
  dir: string;
  meta: RunMeta;
  /** Whether cxr.json was there at all. */
  hasMeta: boolean;
  log: EpochLog[];
  splits: SplitData[];
  warnings: string[];
}

async function readJson(file: string): Promise<unknown | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return JSON.parse(text);
}

async function jsonNames(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length));
  } catch {
    return [];
  }
}

/** The split a reader cares most about comes first. */
const SPLIT_ORDER = ['test', 'val', 'validation', 'train'];
function splitRank(name: string): number {
  const i = SPLIT_ORDER.indexOf(name);
  return i < 0 ? SPLIT_ORDER.length : i;
}

/** Thresholds from cxr.json, whether written as `thresholds` or `operatingPoints`, numbers or objects. */
export function metaThresholds(meta: RunMeta): { name: string; threshold: number }[] {
  const all = { ...meta.thresholds, ...meta.operatingPoints };
  return Object.entries(all)
    .map(([name, t]) => ({ name, threshold: typeof t === 'number' ? t : t.threshold }))
    .filter((t) => t.threshold >= 0 && t.threshold <= 1);
}

/**
 * The folder's own model as evaluations record theirs; null where its cxr.json is no model that can be read
 * (an older or partial run record), and then no evaluation can be told apart from its own.
 */
function folderModel(dir: string): EvaluatedModel | null {
  try {
    const { meta, sha256 } = modelIdentity(dir);
    return { name: meta.name, version: meta.version, sha256 };
  } catch {
    return null;
  }
}

export async function readRunDir(dir: string): Promise<RunData> {
  const warnings: string[] = [];
  const tryParse = async <T>(file: string, parse: (json: unknown) => T): Promise<T | undefined> => {
    try {
      const json = await readJson(file);
      return json === undefined ? undefined : parse(json);
    } catch (e) {
      warnings.push(`skipped ${path.relative(dir, file)}: ${(e as Error).message}`);
      return undefined;
    }
  };

  const rawMeta = await tryParse(path.join(dir, 'cxr.json'), (j) => RunMeta.parse(j));
  const meta = rawMeta ?? RunMeta.parse({});

  const log: EpochLog[] = [];
  const logText = await readFile(path.join(dir, 'log.jsonl'), 'utf8').catch(() => '');
  let badLines = 0;
  for (const line of logText.split('\n')) {
    if (line.trim() === '') continue;
    try {
      log.push(EpochLine.parse(JSON.parse(line)) as EpochLog);
    } catch {
      badLines++;
    }
  }
  if (badLines > 0) warnings.push(`log.jsonl: skipped ${badLines} unreadable line(s)`);
  // A resumed run appends again from its checkpoint: the later line for an epoch is the one that counts.
  const byEpoch = new Map(log.map((e) => [e.epoch, e]));
  const epochs = [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);

  const predDir = path.join(dir, 'predictions');
  const metricsDir = path.join(dir, 'metrics');
  const names = [...new Set([...(await jsonNames(predDir)), ...(await jsonNames(metricsDir))])];
  names.sort((a, b) => splitRank(a) - splitRank(b) || a.localeCompare(b));
  const splits: SplitData[] = [];
  const own = rawMeta === undefined ? null : folderModel(dir);
  const verdicts = new Map<string, unknown>();
  for (const name of names) {
    const predFile = path.join(predDir, `${name}.json`);
    const metricsFile = path.join(metricsDir, `${name}.json`);
    const predRaw = await tryParse(predFile, (j) => j);
    const metricsRaw = await tryParse(metricsFile, (j) => j);
    // An evaluation `cxr evaluate --out` wrote here of another model is not this model's to show under its name.
    const recorded = evaluatedModel(metricsRaw) ?? evaluatedModel(predRaw);
    if (own && recorded && recorded.sha256 !== own.sha256) {
      warnings.push(
        `skipped ${name}: an evaluation of another model, ${describeModel(recorded)}, not of this folder's, ` +
          `${describeModel(own)} (cxr evaluate --model ${dir} --data FILMS --out ${dir} writes its own)`,
      );
      continue;
    }
    const shaped = <T>(file: string, json: unknown, parse: (json: unknown) => T): T | undefined => {
      try {
        return json === undefined ? undefined : parse(json);
      } catch (e) {
        warnings.push(`skipped ${path.relative(dir, file)}: ${(e as Error).message}`);
        return undefined;
      }
    };
    const predictions = shaped(predFile, predRaw, (j) => {
      const r = Predictions.safeParse(j);
      if (!r.success) throw new Error(z.prettifyError(r.error));
      return r.data;
    });
    const metrics = shaped(metricsFile, metricsRaw, (j) => parseMetrics(j, `metrics/${name}.json`));
    const unreadable = storedUnreadable(metricsRaw);
    const setAside = storedSetAside(metricsRaw);
    const origin = storedOrigin(metricsRaw);
    const overlap = storedOverlap(metricsRaw);
    if (predictions && typeof predRaw === 'object' && predRaw !== null && 'verdicts' in predRaw)
      verdicts.set(name, predRaw.verdicts);
    if (predictions || metrics)
      splits.push({
        name,
        predictions,
        metrics,
        ...(recorded ? { model: recorded } : {}),
        ...(unreadable ? { unreadable } : {}),
        ...(setAside ? { setAside } : {}),
        ...(origin.source || origin.operatingPoint ? { origin } : {}),
        ...(overlap ? { trainingOverlap: overlap } : {}),
      });
  }
  withAssessedPredictions(splits, verdicts);
  return { dir, meta, hasMeta: rawMeta !== undefined, log: epochs, splits, warnings };
}

/**
 * `cxr evaluate --out` writes one predictions file, each film with its verdict, and metrics for all films and for
 * the assessed ones (`<split>-assessed`): the assessed split's curves are drawn from the films of its split whose
 * verdict is `assessed`, where the page said "no predictions file for this split" as if something were missing.
 */
function withAssessedPredictions(splits: SplitData[], verdicts: ReadonlyMap<string, unknown>): void {
  for (const split of splits) {
    if (split.predictions || !split.name.endsWith('-assessed')) continue;
    const whole = splits.find((s) => s.name === split.name.slice(0, -'-assessed'.length))?.predictions;
    const v = verdicts.get(split.name.slice(0, -'-assessed'.length));
    if (!whole || !Array.isArray(v) || v.length !== whole.labels.length) continue;
    const keep = (_: unknown, i: number) => v[i] === 'assessed';
    const labels = whole.labels.filter(keep);
    // Films the metrics do not count (another evaluation's file under the name): no curves rather than wrong ones.
    if (labels.length === 0 || (split.metrics && split.metrics.n !== labels.length)) continue;
    const files = whole.files.length === whole.labels.length ? whole.files.filter(keep) : [];
    split.predictions = { files, labels, probs: whole.probs.filter(keep) };
  }
}

/** What a run folder records (cxr train --out, cxr evaluate --out): any one is enough for a page. */
const RUN_RECORDS = ['cxr.json', 'log.jsonl', 'predictions', 'metrics'];

/**
 * Refuses a folder that holds no run record: a page of empty sections for an arbitrary folder (or an
 * experiments folder, whose runs are its sub-folders) reads as a report of a run that does not exist.
 */
export function checkRunDir(runDir: string): void {
  const st = fs.statSync(runDir, { throwIfNoEntry: false });
  if (!st) throw new Error(`${runDir}: no such folder`);
  if (!st.isDirectory()) throw new Error(`${runDir}: not a folder (cxr report reads the folder of a run)`);
  const has = (name: string) => {
    const p = path.join(runDir, name);
    const st = fs.statSync(p, { throwIfNoEntry: false });
    return st?.isDirectory() ? fs.readdirSync(p).some((f) => f.endsWith('.json')) : !!st?.isFile();
  };
  if (RUN_RECORDS.some(has)) return;
  // A robustness run's folder has its own page already (cxr robustness --out writes it).
  if (has('robustness.json'))
    throw new Error(
      `${runDir}: a robustness run, not a training or evaluation run: its page is ${path.join(runDir, 'index.html')}` +
        ' (cxr robustness --out wrote it)',
    );
  // `cxr compare --out` writes comparisons/ alone; told "no run record", its user took the comparison for lost.
  if (has('comparisons')) {
    const dir = path.join(runDir, 'comparisons');
    const pages = fs.readdirSync(dir).filter((f) => f.endsWith('.html'));
    throw new Error(
      `${runDir}: a comparison (cxr compare --out wrote comparisons/ here), not a run: ` +
        (pages.length
          ? `its page is ${pages.map((f) => path.join(dir, f)).join(', ')}`
          : `its figures are in ${dir}/*.json (one written before comparisons had a page): compare the two models ` +
            `again with --out ${runDir} to draw it`),
    );
  }
  const entries = fs.readdirSync(runDir, { withFileTypes: true });
  const runs = entries
    .filter((e) => e.isDirectory() && RUN_RECORDS.some((r) => has(path.join(e.name, r))))
    .map((e) => e.name);
  const comparison = entries.some((e) => e.name === 'comparison.html') ? ' (its comparison.html is their table)' : '';
  throw new Error(
    `${runDir}: no run record here (cxr.json, log.jsonl, predictions/*.json or metrics/*.json): ` +
      (runs.length
        ? `it holds runs in sub-folders${comparison}; report one of them, e.g. cxr report ${path.join(runDir, runs[0])}`
        : 'cxr report reads the folder of a run (cxr train --out DIR) or of an evaluation (cxr evaluate --out DIR)'),
  );
}
