// FusedBatchNorm and its fused gradient on aten against the tfjs cpu backend, including the
// moments -> batchNorm chain of tfjs-layers' BatchNormalization in training.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { useFusedBatchNormTraining } from '../src/index';
import { parity, rng } from './parity';
// Imported after the backend on purpose: tfjs-layers registers tfjs-core's gradients, replacing
// the overrides, which the backend must then install again.
import * as tfl from '@tensorflow/tfjs-layers';

rng.state = 5;
function rand(shape: number[], lo = -1, hi = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Array.from({ length: n }, () => {
    const seed = rng.next();
    return lo + (hi - lo) * (seed / 2 ** 32);
  });
  return tf.tensor(v, shape);
}

test('batchNorm forward: ranks, optional scale and offset, scalar parameters', async () => {
  for (const shape of [[2, 3, 4, 5], [6, 5], [3, 4, 5], [5], [2, 2, 3, 5]]) {
    await parity(() => tf.batchNorm(rand(shape), rand([5]), rand([5], 0.5, 2), rand([5]), rand([5]), 1e-3));
    await parity(() => tf.batchNorm(rand(shape), rand([5]), rand([5], 0.5, 2)));
    await parity(() => tf.batchNorm(rand(shape), rand([5]), rand([5], 0.5, 2), undefined, rand([5])));
    await parity(() => tf.batchNorm(rand(shape), rand([5]), rand([1], 0.5, 2), rand([1]), rand([5]), 0.1));
  }
  // Parameters with the trailing two dimensions' length cycle the same way.
  await parity(() => tf.batchNorm(rand([2, 3, 4, 5]), rand([4, 5]), rand([4, 5], 0.5, 2), rand([4, 5]), rand([4, 5])));
  // A parameter length that does not divide x's size goes to the cpu kernel.
  await parity(() => tf.batchNorm(rand([2, 3, 7]), rand([3]), rand([3], 0.5, 2)), 1e-4, false);
});

test('batchNorm gradients for x, mean, variance, scale and offset', async () => {
  for (const shape of [
    [2, 3, 4, 5],
    [6, 5],
    [3, 4, 5],
  ]) {
    await parity(
      () =>
        tf.grads((x: tf.Tensor, m: tf.Tensor, v: tf.Tensor, o: tf.Tensor, s: tf.Tensor) =>
          tf.sum(tf.mul(tf.batchNorm(x, m, v, o, s, 1e-3), rand(shape))),
        )([rand(shape), rand([5]), rand([5], 0.5, 2), rand([5]), rand([5])]),
      1e-3,
      false,
    );
  }
});

test('gradients through moments -> batchNorm run the fused kernel', async () => {
  const step = () =>
    tf.grads((x: tf.Tensor, offset: tf.Tensor, scale: tf.Tensor) => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      return tf.sum(tf.square(tf.sub(tf.batchNorm(x, mean, variance, offset, scale, 1e-3), rand([4, 3, 3, 6]))));
    })([rand([4, 3, 3, 6]), rand([6]), rand([6], 0.5, 1.5)]);
  await parity(step, 2e-3, false);
  await tf.setBackend('aten');
  const { kernelNames } = await tf.profile(() => {
    tf.dispose(step());
  });
  assert.ok(kernelNames.includes('AtenFusedBatchNormGrad'), kernelNames.join(','));
  assert.ok(!kernelNames.includes('Rsqrt'), kernelNames.join(','));
});

