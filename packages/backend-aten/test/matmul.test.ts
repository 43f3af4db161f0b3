// BatchMatMul and _FusedMatMul on aten against the tfjs cpu backend, gradients included.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '../src/index';
import { parity, rng } from './parity';
// tfjs-core's node bundle registers no gradients; tfjs-layers registers them.
import '@tensorflow/tfjs-layers';

rng.state = 1;
function rand(shape: number[], dtype: 'float32' | 'int32' = 'float32'): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Array.from({ length: n }, () => {
    const seed = rng.next();
    return dtype === 'int32' ? (seed % 11) - 5 : seed / 2 ** 31 - 1;
  });
  return tf.tensor(v, shape, dtype);
}

test('matMul rank 2 with every transpose combination and odd sizes', async () => {
  for (const [ta, tb] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ]) {
    await parity(() => tf.matMul(rand(ta ? [13, 7] : [7, 13]), rand(tb ? [5, 13] : [13, 5]), ta, tb));
  }
  await parity(() => tf.matMul(rand([1, 1]), rand([1, 9])));
});

test('matMul rank 3+ with batch broadcasting', async () => {
  await parity(() => tf.matMul(rand([4, 3, 6]), rand([4, 6, 2])));
  await parity(() => tf.matMul(rand([4, 6, 3]), rand([4, 2, 6]), true, true));
  await parity(() => tf.matMul(rand([4, 3, 6]), rand([1, 6, 2])));
  await parity(() => tf.matMul(rand([1, 3, 6]), rand([5, 6, 2]), false, false));
  await parity(() => tf.matMul(rand([2, 3, 4, 5]), rand([3, 5, 2])));
  await parity(() => tf.matMul(rand([3, 5, 4]), rand([2, 3, 2, 5]), true, true));
  await parity(() => tf.matMul(rand([4, 5]), rand([3, 5, 2])));
  await parity(() => tf.matMul(rand([2, 1, 3, 4]), rand([2, 1, 4, 3])));
});

test('matMul of int32 stays int32', async () => {
  await parity(() => tf.matMul(rand([3, 4], 'int32'), rand([4, 5], 'int32')), 0);
  await parity(() => tf.matMul(rand([2, 4, 3], 'int32'), rand([2, 4, 5], 'int32'), true), 0);
});

test('fused matMul with bias and every activation', async () => {
  for (const activation of ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu', 'prelu'] as const) {
    await parity(() =>
      tf.fused.matMul({
        a: tf.mul(rand([6, 5]), 4),
        b: rand([5, 7]),
        bias: rand([7]),
        activation,
        preluActivationWeights: activation === 'prelu' ? rand([7]) : undefined,
        leakyreluAlpha: activation === 'leakyrelu' ? 0.15 : undefined,
      }),
    );
  }
  await parity(() =>
    tf.fused.matMul({
      a: rand([5, 6]),
      b: rand([7, 5]),
      transposeA: true,
      transposeB: true,
      bias: rand([6, 7]),
      activation: 'relu',
    }),
  );
  await parity(() => tf.fused.matMul({ a: rand([3, 4, 5]), b: rand([3, 5, 2]), bias: rand([2]), activation: 'elu' }));
  await parity(() => tf.fused.matMul({ a: rand([3, 4, 5]), b: rand([5, 2]) }));
  await parity(() => tf.fused.matMul({ a: rand([4, 5]), b: rand([5, 2]), bias: rand([1]), activation: 'leakyrelu' }));
});

test('matMul gradients', async () => {
  for (const [ta, tb] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ]) {
    await parity(() =>
      tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.matMul(a, b, ta, tb))))([
        rand(ta ? [5, 3] : [3, 5]),
        rand(tb ? [4, 5] : [5, 4]),
      ]),
    );
  }
  await parity(() =>
    tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.matMul(a, b)))([rand([2, 3, 5]), rand([2, 5, 4])]),
  );
  // Dense layers in training: linear fused matMul with a bias, whose gradient sums dy.
  await parity(() =>
    tf.grads((a: tf.Tensor, b: tf.Tensor, bias: tf.Tensor) => tf.sum(tf.square(tf.fused.matMul({ a, b, bias }))))([
      rand([8, 5]),
      rand([5, 3]),
      rand([3]),
    ]),
  );
});

test('a bad-shape matMul throws a JS Error and the backend keeps working', async () => {
  await tf.setBackend('aten');
  const a = tf.ones([2, 3]);
  const b = tf.ones([4, 5]);
  assert.throws(
    () => tf.matMul(a, b),
    (e: unknown) => e instanceof Error && /shapes|match/.test(e.message),
  );
  assert.throws(() => tf.fused.matMul({ a, b, bias: tf.ones([5]) }), Error);
  assert.throws(() => tf.matMul(tf.ones([2, 2, 3]), tf.ones([3, 3, 2])), Error);
  assert.deepEqual(Array.from(tf.matMul(a, tf.ones([3, 1])).dataSync()), [3, 3]);
  tf.dispose([a, b]);
});
