// After `cxr calibrate`, the evaluations `cxr evaluate --out` stored in the model folder (predictions/ and
// metrics/, every split but the run's own val.json, which calibrate writes itself) hold probabilities of the
// old calibration and metrics at the old thresholds, so the rewritten report would draw new thresholds over
// old scores. A calibration maps the model's logit z to sigmoid(z / T + b), one monotone function per
// calibration: the old probability gives z back exactly, so each stored evaluation is restated under the new
// calibration without running the model. Where it cannot be (new test-time views change z itself; a
// threshold that was no operating point of the old calibration; a file that cannot be read), the files are
// moved aside under stale/ rather than left to contradict cxr.json.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { evaluate, evaluateKept, sigmoid } from '../eval';
import {
  describeModel,
  type EvaluatedModel,
  evaluatedModel,
  parseMetrics,
  type SetAsideFiles,
  storedOrigin,
  storedSetAside,
  storedUnreadable,
  type UnreadableFiles,
} from '../eval/metrics_schema';
import type { ModelMeta } from '../models/metadata';
import { Predictions } from '../report/run_dir';
import { makeDirs } from '../make_dirs';
import { type OverlapRecord, storedOverlap } from '../eval/training_overlap';

/** What of a calibration the stored evaluations depend on (the default: which of coinciding points). */
export type CalibrationState = Pick<ModelMeta, 'temperature' | 'logitBias' | 'operatingPoints' | 'tta'> &
  Partial<Pick<ModelMeta, 'defaultOperatingPoint'>>;

export interface RestateResult {
  /** Evaluations restated under the new calibration (their names, e.g. test or eval-val). */
  restated: string[];
  /** Evaluations moved to stale/ with why. */
  stale: { name: string; why: string }[];
  /**
   * Restated evaluations whose metrics of the films the pipeline assesses (metrics/NAME-assessed.json)
   * could not be restated with them and were moved to stale/, with why.
   */
  assessedStale: { name: string; why: string }[];
}

/** The model's logit behind a probability of calibration (T, b); ±Infinity for 1 and 0. */
function logitBehind(p: number, temperature: number, bias: number): number {
  return (Math.log(p) - Math.log1p(-p) - bias) * temperature;
}

/** Thresholds are stored as computed, so equal means equal up to rounding in JSON. */
const same = (a: number, b: number) => Math.abs(a - b) < 1e-12;

/**
 * The operating point of the new calibration an evaluation at `threshold` is restated at, or why none.
 * Several names can share the threshold (eval/operating_points.ts gives screening balanced's threshold when
 * Youden's point is sensitive enough already): where they share one in the new calibration too, the
 * evaluation was at that threshold whichever name asked for it. Where the new calibration parts them, the
 * name the evaluation records it was asked for (`operatingPoint`, absent in files of earlier versions) is taken;
 * else the model's default when it is among them (as `cxr evaluate` takes it without --operating-point), else the
 * first in cxr.json's order. `name` is that one name, which the metrics file records (a reader looks it up in
 * cxr.json); `shown` is what calibrate's line says, all the names where they still share the threshold.
 */
function pointOf(
  threshold: number,
  before: CalibrationState,
  after: CalibrationState,
  asked?: string,
): { name: string; shown: string; threshold: number; note: string } | { why: string } {
  const named = Object.keys(before.operatingPoints).filter((n) => same(before.operatingPoints[n].threshold, threshold));
  if (named.length === 0) {
    const had = Object.entries(before.operatingPoints).map(([n, p]) => `${n} ${p.threshold}`);
    return { why: `its threshold ${threshold} was none of the old calibration's operating points (${had.join(', ')})` };
  }
  const kept = named.filter((n) => Object.hasOwn(after.operatingPoints, n));
  if (kept.length === 0) return { why: `its operating point ${named.join(' = ')} is not in the new calibration` };
  const recorded = kept.find((n) => n === asked);
  const name = recorded ?? kept.find((n) => n === before.defaultOperatingPoint) ?? kept[0];
  // The name it records is gone from the calibration (or never had its threshold): it records another from now on.
  const renamed =
    asked === undefined || recorded
      ? ''
      : `; it was evaluated at ${asked}, ` +
        (named.includes(asked) ? 'which the new calibration no longer has' : 'which was not at its threshold') +
        `: it now records ${name}`;
  const thresholds = kept.map((n) => after.operatingPoints[n].threshold);
  if (thresholds.every((t) => same(t, thresholds[0]))) {
    return { name, shown: kept.join(' = '), threshold: thresholds[0], note: renamed };
  }
  const others = kept.filter((n) => n !== name);
  const note =
    `; its threshold was ${kept.join(' and ')} alike, which the new calibration parts: restated at ${name}` +
    (recorded
      ? ', the one it was evaluated at'
      : name === before.defaultOperatingPoint
        ? ", the model's default"
        : '') +
    `; for ${others.join(', ')} run cxr evaluate --out --operating-point ${others[0]}` +
    renamed;
  return { name, shown: name, threshold: after.operatingPoints[name].threshold, note };
}

