// Per-epoch GAN checkpoints: both networks (with their batch-norm statistics), both Adam
// optimisers' slots and the loop state, swapped in atomically so that a killed run resumes from
// its last finished epoch.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { fileLoader, saveLayersModel, writeDirAtomic } from '../models/io';
import type { Nets } from './step';

export interface GanState {
  /** Epochs completed. */
  epoch: number;
  step: number;
  elapsedSeconds: number;
}

async function saveOptimizer(opt: tf.Optimizer, dir: string, name: string): Promise<void> {
  const { data, specs } = await tf.io.encodeWeights(await opt.getWeights());
  fs.writeFileSync(path.join(dir, `${name}.bin`), Buffer.from(data as ArrayBuffer));
  fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(specs));
}

async function loadOptimizer(opt: tf.Optimizer, dir: string, name: string): Promise<void> {
  const specs = JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), 'utf8')) as tf.io.WeightsManifestEntry[];
  const buf = fs.readFileSync(path.join(dir, `${name}.bin`));
  const named = tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), specs);
  // Adam rebuilds its slots from these, matched to variables by position.
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

export function readGanState(dir: string): GanState | null {
  const p = path.join(dir, 'state.json');
  return fs.existsSync(p) ? (JSON.parse(fs.readFileSync(p, 'utf8')) as GanState) : null;
}

/** Restores into freshly built networks and optimisers that have not taken a step yet. */
export async function restoreGanCheckpoint(dir: string, nets: Nets): Promise<GanState> {
  await loadWeights(nets.g, path.join(dir, 'generator'));
  await loadWeights(nets.d, path.join(dir, 'discriminator'));
  await loadOptimizer(nets.optG, dir, 'optimizer-g');
  await loadOptimizer(nets.optD, dir, 'optimizer-d');
  return readGanState(dir)!;
}
