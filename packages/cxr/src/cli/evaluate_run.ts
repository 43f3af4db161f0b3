// `cxr evaluate`: a saved model on a labelled folder, at an operating point chosen on validation.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../models/io';
import { calibrated, predictAllLogits } from '../models/infer';
import { loadImageSet, splitRecords } from '../data/dataset_images';
import { evaluate } from '../eval/metrics';
import type { Metrics } from '../eval/metrics_schema';

export interface EvaluateRunOptions {
  modelDir: string;
  data: string;
  split?: string;
  operatingPoint?: string;
  out?: string;
  progress?: boolean;
  warn?: (line: string) => void;
}

export async function runEvaluation(o: EvaluateRunOptions): Promise<Metrics & { operatingPoint: string; model: Record<string, string> }> {
  const loaded = await loadModel(o.modelDir);
  const { meta } = loaded;
  const opName = o.operatingPoint ?? meta.defaultOperatingPoint;
  const op = meta.operatingPoints[opName];
  if (!op) throw new Error(`model has no operating point '${opName}' (has: ${Object.keys(meta.operatingPoints).join(', ')})`);
  const records = await splitRecords(o.data, o.split);
  const set = await loadImageSet(records, records[0].split, { size: meta.inputSize, normalize: meta.preprocessing.normalize, progress: o.progress, warn: o.warn });
  const logits = await predictAllLogits(loaded.members, set.pixels, set.labels.length, set.size, { tta: meta.tta });
  const probs = calibrated(logits, meta.temperature);
  const labels = Array.from(set.labels);
  const metrics = evaluate(labels, probs, { threshold: op.threshold });
  loaded.members.forEach((m) => m.dispose());
  const split = records[0].split;
  if (o.out) {
    fs.mkdirSync(path.join(o.out, 'predictions'), { recursive: true });
    fs.mkdirSync(path.join(o.out, 'metrics'), { recursive: true });
    fs.writeFileSync(path.join(o.out, 'predictions', `${split}.json`), JSON.stringify({ files: set.files, labels, probs }));
    fs.writeFileSync(path.join(o.out, 'metrics', `${split}.json`), JSON.stringify(metrics, null, 2) + '\n');
  }
  return { ...metrics, operatingPoint: opName, model: { name: meta.name, version: meta.version, sha256: loaded.sha256 } };
}
