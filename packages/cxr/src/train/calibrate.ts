// Calibration and operating points, chosen on the patient-level validation split only. Used at
// the end of training and by `cxr calibrate` (which rebuilds the same split from cxr.json).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import {
  type BalancedRule,
  confusionAt,
  evaluate,
  fitPlatt,
  fitTemperature,
  type LogitCalibration,
  operatingPoints,
  SCREENING_SENSITIVITY,
  temperatureBoundNote,
} from '../eval';
import type { Metrics } from '../eval/metrics_schema';
import { cardCommand, writeModelCard } from '../models/card';
import { restateEvaluations } from './restate_evaluations';
import { loadModel, modelIdentity, readMeta } from '../models/io';
import type { ModelMeta } from '../models/metadata';
import { calibrated, predictAllLogits } from '../models/infer';
import { loadTrainVal, recordedSplit } from '../data/dataset_images';
import { filesRelativeTo, type ImageSet } from '../data/images';
import { perturbImages } from '../data/perturb_catalog';
import { normalizeImages, type NormalizeMode } from '../data/preprocess';
import type { TtaView } from '../models/tta_views';
import { makeDirs } from '../make_dirs';
import { writeFileAtomic } from '../atomic_write';

/** Temperature alone (bias 0), or Platt's slope and bias (eval/calibration.ts). */
export type Scaling = 'temperature' | 'platt';
export const SCALINGS: readonly Scaling[] = ['temperature', 'platt'];

function fitScaling(
  logits: readonly number[],
  labels: readonly number[],
  scaling: Scaling = 'temperature',
): LogitCalibration {
  return scaling === 'platt' ? fitPlatt(logits, labels) : { temperature: fitTemperature(logits, labels), bias: 0 };
}

export interface Calibration {
  temperature: number;
  /** Added to logit / temperature (0 for temperature scaling). */
  bias: number;
  scaling: Scaling;
  operatingPoints: ModelMeta['operatingPoints'];
  metrics: Metrics;
  probs: number[];
  labels: number[];
}

export async function calibrateOnValidation(
  members: LayersModel[],
  val: ImageSet,
  tta: readonly TtaView[],
  batchSize = 64,
  rule?: BalancedRule,
  scaling: Scaling = 'temperature',
): Promise<Calibration> {
  const logits = await predictAllLogits(members, val.pixels, val.labels.length, val.size, { tta, batchSize });
  const labels = Array.from(val.labels);
  const { temperature, bias } = fitScaling(Array.from(logits), labels, scaling);
  const probs = calibrated(logits, temperature, bias);
  const ops = operatingPoints(labels, probs, SCREENING_SENSITIVITY, rule);
  const point = (p: typeof ops.balanced) => ({
    threshold: p.threshold,
    sensitivity: p.sensitivity,
    specificity: p.specificity,
    rule: p.rule,
  });
  return {
    temperature,
    bias,
    scaling,
    operatingPoints: { screening: point(ops.screening), balanced: point(ops.balanced) },
    metrics: evaluate(labels, probs, { threshold: ops.balanced.threshold }),
    probs,
    labels,
  };
}

/** predictions/val.json (films named relative to the data root) and metrics/val.json of a model folder. */
export function writeValidationFiles(dir: string, dataRoot: string, files: string[], c: Calibration): void {
  makeDirs(path.join(dir, 'predictions'));
  makeDirs(path.join(dir, 'metrics'));
  fs.writeFileSync(
    path.join(dir, 'predictions', 'val.json'),
    JSON.stringify({ files: filesRelativeTo(dataRoot, files), labels: c.labels, probs: c.probs }),
  );
  fs.writeFileSync(path.join(dir, 'metrics', 'val.json'), JSON.stringify(c.metrics, null, 2) + '\n');
}

/**
 * A model `cxr adapt` wrote is refused. Its batch-norm statistics are the site's, and with --prior its
 * thresholds were moved to the site's class prior after they were chosen; calibrating it again would choose
 * them on the source model's validation films under the site's statistics, silently undoing that shift while
 * cxr.json (`adaptation.prior`) and the model card still describe it. The calibration belongs to the source
 * model: calibrate that, then adapt it again.
 */
