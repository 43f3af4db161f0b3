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
import { HEAD_LAYER } from '../models/backbones';
import { predictAllLogits, toInput } from '../models/infer';
import { fileLoader, saveLayersModel } from '../models/io';
import { writeDirAtomic } from '../models/dir_swap';
import type { ModelMeta } from '../models/metadata';
import { runLogPath, startRunLog } from '../report/run_log';
import { loadCheckpointWeights, LoopState, readState, restoreCheckpoint } from './checkpoint';
import { type DataInfo, finishRun, noGateLine } from './finish';
import { plural, runEpochs } from './loop';
import { weightedBce } from './loss';
import { createSlots, makeOptimizer } from './optim';
import { Recipe } from './recipe';
import type { ModelSource } from './model_source';
import { makeSchedule } from './schedule';
import { WeightAverage } from './weight_average';
import { makeDirs } from '../make_dirs';

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
  /** Why `gate` is false (a member whose ensemble or soup fits the gate); default: the user's --no-gate. */
  noGateReason?: string;
}

/** The loop state of a whole-model run: with `headFirst`, which phase wrote it and where the probe ended. */
interface WholeState extends LoopState {
  phase?: 'head' | 'whole';
  headSteps?: number;
}

/**
 * Freezes every layer but the head (the recipe's headFirst phase); returns what puts them back.
 * Recompile after either: tfjs-layers collects the trainable weights at compile.
 */
