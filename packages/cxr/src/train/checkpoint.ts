// Per-epoch checkpoints: model weights, optimiser slots and loop state, written atomically so a
// killed run resumes from the last finished epoch.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { fileLoader, readCheckedJson, saveLayersModel } from '../models/io';
import { recoverReplaced, writeDirAtomic } from '../models/dir_swap';
import { readWeightSlots } from '../models/weight_slots';
import { makeDirs } from '../make_dirs';
import { CLASS_NAMES } from '../data/dataset';
import type { ImageSet } from '../data/images';

/**
 * A checkpoint's state.json. Read back with zod: a truncated, hand-edited or older file is refused with what
 * to do, rather than failing deep inside a resumed run.
 */
export const LoopState = z.object({
  /** Epochs completed. */
  epoch: z.number().int().nonnegative(),
  step: z.number().int().nonnegative(),
  bestAuc: z.number().min(-1).max(1),
  bestEpoch: z.number().int().min(-1),
  // JSON writes the schedule's -Infinity (the best AUC a schedule other than plateau never tracks) as null.
  schedule: z.record(
    z.string(),
    z
      .number()
      .nullable()
      .transform((v) => v ?? -Infinity),
  ),
  elapsedSeconds: z.number().nonnegative(),
  /**
   * The phase (loop.ts) whose last epoch stopped early: a run killed after that, before the next phase or the
   * end of the run, resumes to no more epochs of it, as the uninterrupted run trained.
   */
  stoppedEarly: z.enum(['train', 'head', 'fine-tune']).optional(),
});
export type LoopState = z.infer<typeof LoopState>;

export async function saveCheckpoint(
  dir: string,
  model: tfl.LayersModel,
  optimizer: tf.Optimizer,
  state: LoopState,
  /** More files of the same checkpoint (the weight average), written inside the same atomic write. */
  extra?: (dir: string) => Promise<void>,
): Promise<void> {
  const named = await optimizer.getWeights();
  const { data, specs } = await tf.io.encodeWeights(named);
  await writeDirAtomic(dir, async (tmp) => {
    await saveLayersModel(model, tmp);
    fs.writeFileSync(path.join(tmp, 'optimizer.bin'), Buffer.from(data as ArrayBuffer));
    fs.writeFileSync(path.join(tmp, 'optimizer.json'), JSON.stringify(specs));
    fs.writeFileSync(path.join(tmp, 'state.json'), JSON.stringify(state, null, 2));
    await extra?.(tmp);
  });
}

/** What to do about a checkpoint whose files are damaged: the run starts again, or goes elsewhere. */
export const startAgain = (dir: string) =>
  `delete the folder ${dir} to start the run again from its saved recipe with --resume, ` +
  'or train into a new --out folder';

/**
 * The loop state of the checkpoint in dir; null when it has none. Fields a recipe's phases add to the state
 * (trainer.ts, transfer.ts) are kept as they are: only the loop's own are checked here.
 */
/**
 * A run's checkpoints as a kill in the middle of their last write left them (models/io.ts recoverReplaced): read
 * before a resume, so that a run killed between the two renames of a checkpoint continues from it, not from epoch 1.
 */
export function recoverCheckpoints(out: string): void {
  for (const d of ['last', 'best', 'best-head']) recoverReplaced(path.join(out, 'checkpoints', d));
}

export function readState(dir: string): LoopState | null {
  return readCheckedJson(
    path.join(dir, 'state.json'),
    LoopState.loose(),
    'the loop state of a run checkpoint',
    startAgain(dir),
  );
}

/**
 * The optimiser slots of the checkpoint in dir, by name: optimizer.json describes them (TF.js weight specs,
 * read with zod), optimizer.bin holds them (models/weight_slots.ts). A missing, truncated or edited file is
 * refused naming it and what to do, rather than TF.js's own error from deep inside the restore.
 */
function readOptimizerSlots(dir: string): tf.NamedTensorMap {
  return readWeightSlots(dir, 'optimizer', 'the optimiser slots of a run checkpoint', startAgain(dir));
}