/** A (zod) error message on one line, for the line calibrate prints per evaluation. */
const oneLine = (message: string) => message.replace(/\s*\n\s*/g, ' ');

function readJson(file: string, where: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${where} cannot be read (${oneLine((e as Error).message)})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${where} is not JSON (${oneLine((e as Error).message)})`);
  }
}

/** The pipeline's verdict on each film, as `cxr evaluate` stores them beside the probabilities (optional). */
const Verdicts = z.object({ verdicts: z.array(z.string()).optional() });

/**
 * The model folder's identity before and after the calibration (models/io.ts modelIdentity): an evaluation that
 * records another model is not this folder's to restate, and a restated one records the identity it now has.
 */
export interface FolderIdentity {
  before: string;
  after: EvaluatedModel;
}

interface Restated {
  stored: Record<string, unknown>;
  /** The model the evaluation records it was made with, under its new identity; absent where it recorded none. */
  model?: EvaluatedModel;
  probs: number[];
  metrics: ReturnType<typeof evaluate>;
  /** The files the evaluation could not read, as its metrics file records them (kept as they are). */
  unreadable?: UnreadableFiles;
  /** The films the pipeline would not assess, and its films (`source`): kept as they are (the scores are not them). */
  setAside?: SetAsideFiles;
  /** The films the model trained or was validated on, as recorded (a calibration changes no film's bytes). */
  trainingOverlap?: OverlapRecord;
  source?: string;
  /**
   * The one name it records from now on: the one it recorded, where the new calibration still has it at its
   * threshold; else the one it is restated at (pointOf), never names joined, which no cxr.json holds.
   */
  operatingPoint?: string;
  /** The assessed films' metrics (metrics/NAME-assessed.json) restated, if there are any. */
  assessed?: ReturnType<typeof evaluate>;
  /** Why a metrics/NAME-assessed.json in the folder cannot be restated with the rest. */
  assessedStale?: string;
  point: string;
  threshold: number;
  note: string;
}

/** Everything restated in memory, or why it cannot be: nothing is written until all of it is read. */
function restateOne(
  dir: string,
  name: string,
  before: CalibrationState,
  after: CalibrationState,
  identity?: FolderIdentity,
): Restated | string {
  const predWhere = `predictions/${name}.json`;
  const raw = readJson(path.join(dir, predWhere), predWhere);
  const metricsWhere = `metrics/${name}.json`;
  const metricsRaw = readJson(path.join(dir, metricsWhere), metricsWhere);
  // Files of earlier versions record no model: they are taken as the folder's, as they always were.
  const recorded = evaluatedModel(metricsRaw) ?? evaluatedModel(raw);
  if (identity && recorded && recorded.sha256 !== identity.before) {
    return `it is an evaluation of another model, ${describeModel(recorded)}, not of this folder's`;
  }
  if (JSON.stringify(before.tta) !== JSON.stringify(after.tta)) {
    return 'new test-time views change the scores themselves';
  }
  const parsed = Predictions.safeParse(raw);
  if (!parsed.success) return `${predWhere} is not a predictions file: ${oneLine(z.prettifyError(parsed.error))}`;
  const predictions = parsed.data;
  const verdicts = Verdicts.safeParse(raw);
  if (!verdicts.success) return `${predWhere} has unreadable verdicts: ${oneLine(z.prettifyError(verdicts.error))}`;
  const v = verdicts.data.verdicts;
  if (v && v.length !== predictions.labels.length) {
    return `${predWhere} has ${v.length} verdicts for ${predictions.labels.length} films`;
  }
  const stored = parseMetrics(metricsRaw, metricsWhere);
  const unreadable = storedUnreadable(metricsRaw);
  const setAside = storedSetAside(metricsRaw);
  const trainingOverlap = storedOverlap(metricsRaw);
  const { source, operatingPoint } = storedOrigin(metricsRaw);
  const model = recorded ? (identity?.after ?? recorded) : undefined;
  const point = pointOf(stored.threshold, before, after, operatingPoint);
  if ('why' in point) return point.why;
  const { threshold } = point;
  const probs = predictions.probs.map((p) =>
    sigmoid(logitBehind(p, before.temperature, before.logitBias ?? 0) / after.temperature + (after.logitBias ?? 0)),
  );
  const metrics = evaluate(predictions.labels, probs, { threshold });
  const assessed = v && evaluateKept(predictions.labels, probs, (i) => v[i] === 'assessed', { threshold });
  let assessedStale: string | undefined;
  if (!assessed && fs.existsSync(path.join(dir, 'metrics', `${name}-assessed.json`))) {
    assessedStale = v
      ? `the pipeline assesses no film of ${predWhere}`
      : `${predWhere} holds no verdicts to tell the assessed films by`;
  }
  return {
    stored: raw as Record<string, unknown>,
    ...(model ? { model } : {}),
    probs,
    metrics,
    ...(unreadable ? { unreadable } : {}),
    ...(setAside ? { setAside } : {}),
    ...(trainingOverlap !== undefined ? { trainingOverlap } : {}),
    ...(source ? { source } : {}),
    // Where it records one (files of earlier versions record none, and gain none).
    ...(operatingPoint ? { operatingPoint: point.name } : {}),
    ...(assessed ? { assessed } : {}),
    ...(assessedStale ? { assessedStale } : {}),
    point: point.shown,
    threshold,
    note: point.note,
  };
}

