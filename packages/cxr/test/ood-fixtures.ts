// Tiny cxr model folders for the predictor/OOD/CLI tests, with weights drawn from a seeded
// generator so that every run scores images the same way (tfjs initialisers are unseeded).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { initEngine } from '../src/engine';
import { cxrnet } from '../src/models/cxrnet';
import { saveModel } from '../src/models/io';
import { CHEST_XRAY, DATA as SHARED, needsData } from './shared-data';
import type { TtaView } from '../src/models/tta_views';
import { testModelMeta } from './test-model-meta';

export { CHEST_XRAY, SHARED };
export const haveData = !needsData(path.join(CHEST_XRAY, 'train'));

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `cxr-${prefix}-`));
}

function gaussian(seed: number): () => number {
  let a = seed >>> 0;
  const u = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

/** He-normal kernels, unit batch norms, zero biases, from `seed`. */
export function seedWeights(model: LayersModel, seed: number): void {
  const g = gaussian(seed);
  const values = model.weights.map((w) => {
    const shape = w.shape as number[];
    const n = shape.reduce((a, b) => a * b, 1);
    const name = w.name;
    let data: Float32Array;
    if (/kernel/.test(name)) {
      const fanIn = shape.slice(0, -1).reduce((a, b) => a * b, 1);
      const std = Math.sqrt(2 / fanIn);
      data = Float32Array.from({ length: n }, () => g() * std);
    } else if (/gamma|moving_variance/.test(name)) {
      data = new Float32Array(n).fill(1);
    } else {
      data = new Float32Array(n);
    }
    return tf.tensor(data, shape);
  });
  model.setWeights(values);
  tf.dispose(values);
}

export interface TinyModelOptions {
  inputSize?: number;
  tta?: TtaView[];
  seed?: number;
  widths?: number[];
  /** cxr.json "data"/"recipe" entries that `cxr ood fit` rebuilds the split from. */
  split?: { valFraction: number; splitSeed: number; limitPerClass: number };
}

/**
 * A seeded model small enough to fit and evaluate in seconds: 32 px, narrow, its recorded split 12 films a class
 * (the compare, evaluate and calibrate tests).
 */
export const TINY_SEEDED: TinyModelOptions = {
  inputSize: 32,
  widths: [4, 8, 8, 8],
  split: { valFraction: 0.3, splitSeed: 3, limitPerClass: 12 },
};

/** A cxr model folder (cxrnet, seeded weights) in `dir`. */
export async function makeSeededModel(dir: string, opts: TinyModelOptions = {}): Promise<string> {
  await initEngine();
  const inputSize = opts.inputSize ?? 64;
  const model = cxrnet({ inputSize, widths: opts.widths ?? [8, 16, 32, 32], dropout: 0 });
  seedWeights(model, opts.seed ?? 1);
  const split = opts.split ?? { valFraction: 0.25, splitSeed: 3, limitPerClass: 60 };
  const meta = testModelMeta({
    name: 'seeded-test',
    inputSize,
    tta: opts.tta,
    recipe: { limitPerClass: split.limitPerClass },
    data: { valFraction: split.valFraction, splitSeed: split.splitSeed },
  });
  await saveModel(model, dir, meta);
  model.dispose();
  return dir;
}
