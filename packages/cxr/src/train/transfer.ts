// Transfer learning from an ImageNet backbone (recipe.backbone):
//   1. head: the backbone is frozen (batch norm in inference mode) and only the new head
//      (GAP -> dropout -> Dense(1, sigmoid)) trains, on pooled features. Without augmentation
//      the features of train and validation are computed once and cached on disk; with it the
//      frozen backbone runs on every augmented batch.
//   2. fine-tuning (recipe.fineTune, optional): the top blocks of the backbone unfreeze (batch
//      norm stays frozen) and the whole model trains on images at a lower learning rate.
// The best epoch of either phase on validation AUC becomes the model; calibration, operating
// points and the saved folder are those of every cxr run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { AugmentConfig, augmentBatch, isIdentity, resolveAugment } from '../data/augment';
import { BalanceMode, epochOrder, lossWeights } from '../data/balance';
import { rocAuc } from '../eval';
import { buildTransferModel, freezeBackbone, POOL_LAYER, resolveBackbone } from '../models/backbones';
import { compileFrozen } from '../models/backbones/fold';
import { fileLoader, saveLayersModel } from '../models/io';
import { predictAllLogits, sigmoid, toInput } from '../models/infer';
import { LoopState, readState, restoreCheckpoint, saveCheckpoint } from './checkpoint';
import { loadTrainVal, splitOf } from '../data/dataset_images';
import { count, ImageSet } from '../data/images';
import { weightedBce } from './loss';
import { Recipe } from './recipe';
import { makeSchedule } from './schedule';
import type { TrainResult } from './trainer';
import { Extractor, extractFeatures, gatherRows } from './transfer_features';
import { finalizeTransfer } from './transfer_finalize';
import { buildHead, headLogits, transplantHead } from './transfer_head';

export interface TransferRunOptions {
  recipe: Recipe;
  data: string;
  out: string;
  name?: string;
  resume?: boolean;
  progress?: boolean;
  log?: (line: string) => void;
  command?: string;
}

interface TransferState extends LoopState {
  phase: 'head' | 'fine-tune';
  /** Epochs the head phase ran (it may stop early); fine-tuning epochs count on from there. */
  headEpochs: number;
  headSteps: number;
  bestPhase: 'head' | 'fine-tune';
}

function makeOptimizer(name: Recipe['optimizer'], lr: number): tf.Optimizer {
  switch (name) {
    case 'rmsprop': return tf.train.rmsprop(lr);
    case 'adam': return tf.train.adam(lr);
    case 'sgd': return tf.train.momentum(lr, 0.9, true);
  }
}

function setLearningRate(opt: tf.Optimizer, lr: number): void {
  (opt as unknown as { learningRate: number }).learningRate = lr;
}

function meanBce(labels: ArrayLike<number>, logits: Float32Array): number {
  let s = 0;
  for (let i = 0; i < logits.length; i++) {
    const p = Math.min(1 - 1e-7, Math.max(1e-7, sigmoid(logits[i])));
    s -= labels[i] ? Math.log(p) : Math.log(1 - p);
  }
  return s / Math.max(1, logits.length);
}

function batchPixels(set: ImageSet, idx: readonly number[]): Uint8Array {
  const per = set.size * set.size;
  const buf = new Uint8Array(idx.length * per);
  idx.forEach((src, j) => buf.set(set.pixels.subarray(src * per, (src + 1) * per), j * per));
  return buf;
}

/** Images of a batch as model input, augmented when asked (the caller disposes the result). */
function batchInput(set: ImageSet, idx: readonly number[], aug: AugmentConfig | null, seed: string): tf.Tensor4D {
  const x = toInput(batchPixels(set, idx), idx.length, set.size);
  if (!aug) return x;
  const xa = augmentBatch(x, aug, seed);
  x.dispose();
  return xa;
}

async function zeroStep(model: tfl.LayersModel, opt: tf.Optimizer, x: tf.Tensor, y: tf.Tensor): Promise<void> {
  // Optimiser slots exist only after a first step; restoring a checkpoint needs them.
  setLearningRate(opt, 0);
  await model.trainOnBatch(x, y);
  tf.dispose([x, y]);
}

