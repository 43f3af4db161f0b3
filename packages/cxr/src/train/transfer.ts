// Transfer learning from an ImageNet backbone (recipe.backbone):
//   1. head: the backbone is frozen (batch norm in inference mode) and only the new head
//      (GAP -> dropout -> Dense(1, sigmoid)) trains, on pooled features. Without augmentation
//      the features of train and validation are computed once and cached on disk; with it the
//      frozen backbone runs on every augmented batch.
//   2. fine-tuning (recipe.fineTune, optional): the top blocks of the backbone unfreeze (batch
//      norm stays frozen) and the whole model trains on images at a lower learning rate.
// The best epoch of either phase on validation AUC becomes the model; calibration, operating
// points and the saved folder are those of every cxr run.
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { AugmentConfig, augmentBatch, isIdentity, resolveAugment } from '../data/augment';
import { BalanceMode, epochOrder, lossWeights } from '../data/balance';
import { loadTrainVal, splitOf } from '../data/dataset_images';
import { count, gatherPixels, ImageSet } from '../data/images';
import { buildTransferModel, freezeBackbone, POOL_LAYER, resolveBackbone } from '../models/backbones';
import { compileFrozen } from '../models/backbones/fold';
import { predictAllLogits, toInput } from '../models/infer';
import { fileLoader, saveLayersModel } from '../models/io';
import { writeDirAtomic } from '../models/dir_swap';
import { runLogPath, startRunLog } from '../report/run_log';
import { checkLoadedSplit, LoopState, readState, restoreCheckpoint } from './checkpoint';
import { finishRun, noGateLine } from './finish';
import { fitOodFromSets } from '../explain/ood_fit';
import { saveOod } from '../explain/ood';
import { plural, runEpochs } from './loop';
import { weightedBce } from './loss';
import { createSlots, makeOptimizer } from './optim';
import { backboneRecord } from './model_source';
import { Recipe } from './recipe';
import { makeSchedule } from './schedule';
import type { TrainResult } from './trainer';
import { Extractor, extractFeatures, gatherRows } from './transfer_features';
import { buildHead, headLogits, transplantHead } from './transfer_head';
import { makeDirs } from '../make_dirs';

export interface TransferRunOptions {
  recipe: Recipe;
  data: string;
  out: string;
  name?: string;
  resume?: boolean;
  progress?: boolean;
  log?: (line: string) => void;
  command?: string;
  /** Fit the not-a-chest-X-ray gate at the end (default true), as every other run does. */
  gate?: boolean;
  /** Why `gate` is false, for the line that says so (default: the user's --no-gate). */
  noGateReason?: string;
  /** How many films the checked file list held, for the message when fewer could be read (checkLoadedSplit). */
  listed?: number;
}

interface TransferState extends LoopState {
  phase: 'head' | 'fine-tune';
  /** Epochs the head phase ran (it may stop early); fine-tuning epochs count on from there. */
  headEpochs: number;
  headSteps: number;
  bestPhase: 'head' | 'fine-tune';
}

/** Images of a batch as model input, augmented when asked (the caller disposes the result). */
function batchInput(set: ImageSet, idx: readonly number[], aug: AugmentConfig | null, seed: string): tf.Tensor4D {
  const x = toInput(gatherPixels(set, idx), idx.length, set.size);
  if (!aug) return x;
  const xa = augmentBatch(x, aug, seed);
  x.dispose();
  return xa;
}

/** The line a transfer run opens with: its images and the plan of its phases. */
export function transferPlanLine(
  recipe: Recipe,
  o: { size: number; train: { n: number; normal: number; pneumonia: number }; validating: number; augmented: boolean },
): string {
  const ft = recipe.fineTune;
  const c = o.train;
  return (
    `transfer learning at ${o.size}px on ${c.n} images (${c.normal} normal, ${c.pneumonia} pneumonia), ` +
    `validating on ${o.validating}; ` +
    `head ${plural(recipe.epochs, 'epoch')} (${recipe.optimizer} lr ${recipe.lr}, batch ${recipe.batchSize}, ` +
    `${o.augmented ? `augment ${recipe.augment}, features per batch` : 'cached features'})` +
    (ft
      ? `, then fine-tuning the top ${plural(ft.blocks, 'block')} for ${plural(ft.epochs, 'epoch')} at lr ${ft.lr}`
      : '')
  );
}