function refuseAdapted(modelDir: string, meta: ModelMeta): void {
  const a = meta.adaptation;
  if (!a) return;
  const prior = a.prior
    ? `, its thresholds moved by ${a.prior.logitShift.toFixed(3)} in logit to the site's prior`
    : '';
  throw new Error(
    `${modelDir} is a model adapted to a site by cxr adapt (from ${a.source.name} ${a.source.version}${prior}): ` +
      "calibrating it on the source model's validation split would undo the adaptation, choosing new thresholds " +
      "on the source films under the site's batch-norm statistics while cxr.json and the model card still " +
      'describe the adaptation. Calibrate the source model (cxr calibrate --model SOURCE), ' +
      `then adapt it again (cxr adapt --model SOURCE --images SITE --out DIR${a.prior ? ' --prior' : ''})`,
  );
}

/**
 * `cxr calibrate`: recomputes temperature and operating points of a saved model on the validation
 * split it was trained with (valFraction, split seed and subset limit are read from cxr.json).
 */
export async function recalibrate(
  modelDir: string,
  dataRoot: string,
  log: (l: string) => void,
  opts: { shifts?: boolean; rule?: BalancedRule; scaling?: Scaling; tta?: readonly TtaView[] } = {},
): Promise<Calibration & { tta: TtaView[] }> {
  refuseAdapted(modelDir, readMeta(modelDir));
  const loaded = await loadModel(modelDir);
  const { meta } = loaded;
  // New test-time views change every score, so they are only ever set together with a new calibration.
  const tta = opts.tta ? [...opts.tta] : meta.tta;
  const d = meta.data;
  if (d.valFraction === undefined || d.splitSeed === undefined)
    throw new Error(`${modelDir}: cxr.json does not record its validation split`);
  const { val, info } = await loadTrainVal(dataRoot, {
    ...recordedSplit(meta),
    valFraction: d.valFraction,
    seed: d.splitSeed,
    size: meta.inputSize,
    // Shift-aware calibration changes the films before the model's normalisation, so it loads them raw.
    normalize: opts.shifts ? 'none' : meta.preprocessing.normalize,
    warn: log,
  });
  if (d.fingerprint && info.fingerprint !== d.fingerprint) {
    throw new Error(`the data in ${dataRoot} is not the data this model was trained on (fingerprint differs)`);
  }
  const shifted = opts.shifts
    ? await calibrateUnderShift(loaded.members, val, {
        tta,
        normalize: meta.preprocessing.normalize,
        log,
        rule: opts.rule,
        scaling: opts.scaling,
      })
    : null;
  const c = shifted ?? (await calibrateOnValidation(loaded.members, val, tta, 64, opts.rule, opts.scaling));
  loaded.members.forEach((m) => m.dispose());
  const updated: ModelMeta = {
    ...meta,
    tta,
    temperature: c.temperature,
    logitBias: c.bias,
    operatingPoints: c.operatingPoints,
    validation: { ...meta.validation, ...c.metrics },
    calibration: { ...(shifted ? shifted.record : { method: 'validation' }), scaling: c.scaling },
  };
  // Whole or not at all: written in place, a kill or a full disk mid-write left a cut cxr.json, and the model
  // folder could no longer be loaded, nor calibrated again.
  writeFileAtomic(path.join(modelDir, 'cxr.json'), JSON.stringify(updated, null, 2) + '\n');
  if (fs.existsSync(path.join(modelDir, 'MODEL_CARD.md'))) writeModelCard(modelDir, updated, cardCommand(modelDir));
  writeValidationFiles(modelDir, dataRoot, val.files, c);
  // Evaluations stored in the folder follow the new calibration, so the report never mixes the two.
  // cxr.json is part of the model's identity: the restated evaluations record the one it has now.
  const after = { name: updated.name, version: updated.version, sha256: modelIdentity(modelDir).sha256 };
  restateEvaluations(modelDir, meta, updated, log, { before: loaded.sha256, after });
  log(
    `recalibrated on ${val.labels.length} validation images (test-time views ${tta.join(', ')}): ` +
      `T=${c.temperature.toFixed(3)}` +
      (c.scaling === 'platt' ? `, bias ${c.bias.toFixed(3)}, ` : ', ') +
      `screening ${c.operatingPoints.screening.threshold.toFixed(3)}, ` +
      `balanced ${c.operatingPoints.balanced.threshold.toFixed(3)} (${c.operatingPoints.balanced.rule}), ` +
      `validation ECE ${c.metrics.ece.toFixed(3)}`,
  );
  const note = c.scaling === 'temperature' ? temperatureBoundNote(c.temperature) : null;
  if (note) log(note);
  return { ...c, tta };
}