test('a tfjs-layers BatchNormalization layer trains the same on aten and cpu', async () => {
  await parity(
    () => {
      const layer = tfl.layers.batchNormalization({ axis: -1 });
      const x = tf.add(tf.mul(rand([4, 5, 5, 3]), 3), 2);
      const target = rand([4, 5, 5, 3]);
      layer.build(x.shape);
      const { value, grads } = tf.variableGrads(
        () => tf.mean(tf.square(tf.sub(layer.apply(x, { training: true }) as tf.Tensor, target))) as tf.Scalar,
        layer.trainableWeights.map((w) => w.read() as tf.Variable),
      );
      const dx = tf.grad((x: tf.Tensor) => tf.sum(tf.square(layer.apply(x, { training: true }) as tf.Tensor)))(x);
      const out = [value, dx, ...Object.values(grads)];
      layer.weights.forEach((w) => w.dispose());
      return out;
    },
    2e-3,
    false,
  );
});

/** tfjs-layers' training normalisation on cpu, AtenBatchNormTraining on aten: [y, mean, variance]. */
function batchNormTraining(x: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor, eps: number): tf.Tensor[] {
  if (tf.getBackend() === 'aten') {
    return tf
      .engine()
      .runKernel('AtenBatchNormTraining', { x, scale, offset }, { varianceEpsilon: eps }) as tf.Tensor[];
  }
  const { mean, variance } = tf.moments(x, [...Array(x.rank - 1).keys()]);
  return [tf.batchNorm(x, mean, variance, offset, scale, eps), mean, variance];
}

test('AtenBatchNormTraining: outputs and gradients, also where mean and variance reach the loss', async () => {
  for (const shape of [
    [4, 3, 3, 6],
    [7, 5],
    [2, 3, 4],
  ]) {
    const c = shape[shape.length - 1];
    await parity(
      () =>
        tf.grads((x: tf.Tensor, s: tf.Tensor, o: tf.Tensor) =>
          tf.sum(tf.mul(batchNormTraining(x, s, o, 1e-3)[0], rand(shape))),
        )([tf.add(tf.mul(rand(shape), 3), 1), rand([c], 0.5, 1.5), rand([c])]),
      2e-3,
      false,
    );
    await parity(
      () =>
        tf.grads((x: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => {
          const [y, mean, variance] = batchNormTraining(x, s, o, 0.1);
          return tf.addN([
            tf.sum(tf.mul(y, rand(shape))),
            tf.sum(tf.mul(mean, rand([c]))),
            tf.sum(tf.mul(variance, rand([c]))),
          ]);
        })([rand(shape), rand([c], 0.5, 1.5), rand([c])]),
      2e-3,
      false,
    );
    await parity(() => batchNormTraining(rand(shape, -2, 5), rand([c]), rand([c]), 1e-3), 1e-4);
  }
});

test('useFusedBatchNormTraining: BatchNormalization trains as before, in one kernel each way', async () => {
  useFusedBatchNormTraining();
  useFusedBatchNormTraining();
  const step = () => {
    const layer = tfl.layers.batchNormalization({ momentum: 0.9 });
    const x = tf.add(tf.mul(rand([4, 5, 5, 3]), 3), 2);
    const target = rand([4, 5, 5, 3]);
    layer.build(x.shape);
    const { value, grads } = tf.variableGrads(
      () => tf.mean(tf.square(tf.sub(layer.apply(x, { training: true }) as tf.Tensor, target))) as tf.Scalar,
      layer.trainableWeights.map((w) => w.read() as tf.Variable),
    );
    const dx = tf.grad((x: tf.Tensor) => tf.sum(tf.square(layer.apply(x, { training: true }) as tf.Tensor)))(x);
    const inference = layer.apply(x) as tf.Tensor;
    const out = [value, dx, inference, ...Object.values(grads), ...layer.weights.map((w) => w.read().clone())];
    layer.weights.forEach((w) => w.dispose());
    return out;
  };
  await parity(step, 2e-3, false);
  const { kernelNames } = await tf.profile(() => {
    tf.dispose(step());
  });
  assert.ok(
    kernelNames.includes('AtenBatchNormTraining') &&
      kernelNames.includes('AtenBatchNormTrainingGrad') &&
      !kernelNames.includes('AtenFusedBatchNormGrad'),
    kernelNames.join(','),
  );
});
