// Per-epoch checkpoints: model weights, optimiser slots and loop state, written atomically so a
// killed run resumes from the last finished epoch.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { fileLoader, saveLayersModel, writeDirAtomic } from '../models/io';
import { makeDirs } from '../make_dirs';

export interface LoopState {
  epoch: number; // epochs completed
  step: number;
  bestAuc: number;
  bestEpoch: number;
  schedule: Record<string, number>;
  elapsedSeconds: number;
}

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

export function readState(dir: string): LoopState | null {
  const p = path.join(dir, 'state.json');
  return fs.existsSync(p) ? (JSON.parse(fs.readFileSync(p, 'utf8')) as LoopState) : null;
}

/**
 * A checkpoint's weights, without its optimiser slots, layer by layer: a model's flat weight list puts
 * trainable weights first, so its order changes when layers are frozen (a headFirst probe's checkpoint
 * restored into the unfrozen model), while each layer's own order does not. Layers pair by position, not
 * by name: a model built again in one process gets new automatic layer names.
 */
export async function loadCheckpointWeights(dir: string, model: tfl.LayersModel): Promise<void> {
  const saved = await tfl.loadLayersModel(fileLoader(dir));
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
  await loadCheckpointWeights(dir, model);
  const specs = JSON.parse(fs.readFileSync(path.join(dir, 'optimizer.json'), 'utf8')) as tf.io.WeightsManifestEntry[];
  const buf = fs.readFileSync(path.join(dir, 'optimizer.bin'));
  const named = tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), specs);
  await optimizer.setWeights(Object.entries(named).map(([name, tensor]) => ({ name, tensor })));
  return readState(dir)!;
}

/**
 * The data a run's checkpoints were trained on: its data root and the patient split's fingerprint (the formula
 * of data/dataset_images.ts, which cxr.json records and `cxr calibrate` checks). Written when a run starts, so
 * that --resume can refuse other data before it trains on another split or compares AUCs across two.
 */
export interface RunData {
  root: string;
  fingerprint: string;
  train: number;
  validation: number;
}

/** Beside the checkpoint rather than in it: it is written before the first epoch, and by either trainer. */
export const runDataPath = (outDir: string) => path.join(outDir, 'checkpoints', 'data.json');

export function writeRunData(outDir: string, data: RunData): void {
  makeDirs(path.dirname(runDataPath(outDir)));
  fs.writeFileSync(runDataPath(outDir), JSON.stringify(data, null, 2) + '\n');
}

/** Null for a run started before runs recorded their data. */
export function readRunData(outDir: string): RunData | null {
  const p = runDataPath(outDir);
  return fs.existsSync(p) ? (JSON.parse(fs.readFileSync(p, 'utf8')) as RunData) : null;
}