function trainHeadOnly(model: tfl.LayersModel): () => void {
  const was = model.layers.map((l) => l.trainable);
  for (const l of model.layers) l.trainable = l.name === HEAD_LAYER;
  return () => model.layers.forEach((l, i) => (l.trainable = was[i]));
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
  makeDirs(outDir);
  const ckptLast = path.join(outDir, 'checkpoints', 'last');
  const ckptBest = path.join(outDir, 'checkpoints', 'best');
  const logFile = runLogPath(outDir);

  const model = await source.build();
  const loss = weightedBce(recipe.labelSmoothing, opts.classWeights);
  const headFirst = recipe.headFirst;
  const headEpochs = headFirst?.epochs ?? 0;
  const saved = opts.resume === true ? (readState(ckptLast) as WholeState | null) : null;
  let state: WholeState = saved ?? { epoch: 0, step: 0, bestAuc: -1, bestEpoch: -1, schedule: {}, elapsedSeconds: 0 };
  // An optimiser's slots are created by one step before a checkpoint's can be restored into them.
  const restore = async (optimizer: tf.Optimizer) => {
    const x = toInput(trainSet.pixels.subarray(0, size * size), 1, size);
    await createSlots(model, optimizer, x, tf.tensor2d([trainSet.labels[0]], [1, 1]));
    state = (await restoreCheckpoint(ckptLast, model, optimizer)) as WholeState;
    log(
      `resuming after epoch ${state.epoch} ` +
        `(best validation AUC ${state.bestAuc.toFixed(4)} at epoch ${state.bestEpoch})`,
    );
  };
  startRunLog(logFile, saved ? state.epoch : null);
  const c = count(trainSet);
  log(
    `training ${source.arch} at ${size}px on ${c.n} images (${c.normal} normal, ${c.pneumonia} pneumonia), ` +
      `validating on ${val.labels.length}; ` +
      (headFirst ? `the head alone for ${plural(headEpochs, 'epoch')} at lr ${headFirst.lr}, then ` : '') +
      `${plural(recipe.epochs, 'epoch')}, batch ${recipe.batchSize}, ${recipe.optimizer} lr ${recipe.lr}`,
  );
  const phase = {
    seed: recipe.seed,
    model,
    batchSize: recipe.batchSize,
    labels: trainSet.labels,
    order: (e: number) => opts.plan(e).indices,
    input: (idx: number[], epoch: number, b: number) => {
      const pixels = gatherPixels(trainSet, idx);
      opts.pixelAugment?.(pixels, idx.length, epoch, b);
      const x = toInput(pixels, idx.length, size);
      const xa = opts.augment ? opts.augment(x, epoch, b) : x;
      if (xa !== x) x.dispose();
      return xa;
    },
    mix: opts.mix,
    validate: () => predictAllLogits([model], val.pixels, val.labels.length, size, { batchSize: 64 }),
    valLabels: Array.from(val.labels),
    bestDir: ckptBest,
    lastDir: ckptLast,
    logFile,
    progress: opts.progress,
    log,
  };

  if (headFirst && state.epoch < headEpochs) {
    const unfreeze = trainHeadOnly(model);
    const optimizer = makeOptimizer(recipe.optimizer, headFirst.lr);
    model.compile({ optimizer, loss });
    if (saved) await restore(optimizer);
    await runEpochs({
      ...phase,
      name: 'head',
      state,
      endEpoch: headEpochs,
      epochTitle: (e) => `head epoch ${e + 1}/${headEpochs}`,
      optimizer,
      schedule: makeSchedule({ ...recipe, schedule: 'constant', lr: headFirst.lr, warmupEpochs: 0 }),
      patience: 0,
      onEpochEnd: (st) => Object.assign(st, { phase: 'head', headSteps: st.step }),
      started: Date.now() - state.elapsedSeconds * 1000,
    });
    unfreeze();
    optimizer.dispose();
  } else if (saved?.phase === 'head') {
    // Stopped between the phases: the probe's weights, and the whole model's phase starts afresh (as it would have).
    await loadCheckpointWeights(ckptLast, model);
    log(`resuming after the head's ${plural(state.epoch, 'epoch')}`);
  }

  const optimizer = makeOptimizer(recipe.optimizer, recipe.lr);
  model.compile({ optimizer, loss });
  // Created before a restore: restore() overwrites its starting point with the checkpoint's average.
  const average = recipe.weightAverage ? new WeightAverage(recipe.weightAverage, model) : undefined;
  if (saved && state.phase !== 'head') {
    await restore(optimizer);
    average?.restore(ckptLast);
  }
  const total = headEpochs + recipe.epochs;
  await runEpochs({
    ...phase,
    state,
    endEpoch: total,
    epochTitle: (e) => `epoch ${e + 1}/${total}`,
    optimizer,
    // A plateau schedule's saved state is the head's after the probe: the whole model's starts afresh.
    schedule: makeSchedule(recipe, state.phase === 'head' ? undefined : state.schedule),
    stepsBefore: state.headSteps ?? 0,
    average,
    patience: recipe.patience,
    // Patience counts within the whole model's epochs, as transfer.ts's fine-tuning does: a best epoch of the
    // probe stopped the whole model after one epoch, however long the patience.
    patienceFrom: (st) => Math.max(st.bestEpoch, headEpochs),
    onEpochEnd: (st) => Object.assign(st, { phase: 'whole' }),
    started: Date.now() - state.elapsedSeconds * 1000,
  });

  // Final model = best epoch on validation; calibration and operating points on validation.
  const best = fs.existsSync(ckptBest) ? await tfl.loadLayersModel(fileLoader(ckptBest)) : model;
  // Without a saved best epoch the model itself finishes, and with averaging that is its average.
  if (best === model) {
    average?.swapIn();
    // checkpoints/best is the run's unfinished mark (models/io.ts stoppedWhileFinishing) until its report is
    // written, and the loop writes it only for an epoch that beat the best AUC so far: without one, a stop
    // while finishing left a folder that passed for finished. Written before cxr.json, so the mark is there
    // whenever the model is, and --resume finishes these same weights. Atomic: a half-written one would be
    // loaded by that --resume.
    await writeDirAtomic(ckptBest, (tmp) => saveLayersModel(model, tmp));
  }
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
    log(opts.noGateReason ? `no OOD gate fitted (${opts.noGateReason})` : noGateLine(outDir));
  }
  // checkpoints/best stays until the run's report is written (run.ts): it marks a run stopped while finishing.
  if (best !== model) best.dispose();
  average?.dispose();
  model.dispose();
  return { meta, epochs: state.epoch, seconds: state.elapsedSeconds };
}