export async function trainTransfer(o: TransferRunOptions): Promise<TrainResult> {
  const { recipe, out } = o;
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const progress = o.progress ?? process.stderr.isTTY === true;
  const backbone = await resolveBackbone(recipe.backbone!, { weights: recipe.weights, progress, log });
  const { spec } = backbone;
  const size = recipe.inputSize ?? spec.defaultInputSize;
  log(`backbone ${spec.name}: ${spec.title}; weights ${backbone.weights.path} (${backbone.weights.source})` +
    (backbone.fallback ? `\n  fallback: ${backbone.fallback}` : ''));

  const { train, val, info } = await loadTrainVal(o.data, {
    size, progress, warn: log, ...splitOf(recipe),
  });
  const dropout = recipe.headDropout ?? 0.2;
  const tm = await buildTransferModel(backbone, size, { dropout, seed: recipe.seed });
  const layersExtractor = tfl.model({ inputs: tm.model.inputs, outputs: tm.model.getLayer(POOL_LAYER).output as tfl.SymbolicTensor });
  const dim = layersExtractor.outputs[0].shape[1] as number;
  // The frozen backbone with batch norm folded into fused convolutions: same features, fewer passes.
  const compiled = compileFrozen(tm.model, POOL_LAYER);
  const extract: Extractor = compiled ? (x) => compiled.predict(x) : (x) => layersExtractor.predict(x) as tf.Tensor;
  const identity = JSON.stringify({ backbone: spec.name, sha256: backbone.weights.sha256, size });
  const augCfg = resolveAugment(recipe.augment);
  const aug = isIdentity(augCfg) ? null : augCfg;
  const balance = recipe.balance as BalanceMode;
  const loss = weightedBce(recipe.labelSmoothing, lossWeights(train.labels, balance));
  const labels = Array.from(val.labels);

  fs.mkdirSync(out, { recursive: true });
  const ckptLast = path.join(out, 'checkpoints', 'last');
  const ckptHead = path.join(out, 'checkpoints', 'best-head');
  const ckptBest = path.join(out, 'checkpoints', 'best');
  const logFile = path.join(out, 'log.jsonl');
  const saved = o.resume ? (readState(ckptLast) as TransferState | null) : null;
  let state: TransferState = saved ?? {
    phase: 'head', headEpochs: 0, headSteps: 0, bestPhase: 'head', epoch: 0, step: 0, bestAuc: -1, bestEpoch: -1, schedule: {}, elapsedSeconds: 0,
  };
  if (saved) {
    log(`resuming after epoch ${state.epoch} (${state.phase}; best validation AUC ${state.bestAuc.toFixed(4)} at epoch ${state.bestEpoch})`);
    if (fs.existsSync(logFile)) {
      const kept = fs.readFileSync(logFile, 'utf8').split('\n').filter((l) => l && JSON.parse(l).epoch <= state.epoch);
      fs.writeFileSync(logFile, kept.map((l) => l + '\n').join(''));
    }
  } else if (fs.existsSync(logFile)) {
    fs.rmSync(logFile);
  }
  const started = Date.now() - state.elapsedSeconds * 1000;
  const c = count(train);
  const ft = recipe.fineTune;
  log(`transfer learning at ${size}px on ${c.n} images (${c.normal} normal, ${c.pneumonia} pneumonia), validating on ${labels.length}; ` +
    `head ${recipe.epochs} epochs (${recipe.optimizer} lr ${recipe.lr}, batch ${recipe.batchSize}, ${aug ? `augment ${recipe.augment}, features per batch` : 'cached features'})` +
    (ft ? `, then fine-tuning the top ${ft.blocks} blocks for ${ft.epochs} epochs at lr ${ft.lr}` : ''));

  const record = (entry: Record<string, unknown>) => fs.appendFileSync(logFile, JSON.stringify(entry) + '\n');
  const validation = (logits: Float32Array) => {
    const probs = Array.from(logits, sigmoid);
    return {
      auc: rocAuc(labels, probs) ?? 0,
      acc: probs.reduce((s, p, i) => s + (+(p >= 0.5) === labels[i] ? 1 : 0), 0) / Math.max(1, labels.length),
      loss: meanBce(labels, logits),
    };
  };

  // Phase 1: the head.
  const valFeatures = await extractFeatures(extract, dim, val, { identity, progress, label: 'validation features' });
  log(`validation features: ${labels.length} images x ${dim} in ${valFeatures.seconds.toFixed(1)} s${valFeatures.cached ? ' (cached)' : ''}`);
  const head = buildHead(dim, dropout, recipe.seed);
  const headOpt = makeOptimizer(recipe.optimizer, recipe.lr);
  head.compile({ optimizer: headOpt, loss });
  if (state.phase === 'head' && state.epoch < recipe.epochs) {
    const trainFeatures = aug ? null : await extractFeatures(extract, dim, train, { identity, progress, label: 'train features' });
    if (trainFeatures) log(`train features: ${c.n} images x ${dim} in ${trainFeatures.seconds.toFixed(1)} s${trainFeatures.cached ? ' (cached)' : ''}`);
    if (saved) {
      await zeroStep(head, headOpt, tf.zeros([1, dim]), tf.zeros([1, 1]));
      state = { ...state, ...(await restoreCheckpoint(ckptLast, head, headOpt)) };
    }
    const schedule = makeSchedule(recipe, state.schedule);
    for (let epoch = state.epoch; epoch < recipe.epochs; epoch++) {
      const t0 = Date.now();
      const indices = epochOrder(train.labels, balance, recipe.seed, epoch);
      const steps = Math.ceil(indices.length / recipe.batchSize);
      let lossSum = 0;
      for (let b = 0; b < steps; b++) {
        const idx = indices.slice(b * recipe.batchSize, (b + 1) * recipe.batchSize);
        let x: tf.Tensor;
        if (trainFeatures) {
          x = gatherRows(trainFeatures.data, dim, idx);
        } else {
          const xi = batchInput(train, idx, aug, `${recipe.seed}:${epoch}:${b}`);
          x = extract(xi);
          xi.dispose();
        }
        const y = tf.tensor2d(Float32Array.from(idx, (i) => train.labels[i]), [idx.length, 1]);
        setLearningRate(headOpt, schedule.lr(state.step, steps));
        const l = (await head.trainOnBatch(x, y)) as number;
        tf.dispose([x, y]);
        if (!Number.isFinite(l)) throw new Error(`training diverged: loss ${l} at epoch ${epoch + 1}, batch ${b + 1}`);
        lossSum += l;
        state.step++;
      }
      const v = validation(headLogits(head, valFeatures.data, dim));
      const entry = {
        epoch: epoch + 1, phase: 'head', loss: lossSum / steps, val_loss: v.loss, val_auc: v.auc, val_accuracy: v.acc,
        lr: schedule.lr(state.step - 1, steps), seconds: (Date.now() - t0) / 1000, train_seconds: (Date.now() - t0) / 1000,
      };
      record(entry);
      log(`epoch ${epoch + 1}/${recipe.epochs} (head): loss ${entry.loss.toFixed(4)}, val loss ${v.loss.toFixed(4)}, ` +
        `val AUC ${v.auc.toFixed(4)}, val acc ${(v.acc * 100).toFixed(1)}%, ${entry.seconds.toFixed(1)} s`);
      if (schedule.onValidation(v.auc)) log('  reducing learning rate');
      let stop = false;
      if (v.auc > state.bestAuc) {
        Object.assign(state, { bestAuc: v.auc, bestEpoch: epoch + 1, bestPhase: 'head' });
        fs.rmSync(ckptHead, { recursive: true, force: true });
        await saveLayersModel(head, ckptHead);
      } else if (recipe.patience > 0 && epoch + 1 - state.bestEpoch >= recipe.patience) {
        log(`early stopping the head: no better validation AUC for ${recipe.patience} epochs`);
        stop = true;
      }
      Object.assign(state, { epoch: epoch + 1, headEpochs: epoch + 1, headSteps: state.step, schedule: schedule.state(), elapsedSeconds: (Date.now() - started) / 1000 });
      await saveCheckpoint(ckptLast, head, headOpt, state);
      if (stop) break;
    }
  }
  if (state.phase === 'head') {
    // The best head on the untouched backbone: the model to beat, and where fine-tuning starts.
    const best = await tfl.loadLayersModel(fileLoader(ckptHead));
    transplantHead(best, tm.model);
    best.dispose();
    fs.rmSync(ckptBest, { recursive: true, force: true });
    await saveLayersModel(tm.model, ckptBest);
  }
  head.dispose();
  compiled?.dispose();

  // Phase 2: fine-tuning the top blocks.
  if (ft) {
    freezeBackbone(tm.model, tm.blocks, ft.blocks);
    const ftRecipe: Recipe = { ...recipe, lr: ft.lr, epochs: ft.epochs, warmupEpochs: 0 };
    const opt = makeOptimizer(recipe.optimizer, ft.lr);
    tm.model.compile({ optimizer: opt, loss });
    if (state.phase === 'fine-tune') {
      await zeroStep(tm.model, opt, toInput(train.pixels.subarray(0, size * size), 1, size), tf.zeros([1, 1]));
      state = { ...state, ...(await restoreCheckpoint(ckptLast, tm.model, opt)) };
    } else {
      state = { ...state, phase: 'fine-tune', schedule: {} };
    }
    const trainable = tm.model.trainableWeights.reduce((s, w) => s + (w.shape as number[]).reduce((a, d) => a * d, 1), 0);
    log(`fine-tuning ${trainable} parameters (top ${ft.blocks} of ${tm.blocks.length} blocks, batch norm frozen)`);
    const schedule = makeSchedule(ftRecipe, state.schedule);
    const total = state.headEpochs + ft.epochs;
    for (let epoch = state.epoch; epoch < total; epoch++) {
      const t0 = Date.now();
      const e = epoch - state.headEpochs;
      const indices = epochOrder(train.labels, balance, recipe.seed, epoch);
      const steps = Math.ceil(indices.length / recipe.batchSize);
      let lossSum = 0;
      for (let b = 0; b < steps; b++) {
        const idx = indices.slice(b * recipe.batchSize, (b + 1) * recipe.batchSize);
        const x = batchInput(train, idx, aug, `${recipe.seed}:${epoch}:${b}`);
        const y = tf.tensor2d(Float32Array.from(idx, (i) => train.labels[i]), [idx.length, 1]);
        setLearningRate(opt, schedule.lr(state.step - state.headSteps, steps));
        const l = (await tm.model.trainOnBatch(x, y)) as number;
        tf.dispose([x, y]);
        if (!Number.isFinite(l)) throw new Error(`fine-tuning diverged: loss ${l} at epoch ${epoch + 1}, batch ${b + 1}`);
        lossSum += l;
        state.step++;
      }
      const trainSeconds = (Date.now() - t0) / 1000;
      const v = validation(await predictAllLogits([tm.model], val.pixels, labels.length, size, { batchSize: 32 }));
      const entry = {
        epoch: epoch + 1, phase: 'fine-tune', loss: lossSum / steps, val_loss: v.loss, val_auc: v.auc, val_accuracy: v.acc,
        lr: schedule.lr(state.step - state.headSteps - 1, steps), seconds: (Date.now() - t0) / 1000, train_seconds: trainSeconds,
      };
      record(entry);
      log(`epoch ${epoch + 1}/${total} (fine-tune ${e + 1}/${ft.epochs}): loss ${entry.loss.toFixed(4)}, val loss ${v.loss.toFixed(4)}, ` +
        `val AUC ${v.auc.toFixed(4)}, val acc ${(v.acc * 100).toFixed(1)}%, ${entry.seconds.toFixed(0)} s ` +
        `(${((trainSeconds / steps) * 1000).toFixed(0)} ms/step)`);
      if (schedule.onValidation(v.auc)) log('  reducing learning rate');
      let stop = false;
      if (v.auc > state.bestAuc) {
        Object.assign(state, { bestAuc: v.auc, bestEpoch: epoch + 1, bestPhase: 'fine-tune' });
        fs.rmSync(ckptBest, { recursive: true, force: true });
        await saveLayersModel(tm.model, ckptBest);
      } else if (recipe.patience > 0 && epoch + 1 - Math.max(state.bestEpoch, state.headEpochs) >= recipe.patience) {
        log(`early stopping fine-tuning: no better validation AUC for ${recipe.patience} epochs`);
        stop = true;
      }
      Object.assign(state, { epoch: epoch + 1, schedule: schedule.state(), elapsedSeconds: (Date.now() - started) / 1000 });
      await saveCheckpoint(ckptLast, tm.model, opt, state);
      if (stop) break;
    }
  }

  const best = await tfl.loadLayersModel(fileLoader(ckptBest));
  const meta = await finalizeTransfer({
    model: best, backbone, recipe, size, train, val, outDir: out, name: o.name, dataInfo: info,
    bestEpoch: state.bestEpoch, bestPhase: state.bestPhase, epochsRun: state.epoch, seconds: state.elapsedSeconds,
    command: o.command, log,
  });
  best.dispose();
  tm.model.dispose();
  for (const d of [ckptBest, ckptHead]) fs.rmSync(d, { recursive: true, force: true });
  return { meta, epochs: state.epoch, seconds: state.elapsedSeconds };
}

