// Reductions, arg-reductions, softmax and cumulative ops on aten against the tfjs cpu backend,
// with the Sum and Mean gradient overrides.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '../src/index';
import { parity, rng } from './parity';
// tfjs-core's node bundle registers no gradients; tfjs-layers registers them.
import * as tfl from '@tensorflow/tfjs-layers';

rng.state = 3;
function rand(shape: number[], dtype: 'float32' | 'int32' | 'bool' = 'float32'): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Array.from({ length: n }, () => {
    const seed = rng.next();
    return dtype === 'int32' ? (seed % 7) - 3 : dtype === 'bool' ? (seed >>> 20) % 3 === 0 : seed / 2 ** 31 - 1;
  });
  return tf.tensor(v as number[], shape, dtype);
}

const AXES: Array<number | number[] | undefined> = [undefined, 0, -1, 1, [0, 2], [2, 0, 1], []];

test('sum, mean, max, min, prod over axes with keepDims, float32 and int32', async () => {
  const ops = { sum: tf.sum, mean: tf.mean, max: tf.max, min: tf.min, prod: tf.prod };
  for (const [name, op] of Object.entries(ops)) {
    for (const dtype of ['float32', 'int32'] as const) {
      for (const axis of AXES) {
        for (const keepDims of [false, true]) {
          await parity(() => op(rand([3, 4, 5], dtype), axis, keepDims), name === 'prod' ? 1e-3 : 1e-4);
        }
      }
      await parity(() => op(rand([7], dtype)));
      await parity(() => op(tf.scalar(2.5, dtype)));
    }
  }
});

test('sum, mean and prod of bool; all and any', async () => {
  for (const axis of AXES) {
    for (const keepDims of [false, true]) {
      await parity(() => [
        tf.sum(rand([3, 4, 5], 'bool'), axis, keepDims),
        tf.mean(rand([3, 4, 5], 'bool'), axis, keepDims),
        tf.prod(rand([3, 4, 5], 'bool'), axis, keepDims),
      ]);
      await parity(() => [
        tf.all(rand([3, 4, 5], 'bool'), axis, keepDims),
        tf.any(rand([3, 4, 5], 'bool'), axis, keepDims),
      ]);
    }
  }
});

test('max and min propagate NaN; empty reductions fall back', async () => {
  await parity(() => [
    tf.max(
      tf.tensor2d([
        [1, NaN, 3],
        [4, 5, 6],
      ]),
      1,
    ),
    tf.min(
      tf.tensor2d([
        [1, NaN, 3],
        [4, 5, 6],
      ]),
      0,
    ),
  ]);
  await parity(() => tf.sum(tf.zeros([0, 3]), 1));
  await parity(() => tf.sum(tf.zeros([2, 0, 3]), 1), 1e-4, false);
});

test('argMax and argMin: axes, ties, NaN, int32', async () => {
  for (const axis of [0, 1, 2, -1]) {
    await parity(() => [tf.argMax(rand([3, 4, 5]), axis), tf.argMin(rand([3, 4, 5]), axis)], 0);
    await parity(() => [tf.argMax(rand([3, 4, 5], 'int32'), axis), tf.argMin(rand([3, 4, 5], 'int32'), axis)], 0);
  }
  const x = tf.tensor2d([
    [NaN, 1, 2],
    [1, NaN, 3],
    [2, 2, 1],
    [-Infinity, NaN, -Infinity],
  ]);
  await parity(() => [tf.argMax(x, 1), tf.argMin(x, 1), tf.argMax(x, 0), tf.argMin(x, 0)], 0);
  x.dispose();
});

test('softmax and logSoftmax over the last axis', async () => {
  await parity(() => tf.softmax(tf.mul(rand([5, 7]), 10)));
  await parity(() => tf.softmax(rand([2, 3, 4])));
  await parity(() => tf.softmax(rand([6])));
  await parity(() => tf.logSoftmax(rand([4, 9])));
});

