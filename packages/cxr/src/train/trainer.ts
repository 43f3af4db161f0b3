// The training loop: per-batch augmentation on the engine, model.trainOnBatch, validation AUC
// every epoch, best checkpoint on validation AUC, atomic per-epoch checkpoints and --resume,
// then calibration (temperature) and operating points chosen on validation only.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { SingleBar } from 'cli-progress';
import { rocAuc } from '../eval';
import { fitOodFromSets } from '../explain/ood_fit';
import { saveOod } from '../explain/ood';
import { architecture } from '../models';
import { writeModelCard } from '../models/card';
import { fileLoader, saveLayersModel, saveModel } from '../models/io';
import { MODEL_FORMAT, ModelMeta } from '../models/metadata';
import { predictAllLogits, sigmoid, toInput } from '../models/infer';
import { calibrateOnValidation, writeValidationFiles } from './calibrate';
import { restoreCheckpoint, saveCheckpoint, LoopState, readState } from './checkpoint';
import { ImageSet, count } from '../data/images';
import { weightedBce } from './loss';
import { Recipe } from './recipe';
import { makeSchedule } from './schedule';

export interface EpochPlan {
  /** Training-set indices for this epoch, in order. */
  indices: number[];
}

export interface TrainOptions {
  recipe: Recipe;
  train: ImageSet;
  val: ImageSet;
  outDir: string;
  name?: string;
  resume?: boolean;
  /** Per-epoch sample order (shuffling and class balancing). */
  plan: (epoch: number) => EpochPlan;
  classWeights?: [number, number];
  /** Per-batch augmentation on the engine; must return a new tensor (the input is disposed by the caller). */
  augment?: (x: tf.Tensor4D, epoch: number, batch: number) => tf.Tensor4D;
  dataInfo?: Record<string, unknown>;
  progress?: boolean;
  log?: (line: string) => void;
  /** The command line that started the run, for the model card. */
  command?: string;
}

export interface TrainResult {
  meta: ModelMeta;
  epochs: number;
  seconds: number;
}

function setLearningRate(opt: tf.Optimizer, lr: number): void {
  const o = opt as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else o.learningRate = lr;
}

function makeOptimizer(recipe: Recipe): tf.Optimizer {
  switch (recipe.optimizer) {
    case 'rmsprop': return tf.train.rmsprop(recipe.lr);
    case 'adam': return tf.train.adam(recipe.lr);
    case 'sgd': return tf.train.momentum(recipe.lr, 0.9, true);
  }
}