export async function trainTransfer(o: TransferRunOptions): Promise<TrainResult> {
  const { recipe, out } = o;
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const progress = o.progress ?? process.stderr.isTTY === true;
  const backbone = await resolveBackbone(recipe.backbone!, { weights: recipe.weights, progress, log });
  const { spec } = backbone;
  const size = recipe.inputSize ?? spec.defaultInputSize;
  log(
    `backbone ${spec.name}: ${spec.title}; weights ${backbone.weights.path} (${backbone.weights.source})` +
      (backbone.fallback ? `\n  fallback: ${backbone.fallback}` : ''),
  );

  const { train, val, info } = await loadTrainVal(o.data, {
    size,
    progress,
    warn: log,
    normalize: recipe.normalize,
    ...splitOf(recipe),
  });
  checkLoadedSplit(o.data, train, val, o.listed);
  const dropout = recipe.headDropout ?? 0.2;
  const tm = await buildTransferModel(backbone, size, { dropout, seed: recipe.seed });
  const layersExtractor = tfl.model({
    inputs: tm.model.inputs,
    outputs: tm.model.getLayer(POOL_LAYER).output as tfl.SymbolicTensor,
  });
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

  makeDirs(out);
  const ckptLast = path.join(out, 'checkpoints', 'last');
  const ckptHead = path.join(out, 'checkpoints', 'best-head');
  const ckptBest = path.join(out, 'checkpoints', 'best');
  const logFile = runLogPath(out);
  const saved = o.resume ? (readState(ckptLast) as TransferState | null) : null;
  let state: TransferState = saved ?? {
    phase: 'head',
    headEpochs: 0,
    headSteps: 0,
    bestPhase: 'head',
    epoch: 0,
    step: 0,
    bestAuc: -1,
    bestEpoch: -1,
    schedule: {},
    elapsedSeconds: 0,
  };
  if (saved)
    log(
      `resuming after epoch ${state.epoch} ` +
        `(${state.phase}; best validation AUC ${state.bestAuc.toFixed(4)} at epoch ${state.bestEpoch})`,
    );
  startRunLog(logFile, saved ? state.epoch : null);
  const started = Date.now() - state.elapsedSeconds * 1000;
  const c = count(train);
  const ft = recipe.fineTune;
  log(transferPlanLine(recipe, { size, train: c, validating: labels.length, augmented: aug !== null }));

  // Phase 1: the head.
  const valFeatures = await extractFeatures(extract, dim, val, { identity, progress, label: 'validation features' });
  log(
    `validation features: ${labels.length} images x ${dim} ` +
      `in ${valFeatures.seconds.toFixed(1)} s${valFeatures.cached ? ' (cached)' : ''}`,
  );
  const head = buildHead(dim, dropout, recipe.seed);
  const headOpt = makeOptimizer(recipe.optimizer, recipe.lr);
  head.compile({ optimizer: headOpt, loss });
  if (state.phase === 'head' && state.epoch < recipe.epochs) {
    const trainFeatures = aug
      ? null
      : await extractFeatures(extract, dim, train, { identity, progress, label: 'train features' });
    if (trainFeatures)
      log(
        `train features: ${c.n} images x ${dim} ` +
          `in ${trainFeatures.seconds.toFixed(1)} s${trainFeatures.cached ? ' (cached)' : ''}`,
      );
    if (saved) {
      await createSlots(head, headOpt, tf.zeros([1, dim]), tf.zeros([1, 1]));
      state = { ...state, ...(await restoreCheckpoint(ckptLast, head, headOpt)) };
    }
    await runEpochs({
      name: 'head',
      state,
      seed: recipe.seed,
      endEpoch: recipe.epochs,
      epochTitle: (e) => `epoch ${e + 1}/${recipe.epochs} (head)`,
      model: head,
      optimizer: headOpt,
      schedule: makeSchedule(recipe, state.schedule),
      batchSize: recipe.batchSize,
      labels: train.labels,
      order: (e) => epochOrder(train.labels, balance, recipe.seed, e),
      input: (idx, epoch, b) => {
        if (trainFeatures) return gatherRows(trainFeatures.data, dim, idx);
        const xi = batchInput(train, idx, aug, `${recipe.seed}:${epoch}:${b}`);
        const x = extract(xi);
        xi.dispose();
        return x;
      },
      validate: async () => headLogits(head, valFeatures.data, dim),
      valLabels: labels,
      patience: recipe.patience,
      bestDir: ckptHead,
      lastDir: ckptLast,
      onBest: (st) => {
        st.bestPhase = 'head';
      },
      onEpochEnd: (st) => Object.assign(st, { headEpochs: st.epoch, headSteps: st.step }),
      logFile,
      started,
      log,
    });
  }
  if (state.phase === 'head') {
    // The best head on the untouched backbone: the model to beat, and where fine-tuning starts.
    const best = await tfl.loadLayersModel(fileLoader(ckptHead));
    transplantHead(best, tm.model);
    best.dispose();
    // Swapped in whole: deleted and then rewritten, a stop in between left no best (or an empty one).
    await writeDirAtomic(ckptBest, (tmp) => saveLayersModel(tm.model, tmp));
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
      await createSlots(tm.model, opt, toInput(train.pixels.subarray(0, size * size), 1, size), tf.zeros([1, 1]));
      state = { ...state, ...(await restoreCheckpoint(ckptLast, tm.model, opt)) };
    } else {
      state = { ...state, phase: 'fine-tune', schedule: {} };
    }
    const trainable = tm.model.trainableWeights.reduce(
      (s, w) => s + (w.shape as number[]).reduce((a, d) => a * d, 1),
      0,
    );
    log(`fine-tuning ${trainable} parameters (top ${ft.blocks} of ${tm.blocks.length} blocks, batch norm frozen)`);
    const total = state.headEpochs + ft.epochs;
    await runEpochs({
      name: 'fine-tune',
      state,
      seed: recipe.seed,
      endEpoch: total,
      epochTitle: (e) => `epoch ${e + 1}/${total} (fine-tune ${e - state.headEpochs + 1}/${ft.epochs})`,
      model: tm.model,
      optimizer: opt,
      schedule: makeSchedule(ftRecipe, state.schedule),
      stepsBefore: state.headSteps,
      batchSize: recipe.batchSize,
      labels: train.labels,
      order: (e) => epochOrder(train.labels, balance, recipe.seed, e),
      input: (idx, epoch, b) => batchInput(train, idx, aug, `${recipe.seed}:${epoch}:${b}`),
      validate: () => predictAllLogits([tm.model], val.pixels, labels.length, size, { batchSize: 32 }),
      valLabels: labels,
      // Patience counts within fine-tuning: a best epoch of the head does not stop it at once.
      patience: recipe.patience,
      patienceFrom: (st) => Math.max(st.bestEpoch, st.headEpochs),
      bestDir: ckptBest,
      lastDir: ckptLast,
      onBest: (st) => {
        st.bestPhase = 'fine-tune';
      },
      logFile,
      started,
      progress,
      log,
    });
  }

  const best = await tfl.loadLayersModel(fileLoader(ckptBest));
  const record = backboneRecord(backbone, recipe.normalize);
  const { meta } = await finishRun({
    model: best,
    train,
    val,
    outDir: out,
    name: o.name,
    defaultName: `${spec.name}-transfer-${new Date().toISOString().slice(0, 10)}`,
    arch: record.arch,
    size,
    tta: recipe.tta,
    preprocessing: record.preprocessing,
    recipe: { ...recipe, arch: record.arch, inputSize: size, ...record.recipeExtras },
    dataInfo: info,
    bestEpoch: state.bestEpoch,
    bestPhase: state.bestPhase,
    epochsRun: state.epoch,
    seconds: state.elapsedSeconds,
    batchSize: 32,
    command: o.command,
    log,
  });
  // The gate, as a from-scratch run fits it (trainer.ts): on the training films' features, its threshold on
  // validation. Without it a frozen-backbone model answered every image, photos too.
  if (o.gate !== false) {
    saveOod(
      out,
      await fitOodFromSets(best, train, val, { memberDir: out, normalize: recipe.normalize, fitted: { ...info } }),
    );
  } else {
    log(o.noGateReason ? `no OOD gate fitted (${o.noGateReason})` : noGateLine(out));
  }
  best.dispose();
  tm.model.dispose();
  // The best checkpoints stay until the run's report is written (run.ts): they mark a run stopped while finishing.
  return { meta, epochs: state.epoch, seconds: state.elapsedSeconds };
}