test('cumsum and cumprod: axes, exclusive, reverse, dtypes', async () => {
  for (const axis of [0, 1, 2]) {
    for (const exclusive of [false, true]) {
      for (const reverse of [false, true]) {
        await parity(() => [
          tf.cumsum(rand([3, 4, 5]), axis, exclusive, reverse),
          tf.cumprod(tf.add(rand([3, 4, 5]), 1), axis, exclusive, reverse),
        ]);
        await parity(
          () => [
            tf.cumsum(rand([3, 4, 5], 'int32'), axis, exclusive, reverse),
            tf.cumprod(rand([3, 4, 5], 'int32'), axis, exclusive, reverse),
          ],
          0,
        );
      }
    }
  }
  await parity(() => tf.cumsum(rand([4, 2], 'bool'), 0, true, false), 0);
});

test('losses and metrics of tfjs-layers', async () => {
  await parity(
    () => {
      const yTrue = tf.oneHot(tf.tensor1d([0, 2, 1, 2], 'int32'), 3);
      const yPred = tf.softmax(rand([4, 3]));
      return [
        tfl.metrics.categoricalCrossentropy(yTrue, yPred),
        tfl.metrics.categoricalAccuracy(yTrue, yPred),
        tfl.metrics.meanSquaredError(yTrue, yPred),
        tfl.metrics.meanAbsoluteError(yTrue, yPred),
        tfl.metrics.cosineProximity(yTrue, yPred),
        tf.logSumExp(yPred, 1),
        tf.losses.softmaxCrossEntropy(yTrue, rand([4, 3])),
      ];
    },
    1e-4,
    false,
  );
  await parity(
    () => {
      const yTrue = tf.tensor2d([[0], [1], [1], [0]]);
      const yPred = tf.sigmoid(rand([4, 1]));
      return [tfl.metrics.binaryCrossentropy(yTrue, yPred), tfl.metrics.binaryAccuracy(yTrue, yPred)];
    },
    1e-4,
    false,
  );
});

test('sum and mean gradients over axes run as broadcasts', async () => {
  for (const axis of AXES) {
    for (const keepDims of [false, true]) {
      await parity(() =>
        tf.grads((x: tf.Tensor, y: tf.Tensor) =>
          tf.add(tf.sum(tf.square(tf.sum(x, axis, keepDims))), tf.sum(tf.square(tf.mean(y, axis, keepDims)))),
        )([rand([3, 4, 5]), rand([3, 4, 5])]),
      );
    }
  }
  await tf.setBackend('aten');
  const x = rand([8, 6, 6, 4]);
  const { kernelNames } = await tf.profile(() => tf.grad((x: tf.Tensor) => tf.mean(tf.sum(x, [1, 2])))(x));
  // tfjs-core's gradients multiply by ones(x.shape) (Multiply); the overrides broadcast dy
  // without copying (no Tile either).
  assert.ok(
    kernelNames.includes('AtenBroadcastView') && !kernelNames.includes('Multiply') && !kernelNames.includes('Tile'),
    kernelNames.join(','),
  );
  x.dispose();
});

// (Prod's gradient is not tested: it calls chained ops, which tfjs-core's node bundle does not register.)
test('gradients of max, min, softmax and cumsum', async () => {
  await parity(
    () =>
      tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.add(tf.sum(tf.max(a, 1)), tf.sum(tf.min(b, [0, 2]))))([
        rand([3, 4, 5]),
        rand([3, 4, 5]),
      ]),
    1e-4,
    false,
  );
  await parity(() => tf.grad((x: tf.Tensor) => tf.sum(tf.square(tf.softmax(x))))(rand([4, 6])), 1e-4, false);
  await parity(() => tf.grad((x: tf.Tensor) => tf.sum(tf.square(tf.cumsum(x, 1))))(rand([4, 6])), 1e-4, false);
});
