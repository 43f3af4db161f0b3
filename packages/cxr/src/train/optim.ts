// Optimisers of the classifier recipes, and the two things every loop does to one: set the
// learning rate of the coming step, and create its slots before a checkpoint is restored.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Recipe } from './recipe';

export function makeOptimizer(name: Recipe['optimizer'], lr: number): tf.Optimizer {
  switch (name) {
    case 'rmsprop':
      return tf.train.rmsprop(lr);
    case 'adam':
      return tf.train.adam(lr);
    case 'sgd':
      return tf.train.momentum(lr, 0.9, true);
  }
}

/**
 * Sets the learning rate of the next steps. SGD and momentum keep it as a tensor built by
 * setLearningRate (assigning the field alone would not change the step); the others read the field.
 */
export function setLearningRate(opt: tf.Optimizer, lr: number): void {
  const o = opt as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else o.learningRate = lr;
}

/**
 * An optimiser creates its slots on its first step, and a checkpoint's slots can only be restored
 * into existing ones: one step at learning rate 0 on a batch (x, y), which it disposes. The step's
 * effect on the weights is overwritten by the restore.
 */
export async function createSlots(
  model: tfl.LayersModel,
  opt: tf.Optimizer,
  x: tf.Tensor,
  y: tf.Tensor,
): Promise<void> {
  setLearningRate(opt, 0);
  await model.trainOnBatch(x, y);
  tf.dispose([x, y]);
}
