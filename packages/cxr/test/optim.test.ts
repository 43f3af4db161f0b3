// The learning rate a loop sets is the one the next step uses, for every optimiser a recipe can
// name. (SGD with momentum keeps it as a tensor: setting the field alone left its steps at the
// initial rate, which is how the transfer loop's own copy ignored its schedule with `sgd`.)
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../src/engine';
import { makeOptimizer, setLearningRate } from '../src/train/optim';

/** One step on f(w) = w from w = 1 (gradient 1) at learning rate lr; returns how far w moved. */
function stepSize(name: 'sgd' | 'adam' | 'rmsprop', lr: number): number {
  const opt = makeOptimizer(name, 0.1);
  const w = tf.variable(tf.scalar(1));
  setLearningRate(opt, lr);
  opt.minimize(() => tf.sum(w) as tf.Scalar);
  const moved = 1 - w.dataSync()[0];
  w.dispose();
  opt.dispose();
  return moved;
}

for (const name of ['sgd', 'adam', 'rmsprop'] as const) {
  test(`${name}: a learning rate of 0 leaves the weights, a larger one moves them further`, async () => {
    await initEngine();
    assert.equal(stepSize(name, 0), 0);
    const small = stepSize(name, 0.01);
    const large = stepSize(name, 0.05);
    assert.ok(small > 0, `${name} did not move at lr 0.01`);
    assert.ok(large > small * 2, `${name}: step at lr 0.05 (${large}) not larger than at 0.01 (${small})`);
  });
}
