// The end of a transfer run, as for every cxr run: calibration (temperature) and operating
// points on the validation split, then a normal cxr model folder (model.json + weights.bin +
// cxr.json), its model card, validation predictions and metrics.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { evaluate, fitTemperature, operatingPoints } from '../eval';
import type { ResolvedBackbone } from '../models/backbones';
import { writeModelCard } from '../models/card';
import { saveModel } from '../models/io';
import { MODEL_FORMAT, ModelMeta } from '../models/metadata';
import { calibrated, predictAllLogits } from '../models/infer';
import { ImageSet, count } from '../data/images';
import type { Recipe } from './recipe';

export interface FinalizeInput {
  model: tfl.LayersModel;
  backbone: ResolvedBackbone;
  recipe: Recipe;
  size: number;
  train: ImageSet;
  val: ImageSet;
  outDir: string;
  name?: string;
  dataInfo: Record<string, unknown>;
  bestEpoch: number;
  bestPhase: string;
  epochsRun: number;
  seconds: number;
  command?: string;
  log: (line: string) => void;
}

export async function finalizeTransfer(o: FinalizeInput): Promise<ModelMeta> {
  const { model, backbone: b, recipe, val } = o;
  const arch = `transfer/${b.spec.name}`;
  const valLogits = await predictAllLogits([model], val.pixels, val.labels.length, o.size, { tta: recipe.tta, batchSize: 32 });
  const labels = Array.from(val.labels);
  const temperature = fitTemperature(Array.from(valLogits), labels);
  const probs = calibrated(valLogits, temperature);
  const ops = operatingPoints(labels, probs);
  const metrics = evaluate(labels, probs, { threshold: ops.balanced.threshold });
  const meta: ModelMeta = {
    format: MODEL_FORMAT,
    name: o.name ?? `${b.spec.name}-transfer-${new Date().toISOString().slice(0, 10)}`,
    version: new Date().toISOString().replace(/[-:]/g, '').slice(0, 15),
    arch,
    inputSize: o.size,
    preprocessing: {
      resize: 'fill', scale: 1 / 255, grayscale: true,
      // Built into the model (layer to_rgb): nothing for a caller to do beyond the usual gray/255.
      inModel: 'gray replicated to 3 channels, then x*2-1 (= pixel/127.5 - 1, the backbone\'s ImageNet normalisation)',
    },
    classNames: ['NORMAL', 'PNEUMONIA'],
    temperature,
    operatingPoints: {
      screening: { threshold: ops.screening.threshold, sensitivity: ops.screening.sensitivity, specificity: ops.screening.specificity },
      balanced: { threshold: ops.balanced.threshold, sensitivity: ops.balanced.sensitivity, specificity: ops.balanced.specificity },
    },
    defaultOperatingPoint: 'balanced',
    tta: recipe.tta,
    members: [],
    recipe: {
      ...recipe, arch, inputSize: o.size,
      backbone: b.spec.name, backboneRequested: b.requested, backboneFallback: b.fallback,
      backboneWeights: { url: b.spec.weights.url, source: b.weights.source, sha256: b.weights.sha256 },
    },
    data: { ...o.dataInfo, train: count(o.train), validation: count(val) },
    validation: {
      ...metrics, bestEpoch: o.bestEpoch, bestPhase: o.bestPhase, epochsRun: o.epochsRun, trainingSeconds: o.seconds,
    } as Record<string, unknown>,
    createdAt: new Date().toISOString(),
  };
  await saveModel(model, o.outDir, meta);
  writeModelCard(o.outDir, meta, o.command);
  fs.mkdirSync(path.join(o.outDir, 'predictions'), { recursive: true });
  fs.mkdirSync(path.join(o.outDir, 'metrics'), { recursive: true });
  fs.writeFileSync(path.join(o.outDir, 'predictions', 'val.json'), JSON.stringify({ files: val.files, labels, probs }));
  fs.writeFileSync(path.join(o.outDir, 'metrics', 'val.json'), JSON.stringify(metrics, null, 2) + '\n');
  o.log(`validation (best epoch ${o.bestEpoch}, ${o.bestPhase}, T=${temperature.toFixed(3)}): AUC ${metrics.auc?.toFixed(4)}, ` +
    `accuracy ${(metrics.accuracy * 100).toFixed(1)}% at the balanced threshold ${ops.balanced.threshold.toFixed(3)}`);
  return meta;
}
