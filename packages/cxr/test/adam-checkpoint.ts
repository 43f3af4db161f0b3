// A model small enough to checkpoint in milliseconds, with its Adam optimiser's slots made, and a loop state to
// save with it: for the tests of what a run checkpoint's restore refuses.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LoopState } from '../src/train/checkpoint';
import { createSlots, makeOptimizer } from '../src/train/optim';

/** A one-layer model compiled with Adam, its optimiser slots made (as after a step): a fresh one each call. */
export async function adamModel() {
  const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 1 })] });
  const optimizer = makeOptimizer('adam', 0.01);
  model.compile({ optimizer, loss: 'meanSquaredError' });
  await createSlots(model, optimizer, tf.zeros([1, 2]), tf.zeros([1, 1]));
  return { model, optimizer };
}

/** The loop state the checkpoints are saved with. */
export const ADAM_STATE: LoopState = {
  epoch: 1,
  step: 4,
  bestAuc: 0.5,
  bestEpoch: 0,
  schedule: {},
  elapsedSeconds: 1,
};