// Shift-aware calibration (`cxr calibrate --shifts`): the temperature and the operating points
// are chosen on the validation films as they are *and* under mild nuisance changes of the
// robustness benchmark (data/perturb_catalog.ts) — exposure, gamma, contrast, blur, noise, JPEG,
// resampling, framing.
// A validation split the model nearly separates leaves the balanced threshold anywhere on a wide
// plateau and fits an over-sharp temperature; films from another site or year then score NORMAL
// films too high (docs/robustness.md). Pooling mildly changed copies of the same validation films
// puts the threshold where it holds under such changes and keeps the probability honest there.
// Still validation only: no test film, no label from outside the training folder.
/** The changes pooled with the clean films: the kinds of difference seen between sites, not broken films. */
export const SHIFT_CHANGES = [
  'exposure-up',
  'exposure-down',
  'gamma-up',
  'gamma-down',
  'contrast-down',
  'contrast-up',
  'blur',
  'noise',
  'jpeg',
  'resample',
  'zoom',
  'padding',
  'collimation',
] as const;
/** Mild: the benchmark's lowest graded strength. */
export const SHIFT_STRENGTH = 1 / 3;

export type ShiftCalibrationRecord = {
  method: 'validation+shifts';
  changes: string[];
  strength: number;
  /** Films per view (the clean validation split) and views pooled (clean + one per change). */
  films: number;
  views: number;
};

async function viewLogits(
  members: LayersModel[],
  raw: ImageSet,
  change: string | null,
  o: ShiftOptions,
): Promise<Float32Array> {
  const n = raw.labels.length;
  const pixels = change
    ? await perturbImages(change, raw.pixels, raw.files, raw.size, o.strength ?? SHIFT_STRENGTH, o.seed ?? 1)
    : new Uint8Array(raw.pixels);
  normalizeImages(pixels, n, raw.size, o.normalize);
  return predictAllLogits(members, pixels, n, raw.size, { tta: o.tta, batchSize: o.batchSize ?? 64 });
}

export interface ShiftOptions {
  tta: readonly TtaView[];
  /** The model's own normalisation, applied after each change (as the Predictor does). */
  normalize?: NormalizeMode;
  changes?: readonly string[];
  strength?: number;
  seed?: number;
  batchSize?: number;
  log?: (line: string) => void;
  /** How the balanced point is chosen (eval/operating_points.ts). */
  rule?: BalancedRule;
  scaling?: Scaling;
}

/**
 * Temperature and operating points fitted on the clean validation films pooled with one mildly
 * changed copy per change. `raw` holds the validation squares *before* the model's normalisation.
 * The reported metrics and each point's sensitivity and specificity are those on the clean films.
 */
export async function calibrateUnderShift(
  members: LayersModel[],
  raw: ImageSet,
  o: ShiftOptions,
): Promise<Calibration & { record: ShiftCalibrationRecord }> {
  const changes = [...(o.changes ?? SHIFT_CHANGES)];
  const labels = Array.from(raw.labels);
  const clean = await viewLogits(members, raw, null, o);
  const pooledLogits = Array.from(clean);
  const pooledLabels = [...labels];
  for (const change of changes) {
    o.log?.(`calibration view: ${change} at strength ${(o.strength ?? SHIFT_STRENGTH).toFixed(2)}`);
    pooledLogits.push(...(await viewLogits(members, raw, change, o)));
    pooledLabels.push(...labels);
  }
  const scaling = o.scaling ?? 'temperature';
  const { temperature, bias } = fitScaling(pooledLogits, pooledLabels, scaling);
  const ops = operatingPoints(
    pooledLabels,
    calibrated(Float32Array.from(pooledLogits), temperature, bias),
    SCREENING_SENSITIVITY,
    o.rule,
  );
  const probs = calibrated(clean, temperature, bias);
  const onClean = (p: { threshold: number; rule?: string }) => {
    const c = confusionAt(labels, probs, p.threshold);
    return {
      threshold: p.threshold,
      sensitivity: c.tp / (c.tp + c.fn),
      specificity: c.tn / (c.tn + c.fp),
      rule: p.rule,
    };
  };
  return {
    temperature,
    bias,
    scaling,
    operatingPoints: { screening: onClean(ops.screening), balanced: onClean(ops.balanced) },
    metrics: evaluate(labels, probs, { threshold: ops.balanced.threshold }),
    probs,
    labels,
    record: {
      method: 'validation+shifts',
      changes,
      strength: o.strength ?? SHIFT_STRENGTH,
      films: labels.length,
      views: changes.length + 1,
    },
  };
}