function meanBce(labels: ArrayLike<number>, logits: Float32Array): number {
  let s = 0;
  for (let i = 0; i < logits.length; i++) {
    const p = Math.min(1 - 1e-7, Math.max(1e-7, sigmoid(logits[i])));
    s -= labels[i] ? Math.log(p) : Math.log(1 - p);
  }
  return s / Math.max(1, logits.length);
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const { recipe, train: trainSet, val, outDir } = opts;
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const arch = architecture(recipe.arch);
  const size = recipe.inputSize ?? arch.defaultInputSize;
  if (trainSet.size !== size || val.size !== size) throw new Error(`images are ${trainSet.size}px but the model takes ${size}px`);
  fs.mkdirSync(outDir, { recursive: true });
  const ckptLast = path.join(outDir, 'checkpoints', 'last');
  const ckptBest = path.join(outDir, 'checkpoints', 'best');
  const logFile = path.join(outDir, 'log.jsonl');

  const model = arch.build(size);
  const optimizer = makeOptimizer(recipe);
  model.compile({ optimizer, loss: weightedBce(recipe.labelSmoothing, opts.classWeights) });

  let state: LoopState = { epoch: 0, step: 0, bestAuc: -1, bestEpoch: -1, schedule: {}, elapsedSeconds: 0 };
  if (opts.resume && readState(ckptLast)) {
    // The optimiser creates its slots on the first step; run one on a zero-LR batch so that
    // setWeights has slots to fill.
    setLearningRate(optimizer, 0);
    const x0 = toInput(trainSet.pixels.subarray(0, size * size), 1, size);
    await model.trainOnBatch(x0, tf.tensor2d([trainSet.labels[0]], [1, 1]));
    x0.dispose();
    state = await restoreCheckpoint(ckptLast, model, optimizer);
    log(`resuming after epoch ${state.epoch} (best validation AUC ${state.bestAuc.toFixed(4)} at epoch ${state.bestEpoch})`);
    // Keep the log consistent with the checkpoint: drop epochs logged after it was written.
    if (fs.existsSync(logFile)) {
      const kept = fs.readFileSync(logFile, 'utf8').split('\n').filter((l) => l && JSON.parse(l).epoch <= state.epoch);
      fs.writeFileSync(logFile, kept.map((l) => l + '\n').join(''));
    }
  } else if (fs.existsSync(logFile)) {
    fs.rmSync(logFile);
  }
  const schedule = makeSchedule(recipe, state.schedule);
  const c = count(trainSet);
  log(`training ${arch.name} at ${size}px on ${c.n} images (${c.normal} normal, ${c.pneumonia} pneumonia), ` +
    `validating on ${val.labels.length}; ${recipe.epochs} epochs, batch ${recipe.batchSize}, ${recipe.optimizer} lr ${recipe.lr}`);

  const per = size * size;
  const started = Date.now() - state.elapsedSeconds * 1000;
  let stopped = false;
  for (let epoch = state.epoch; epoch < recipe.epochs && !stopped; epoch++) {
    const t0 = Date.now();
    const { indices } = opts.plan(epoch);
    const steps = Math.ceil(indices.length / recipe.batchSize);
    const bar = opts.progress ? new SingleBar({
      format: `epoch ${epoch + 1}/${recipe.epochs} [{bar}] {value}/{total} batches | loss {loss} | eta {eta_formatted} | {last}`,
      stream: process.stderr, hideCursor: true,
    }) : null;
    bar?.start(steps, 0, { loss: '-', last: state.bestAuc >= 0 ? `best val AUC ${state.bestAuc.toFixed(4)}` : '' });
    let lossSum = 0;
    const tTrain = Date.now();
    for (let b = 0; b < steps; b++) {
      const idx = indices.slice(b * recipe.batchSize, (b + 1) * recipe.batchSize);
      const buf = new Uint8Array(idx.length * per);
      idx.forEach((src, j) => buf.set(trainSet.pixels.subarray(src * per, (src + 1) * per), j * per));
      setLearningRate(optimizer, schedule.lr(state.step, steps));
      const x = toInput(buf, idx.length, size);
      const xa = opts.augment ? opts.augment(x, epoch, b) : x;
      if (xa !== x) x.dispose();
      const y = tf.tensor2d(Float32Array.from(idx, (i) => trainSet.labels[i]), [idx.length, 1]);
      const loss = (await model.trainOnBatch(xa, y)) as number;
      tf.dispose([xa, y]);
      if (!Number.isFinite(loss)) throw new Error(`training diverged: loss ${loss} at epoch ${epoch + 1}, batch ${b + 1}`);
      lossSum += loss;
      state.step++;
      bar?.update(b + 1, { loss: (lossSum / (b + 1)).toFixed(4) });
    }
    bar?.stop();
    const trainSeconds = (Date.now() - tTrain) / 1000;

    const logits = await predictAllLogits([model], val.pixels, val.labels.length, size, { batchSize: 64 });
    const probs = Array.from(logits, sigmoid);
    const labels = Array.from(val.labels);
    const auc = rocAuc(labels, probs) ?? 0;
    const acc = probs.reduce((s, p, i) => s + (+(p >= 0.5) === labels[i] ? 1 : 0), 0) / Math.max(1, labels.length);
    const entry = {
      epoch: epoch + 1, loss: lossSum / steps, val_loss: meanBce(labels, logits), val_auc: auc, val_accuracy: acc,
      lr: schedule.lr(state.step - 1, steps), seconds: (Date.now() - t0) / 1000, train_seconds: trainSeconds,
    };
    fs.appendFileSync(logFile, JSON.stringify(entry) + '\n');
    log(`epoch ${epoch + 1}/${recipe.epochs}: loss ${entry.loss.toFixed(4)}, val loss ${entry.val_loss.toFixed(4)}, ` +
      `val AUC ${auc.toFixed(4)}, val acc ${(acc * 100).toFixed(1)}%, ${entry.seconds.toFixed(0)} s ` +
      `(${((trainSeconds / steps) * 1000).toFixed(0)} ms/step)`);
    if (schedule.onValidation(auc)) log(`  reducing learning rate`);
    if (auc > state.bestAuc) {
      state.bestAuc = auc;
      state.bestEpoch = epoch + 1;
      fs.rmSync(ckptBest, { recursive: true, force: true });
      await saveLayersModel(model, ckptBest);
    } else if (recipe.patience > 0 && epoch + 1 - state.bestEpoch >= recipe.patience) {
      log(`early stopping: no better validation AUC for ${recipe.patience} epochs`);
      stopped = true;
    }
    state.epoch = epoch + 1;
    state.schedule = schedule.state();
    state.elapsedSeconds = (Date.now() - started) / 1000;
    await saveCheckpoint(ckptLast, model, optimizer, state);
  }

  // Final model = best epoch on validation; calibration and operating points on validation.
  const best = fs.existsSync(ckptBest) ? await tfl.loadLayersModel(fileLoader(ckptBest)) : model;
  const cal = await calibrateOnValidation([best], val, recipe.tta);
  const { temperature, metrics } = cal;
  const seconds = state.elapsedSeconds;
  const meta: ModelMeta = {
    format: MODEL_FORMAT,
    name: opts.name ?? `${arch.name}-${new Date().toISOString().slice(0, 10)}`,
    version: new Date().toISOString().replace(/[-:]/g, '').slice(0, 15),
    arch: arch.name,
    inputSize: size,
    preprocessing: { resize: 'fill', scale: 1 / 255, grayscale: true },
    classNames: ['NORMAL', 'PNEUMONIA'],
    temperature,
    operatingPoints: cal.operatingPoints,
    defaultOperatingPoint: 'balanced',
    tta: recipe.tta,
    members: [],
    recipe: { ...recipe, inputSize: size },
    data: { ...opts.dataInfo, train: count(trainSet), validation: count(val) },
    validation: { ...metrics, bestEpoch: state.bestEpoch, epochsRun: state.epoch, trainingSeconds: seconds } as Record<string, unknown>,
    createdAt: new Date().toISOString(),
  };
  await saveModel(best, outDir, meta);
  writeModelCard(outDir, meta, opts.command);
  // The not-a-chest-X-ray gate, fitted on the same training images (threshold on validation).
  saveOod(outDir, await fitOodFromSets(best, trainSet, val, { memberDir: outDir, fitted: { ...opts.dataInfo } }));
  writeValidationFiles(outDir, val.files, cal);
  fs.rmSync(ckptBest, { recursive: true, force: true });
  if (best !== model) best.dispose();
  model.dispose();
  log(`validation (best epoch ${state.bestEpoch}, T=${temperature.toFixed(3)}): AUC ${metrics.auc?.toFixed(4)}, ` +
    `accuracy ${(metrics.accuracy * 100).toFixed(1)}% at the balanced threshold ${cal.operatingPoints.balanced.threshold.toFixed(3)}`);
  return { meta, epochs: state.epoch, seconds };
}