/**
 * A checkpoint's weights, without its optimiser slots, layer by layer: a model's flat weight list puts
 * trainable weights first, so its order changes when layers are frozen (a headFirst probe's checkpoint
 * restored into the unfrozen model), while each layer's own order does not. Layers pair by position, not
 * by name: a model built again in one process gets new automatic layer names.
 */
export async function loadCheckpointWeights(dir: string, model: tfl.LayersModel): Promise<void> {
  // A cut-short model.json is told the checkpoint's remedy, as its state.json and optimizer.json are.
  const saved = await tfl.loadLayersModel(fileLoader(dir, startAgain(dir)));
  try {
    if (saved.layers.length !== model.layers.length)
      throw new Error(`the checkpoint in ${dir} has ${saved.layers.length} layers, the model ${model.layers.length}`);
    model.layers.forEach((layer, i) => {
      layer.setWeights(saved.layers[i].getWeights());
    });
  } finally {
    saved.dispose();
  }
}

/** Loads weights and optimiser slots from a checkpoint into an already-built, compiled model. */
export async function restoreCheckpoint(
  dir: string,
  model: tfl.LayersModel,
  optimizer: tf.Optimizer,
): Promise<LoopState> {
  // The state first: a bad one is refused before anything is loaded.
  const state = readState(dir);
  if (!state) throw new Error(`${dir} is not a run checkpoint (no state.json): train into a new --out folder`);
  await loadCheckpointWeights(dir, model);
  const named = readOptimizerSlots(dir);
  await optimizer.setWeights(Object.entries(named).map(([name, tensor]) => ({ name, tensor })));
  return state;
}

/**
 * The data a run's checkpoints were trained on: its data root and the patient split's fingerprint (the formula
 * of data/dataset_images.ts, which cxr.json records and `cxr calibrate` checks). Written when a run starts, so
 * that --resume can refuse other data before it trains on another split or compares AUCs across two.
 */
export const RunData = z.object({
  root: z.string(),
  fingerprint: z.string(),
  train: z.number().int().nonnegative(),
  validation: z.number().int().nonnegative(),
});
export type RunData = z.infer<typeof RunData>;

/** Beside the checkpoint rather than in it: it is written before the first epoch, and by either trainer. */
export const runDataPath = (outDir: string) => path.join(outDir, 'checkpoints', 'data.json');

export function writeRunData(outDir: string, data: RunData): void {
  makeDirs(path.dirname(runDataPath(outDir)));
  fs.writeFileSync(runDataPath(outDir), JSON.stringify(data, null, 2) + '\n');
}

/** Null for a run started before runs recorded their data. */
export function readRunData(outDir: string): RunData | null {
  return readCheckedJson(
    runDataPath(outDir),
    RunData,
    'the record of the data this run started on',
    'delete it to resume without checking the data, or train into a new --out folder',
  );
}

/**
 * Throws, naming the data folder, where the films a run loaded lack a class on either side; checked before its
 * first epoch. run.ts checks the file list before it writes anything, but the films are read afterwards: a data
 * folder moved, unmounted or deleted meanwhile left a run that trained on the few films read before it went
 * (0 normal, 2 pneumonia, validating on 0) and then failed with "cannot evaluate an empty set of predictions",
 * which named neither the data nor what to do.
 */
export function checkLoadedSplit(root: string, train: ImageSet, val: ImageSet, listed?: number): void {
  const lacking = (set: ImageSet) => CLASS_NAMES.filter((_, label) => !set.labels.some((l) => l === label));
  const loaded = train.labels.length + val.labels.length;
  for (const [side, set] of [
    ['training', train],
    ['validation', val],
  ] as const) {
    const missing = lacking(set);
    if (missing.length === 0) continue;
    const read = listed === undefined ? `${loaded} films could be read` : `${loaded} of ${listed} films could be read`;
    throw new Error(
      `${root}: the ${side} films read hold no ${missing.join(' or ')} images (${read}; the warnings above ` +
        'name the others): the data folder changed or went away while training read it, or its files are ' +
        'damaged; put it back as it was and run the same command again (nothing was trained)',
    );
  }
}