/** Moves files of one evaluation to stale/NAME (stale/NAME-2, ... where an earlier calibration's is). */
function moveAside(dir: string, name: string, files: string[]): string {
  let aside = path.join(dir, 'stale', name);
  for (let k = 2; fs.existsSync(aside); k++) aside = path.join(dir, 'stale', `${name}-${k}`);
  makeDirs(aside);
  for (const f of files)
    if (fs.existsSync(f)) fs.renameSync(f, path.join(aside, `${path.basename(path.dirname(f))}-${path.basename(f)}`));
  return aside;
}

export function restateEvaluations(
  dir: string,
  before: CalibrationState,
  after: CalibrationState,
  log: (line: string) => void = () => {},
  identity?: FolderIdentity,
): RestateResult {
  const predDir = path.join(dir, 'predictions');
  const metricsDir = path.join(dir, 'metrics');
  const names = fs.existsSync(predDir)
    ? fs
        .readdirSync(predDir)
        .filter((f) => f.endsWith('.json') && f !== 'val.json')
        .map((f) => f.slice(0, -'.json'.length))
    : [];
  const result: RestateResult = { restated: [], stale: [], assessedStale: [] };
  const again = 'run cxr evaluate --out again for figures under the new calibration';
  for (const name of names) {
    const predFile = path.join(predDir, `${name}.json`);
    const metricsFile = path.join(metricsDir, `${name}.json`);
    const assessedFile = path.join(metricsDir, `${name}-assessed.json`);
    let r: Restated | string;
    try {
      r = restateOne(dir, name, before, after, identity);
    } catch (e) {
      // parseMetrics and readJson say which file and what is wrong with it.
      r = oneLine((e as Error).message);
    }
    if (typeof r === 'string') {
      const aside = moveAside(dir, name, [predFile, metricsFile, assessedFile]);
      result.stale.push({ name, why: r });
      log(`${name}: moved to ${aside} (${r}); ${again}`);
      continue;
    }
    const model = r.model ? { model: r.model } : {};
    fs.writeFileSync(predFile, JSON.stringify({ ...r.stored, probs: r.probs, ...model }));
    // Its films and the point it is now at (a name that now parts from the others it shared a threshold with).
    const origin = {
      ...(r.source ? { source: r.source } : {}),
      ...(r.operatingPoint ? { operatingPoint: r.operatingPoint } : {}),
    };
    const kept = {
      ...(r.unreadable ? { unreadable: r.unreadable } : {}),
      ...(r.setAside ? { setAside: r.setAside } : {}),
      ...(r.trainingOverlap !== undefined ? { trainingOverlap: r.trainingOverlap } : {}),
    };
    fs.writeFileSync(metricsFile, JSON.stringify({ ...r.metrics, ...origin, ...kept, ...model }, null, 2) + '\n');
    result.restated.push(name);
    log(`${name}: restated under the new calibration (${r.point} threshold ${r.threshold.toFixed(3)}${r.note})`);
    if (r.assessed)
      fs.writeFileSync(assessedFile, JSON.stringify({ ...r.assessed, ...origin, ...model }, null, 2) + '\n');
    if (r.assessedStale) {
      // Left in place it would show the old calibration's figures beside the new ones.
      const aside = moveAside(dir, name, [assessedFile]);
      result.assessedStale.push({ name, why: r.assessedStale });
      log(`${name}: metrics/${name}-assessed.json moved to ${aside} (${r.assessedStale}); ${again}`);
    }
  }
  return result;
}
