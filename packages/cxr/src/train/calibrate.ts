// Calibration and operating points, chosen on the patient-level validation split only. Used at
// the end of training and by `cxr calibrate` (which rebuilds the same split from cxr.json).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { evaluate, fitTemperature, operatingPoints } from '../eval';
import type { Metrics } from '../eval/metrics_schema';
import { cardCommand, writeModelCard } from '../models/card';
import { loadModel } from '../models/io';
import type { ModelMeta } from '../models/metadata';
import { calibrated, predictAllLogits } from '../models/infer';
import { loadTrainVal, recordedSplit } from '../data/dataset_images';
import type { ImageSet } from '../data/images';

export interface Calibration {
  temperature: number;
  operatingPoints: ModelMeta['operatingPoints'];
  metrics: Metrics;
  probs: number[];
  labels: number[];
}

export async function calibrateOnValidation(members: LayersModel[], val: ImageSet, tta: readonly string[], batchSize = 64): Promise<Calibration> {
  const logits = await predictAllLogits(members, val.pixels, val.labels.length, val.size, { tta, batchSize });
  const labels = Array.from(val.labels);
  const temperature = fitTemperature(Array.from(logits), labels);
  const probs = calibrated(logits, temperature);
  const ops = operatingPoints(labels, probs);
  const point = (p: typeof ops.balanced) => ({ threshold: p.threshold, sensitivity: p.sensitivity, specificity: p.specificity });
  return {
    temperature,
    operatingPoints: { screening: point(ops.screening), balanced: point(ops.balanced) },
    metrics: evaluate(labels, probs, { threshold: ops.balanced.threshold }),
    probs,
    labels,
  };
}

export function writeValidationFiles(dir: string, files: string[], c: Calibration): void {
  fs.mkdirSync(path.join(dir, 'predictions'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'metrics'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'predictions', 'val.json'), JSON.stringify({ files, labels: c.labels, probs: c.probs }));
  fs.writeFileSync(path.join(dir, 'metrics', 'val.json'), JSON.stringify(c.metrics, null, 2) + '\n');
}

/**
 * `cxr calibrate`: recomputes temperature and operating points of a saved model on the validation
 * split it was trained with (valFraction, split seed and subset limit are read from cxr.json).
 */
export async function recalibrate(modelDir: string, dataRoot: string, log: (l: string) => void): Promise<Calibration> {
  const loaded = await loadModel(modelDir);
  const { meta } = loaded;
  const d = meta.data as { valFraction?: number; splitSeed?: number; fingerprint?: string };
  if (d.valFraction === undefined || d.splitSeed === undefined) throw new Error(`${modelDir}: cxr.json does not record its validation split`);
  const { val, info } = await loadTrainVal(dataRoot, { ...recordedSplit(meta), valFraction: d.valFraction, seed: d.splitSeed, size: meta.inputSize, normalize: meta.preprocessing.normalize, warn: log });
  if (d.fingerprint && info.fingerprint !== d.fingerprint) {
    throw new Error(`the data in ${dataRoot} is not the data this model was trained on (fingerprint differs)`);
  }
  const c = await calibrateOnValidation(loaded.members, val, meta.tta);
  loaded.members.forEach((m) => m.dispose());
  const updated: ModelMeta = {
    ...meta, temperature: c.temperature, operatingPoints: c.operatingPoints,
    validation: { ...meta.validation, ...c.metrics },
  };
  fs.writeFileSync(path.join(modelDir, 'cxr.json'), JSON.stringify(updated, null, 2) + '\n');
  if (fs.existsSync(path.join(modelDir, 'MODEL_CARD.md'))) writeModelCard(modelDir, updated, cardCommand(modelDir));
  writeValidationFiles(modelDir, val.files, c);
  log(`recalibrated on ${val.labels.length} validation images: T=${c.temperature.toFixed(3)}, ` +
    `screening ${c.operatingPoints.screening.threshold.toFixed(3)}, balanced ${c.operatingPoints.balanced.threshold.toFixed(3)}`);
  return c;
}
