// Per-epoch GAN checkpoints: both networks (with their batch-norm statistics), both Adam
// optimisers' slots and the loop state, swapped in atomically so that a killed run resumes from
// its last finished epoch.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { fileLoader, readCheckedJson, saveLayersModel } from '../models/io';
import { writeDirAtomic } from '../models/dir_swap';
import { readWeightSlots } from '../models/weight_slots';
import type { Nets } from './step';

/** A GAN checkpoint's state.json, checked when read back (readGanState). */
export const GanState = z.object({
  /** Epochs completed. */
  epoch: z.number().int().nonnegative(),
  step: z.number().int().nonnegative(),
  elapsedSeconds: z.number().nonnegative(),
});
export type GanState = z.infer<typeof GanState>;

async function saveOptimizer(opt: tf.Optimizer, dir: string, name: string): Promise<void> {
  const { data, specs } = await tf.io.encodeWeights(await opt.getWeights());
  fs.writeFileSync(path.join(dir, `${name}.bin`), Buffer.from(data as ArrayBuffer));
  fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(specs));
}

/** What to do about a GAN checkpoint whose files are damaged: train again, or elsewhere. */
const trainAgain = (dir: string) =>
  `delete the folder ${dir} to train the GAN again from the start, or train into a new --out folder`;

/**
 * Restores an optimiser's slots from NAME.json and NAME.bin: the same files as a run checkpoint's optimizer.json
 * and .bin, read by the same reader (models/weight_slots.ts), so that a missing, cut-short or edited one is
 * refused naming it. Adam rebuilds its slots from these, matched to variables by position.
 */
async function loadOptimizer(opt: tf.Optimizer, dir: string, name: string): Promise<void> {
  const named = readWeightSlots(dir, name, 'the optimiser slots of a GAN checkpoint', trainAgain(dir));
  await opt.setWeights(Object.entries(named).map(([n, tensor]) => ({ name: n, tensor })));
}

async function loadWeights(model: tfl.LayersModel, dir: string): Promise<void> {
  const saved = await tfl.loadLayersModel(fileLoader(dir));
  model.setWeights(saved.getWeights());
  saved.dispose();
}

export async function saveGanCheckpoint(dir: string, nets: Nets, state: GanState): Promise<void> {
  await writeDirAtomic(dir, async (tmp) => {
    await saveLayersModel(nets.g, path.join(tmp, 'generator'));
    await saveLayersModel(nets.d, path.join(tmp, 'discriminator'));
    await saveOptimizer(nets.optG, tmp, 'optimizer-g');
    await saveOptimizer(nets.optD, tmp, 'optimizer-d');
    fs.writeFileSync(path.join(tmp, 'state.json'), JSON.stringify(state, null, 2) + '\n');
  });
}

/**
 * The state of the checkpoint in dir; null when it has none. A truncated, edited or older file is refused with
 * what to do, rather than failing inside a resumed run.
 */
export function readGanState(dir: string): GanState | null {
  return readCheckedJson(path.join(dir, 'state.json'), GanState, 'the state of a GAN checkpoint', trainAgain(dir));
}

/** Restores into freshly built networks and optimisers that have not taken a step yet. */
export async function restoreGanCheckpoint(dir: string, nets: Nets): Promise<GanState> {
  // The state first: a bad one is refused before anything is loaded.
  const state = readGanState(dir);
  if (!state) throw new Error(`${dir} is not a GAN checkpoint (no state.json): train into a new --out folder`);
  await loadWeights(nets.g, path.join(dir, 'generator'));
  await loadWeights(nets.d, path.join(dir, 'discriminator'));
  await loadOptimizer(nets.optG, dir, 'optimizer-g');
  await loadOptimizer(nets.optD, dir, 'optimizer-d');
  return state;
}
