// `cxr evaluate`: a saved model on a labelled folder, at an operating point chosen on validation.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../models/io';
import { calibrated, predictAllLogits } from '../models/infer';
import { loadImageSet, splitRecords } from '../data/dataset_images';
import { filesRelativeTo } from '../data/images';
import { type GroupRow, metricsByGroup } from '../eval/groups';
import { evaluate } from '../eval/metrics';
import { isTrainingRoot, validationRecords } from '../robustness/images';
import { periodGrouper } from '../data/period_balance';
import { parsePatient } from '../data/patients';
import type { Metrics } from '../eval/metrics_schema';

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
  progress?: boolean;
  warn?: (line: string) => void;
  /** Told each file written under `out`. */
  wrote?: (file: string) => void;
}

export async function runEvaluation(
  o: EvaluateRunOptions,
): Promise<Metrics & { operatingPoint: string; model: Record<string, string>; source: string; groups?: GroupRow[] }> {
  const loaded = await loadModel(o.modelDir);
  const { meta } = loaded;
  const opName = o.operatingPoint ?? meta.defaultOperatingPoint;
  const op = meta.operatingPoints[opName];
  if (!op)
    throw new Error(`model has no operating point '${opName}' (has: ${Object.keys(meta.operatingPoints).join(', ')})`);
  // `--split validation` on a training root: the patient-level split the model was calibrated on.
  const ownValidation = o.split === VALIDATION_SPLIT && isTrainingRoot(o.data);
  // `folder`: what patient-number stretches are counted over (the whole training folder for the own split).
  const { records, source, folder } = ownValidation
    ? await validationRecords(o.data, meta)
    : await splitRecords(o.data, o.split).then((r) => ({ records: r, source: `${o.data} (${r[0].split})`, folder: r }));
  const split = ownValidation ? VALIDATION_SPLIT : records[0].split;
  const set = await loadImageSet(records, split, {
    size: meta.inputSize,
    normalize: meta.preprocessing.normalize,
    progress: o.progress,
    warn: o.warn,
  });
  const logits = await predictAllLogits(loaded.members, set.pixels, set.labels.length, set.size, { tta: meta.tta });
  const probs = calibrated(logits, meta.temperature, meta.logitBias);
  const labels = Array.from(set.labels);
  const metrics = evaluate(labels, probs, { threshold: op.threshold });
  loaded.members.forEach((m) => m.dispose());
  if (o.out) {
    const name = evaluationFileName(split);
    fs.mkdirSync(path.join(o.out, 'predictions'), { recursive: true });
    fs.mkdirSync(path.join(o.out, 'metrics'), { recursive: true });
    const predictionsFile = path.join(o.out, 'predictions', `${name}.json`);
    const metricsFile = path.join(o.out, 'metrics', `${name}.json`);
    fs.writeFileSync(predictionsFile, JSON.stringify({ files: filesRelativeTo(o.data, set.files), labels, probs }));
    fs.writeFileSync(metricsFile, JSON.stringify(metrics, null, 2) + '\n');
    o.wrote?.(predictionsFile);
    o.wrote?.(metricsFile);
  }
  return {
    ...metrics,
    operatingPoint: opName,
    model: { name: meta.name, version: meta.version, sha256: loaded.sha256 },
    source,
    ...(o.groups || o.periodGroups
      ? { groups: metricsByGroup(set.files, labels, probs, op.threshold, o.groups ?? byPeriod()) }
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
