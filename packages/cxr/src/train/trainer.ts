// The one trainer of whole models: a from-scratch architecture, or an ImageNet backbone trained end to
// end (model_source.ts), on images with per-batch augmentation on the engine, through the shared epoch
// loop (loop.ts), then calibration on validation (finish.ts) and the not-a-chest-X-ray gate. The
// transfer trainer's head-first runs (transfer.ts) share the loop and the finish.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { count, gatherPixels, ImageSet } from '../data/images';
import { fitOodFromSets } from '../explain/ood_fit';
import { saveOod } from '../explain/ood';
import { predictAllLogits, toInput } from '../models/infer';
import { fileLoader } from '../models/io';
import type { ModelMeta } from '../models/metadata';
import { runLogPath, startRunLog } from '../report/run_log';
import { LoopState, readState, restoreCheckpoint } from './checkpoint';
import { type DataInfo, finishRun } from './finish';
import { runEpochs } from './loop';
import { weightedBce } from './loss';
import { createSlots, makeOptimizer } from './optim';
import { Recipe } from './recipe';
import type { ModelSource } from './model_source';
import { makeSchedule } from './schedule';
import { WeightAverage } from './weight_average';

export interface EpochPlan {
  /** Training-set indices for this epoch, in order. */
  indices: number[];
}

export interface TrainOptions {
  recipe: Recipe;
  /** The model to train and what cxr.json records of it (model_source.ts). */
  source: ModelSource;
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
  /** Per-batch mixing of films and labels (mixup, cutmix); returns new tensors. */
  mix?: (x: tf.Tensor, y: tf.Tensor, epoch: number, batch: number) => { x: tf.Tensor; y: tf.Tensor };
  /** Per-batch changes of the gathered 8-bit films (in place), before they become a tensor. */
  pixelAugment?: (pixels: Uint8Array, n: number, epoch: number, batch: number) => void;
  dataInfo: DataInfo;
  progress?: boolean;
  log?: (line: string) => void;
  /** The command line that started the run, for the model card. */
  command?: string;
  /** Fit the not-a-chest-X-ray gate after training (default true). */
  gate?: boolean;
}

export interface TrainResult {
  meta: ModelMeta;
  epochs: number;
  seconds: number;
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const { recipe, train: trainSet, val, outDir } = opts;
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const { source } = opts;
  const size = source.size;
  if (trainSet.size !== size || val.size !== size)
    throw new Error(`images are ${trainSet.size}px but the model takes ${size}px`);
  fs.mkdirSync(outDir, { recursive: true });
  const ckptLast = path.join(outDir, 'checkpoints', 'last');
  const ckptBest = path.join(outDir, 'checkpoints', 'best');
  const logFile = runLogPath(outDir);

  const model = await source.build();
  const optimizer = makeOptimizer(recipe.optimizer, recipe.lr);
  model.compile({ optimizer, loss: weightedBce(recipe.labelSmoothing, opts.classWeights) });

  // Created before a restore: restore() overwrites its starting point with the checkpoint's average.
  const average = recipe.weightAverage ? new WeightAverage(recipe.weightAverage, model) : undefined;
  let state: LoopState = { epoch: 0, step: 0, bestAuc: -1, bestEpoch: -1, schedule: {}, elapsedSeconds: 0 };
  const resuming = opts.resume === true && readState(ckptLast) !== null;
  if (resuming) {
    await createSlots(
      model,
      optimizer,
      toInput(trainSet.pixels.subarray(0, size * size), 1, size),
      tf.tensor2d([trainSet.labels[0]], [1, 1]),
    );
    state = await restoreCheckpoint(ckptLast, model, optimizer);
    average?.restore(ckptLast);
    log(
      `resuming after epoch ${state.epoch} ` +
        `(best validation AUC ${state.bestAuc.toFixed(4)} at epoch ${state.bestEpoch})`,
    );
  }
  startRunLog(logFile, resuming ? state.epoch : null);
  const c = count(trainSet);
  log(
    `training ${source.arch} at ${size}px on ${c.n} images (${c.normal} normal, ${c.pneumonia} pneumonia), ` +
      `validating on ${val.labels.length}; ` +
      `${recipe.epochs} epochs, batch ${recipe.batchSize}, ${recipe.optimizer} lr ${recipe.lr}`,
  );

  await runEpochs({
    state,
    seed: recipe.seed,
    endEpoch: recipe.epochs,
    epochTitle: (e) => `epoch ${e + 1}/${recipe.epochs}`,
    model,
    optimizer,
    schedule: makeSchedule(recipe, state.schedule),
    batchSize: recipe.batchSize,
    labels: trainSet.labels,
    order: (e) => opts.plan(e).indices,
    input: (idx, epoch, b) => {
      const pixels = gatherPixels(trainSet, idx);
      opts.pixelAugment?.(pixels, idx.length, epoch, b);
      const x = toInput(pixels, idx.length, size);
      const xa = opts.augment ? opts.augment(x, epoch, b) : x;
      if (xa !== x) x.dispose();
      return xa;
    },
    mix: opts.mix,
    average,
    validate: () => predictAllLogits([model], val.pixels, val.labels.length, size, { batchSize: 64 }),
    valLabels: Array.from(val.labels),
    patience: recipe.patience,
    bestDir: ckptBest,
    lastDir: ckptLast,
    logFile,
    started: Date.now() - state.elapsedSeconds * 1000,
    progress: opts.progress,
    log,
  });

  // Final model = best epoch on validation; calibration and operating points on validation.
  const best = fs.existsSync(ckptBest) ? await tfl.loadLayersModel(fileLoader(ckptBest)) : model;
  // Without a saved best epoch the model itself finishes, and with averaging that is its average.
  if (best === model) average?.swapIn();
  const { meta } = await finishRun({
    model: best,
    train: trainSet,
    val,
    outDir,
    name: opts.name,
    defaultName: `${source.defaultName}-${new Date().toISOString().slice(0, 10)}`,
    arch: source.arch,
    size,
    preprocessing: source.preprocessing,
    tta: recipe.tta,
    recipe: { ...recipe, arch: source.arch, inputSize: size, ...source.recipeExtras },
    dataInfo: opts.dataInfo,
    bestEpoch: state.bestEpoch,
    epochsRun: state.epoch,
    seconds: state.elapsedSeconds,
    command: opts.command,
    log,
  });
  // The not-a-chest-X-ray gate, fitted on the same training images (threshold on validation, clean and mildly changed).
  if (opts.gate !== false) {
    saveOod(
      outDir,
      await fitOodFromSets(best, trainSet, val, {
        memberDir: outDir,
        normalize: recipe.normalize,
        fitted: { ...opts.dataInfo },
      }),
    );
  } else {
    log(`no OOD gate fitted (--no-gate): 'cxr ood fit --model ${outDir}' fits one later`);
  }
  fs.rmSync(ckptBest, { recursive: true, force: true });
  if (best !== model) best.dispose();
  average?.dispose();
  model.dispose();
  return { meta, epochs: state.epoch, seconds: state.elapsedSeconds };
}
