// The one-kernel gradients of Relu and Square and the broadcast gradients of Sum and Mean
// (src/gradients.ts, src/kernels/grad.ts) against tfjs-core's own gradients on the cpu backend.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's node bundle registers no gradients; tfjs-layers' bundle does. Imported first, so
// that the overrides are in place before any kernel runs (norm.test.ts covers the other order).
import '@tensorflow/tfjs-layers';
import '../src/index';

let seed = 17;
function rand(shape: number[], lo = -1, hi = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      return lo + (hi - lo) * (seed / 2 ** 32);
    }),
    shape,
  );
}

/** f on cpu and aten from the same seed: equal outputs (NaN and infinities included), and the kernels aten ran. */
async function parity(f: () => tf.Tensor | tf.Tensor[], tol = 1e-5): Promise<string[]> {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const start = seed;
    let values: Float32Array[] = [];
    const { kernelNames } = await tf.profile(() => {
      values = ([] as tf.Tensor[]).concat(tf.tidy(f)).map((t) => {
        const v = t.dataSync() as Float32Array;
        t.dispose();
        return v;
      });
    });
    seed = start;
    return { values, kernelNames };
  };
  const cpu = await run('cpu');
  const aten = await run('aten');
  seed += 11;
  cpu.values.forEach((want, k) =>
    want.forEach((w, i) => {
      const a = aten.values[k][i];
      assert.ok(
        Object.is(a, w) || Math.abs(a - w) <= tol * (1 + Math.abs(w)),
        `output ${k}[${i}]: aten ${a}, cpu ${w}`,
      );
    }),
  );
  return aten.kernelNames;
}

test('relu gradient is one kernel, with NaN and infinities as on cpu', async () => {
  const kernels = await parity(() =>
    tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.relu(x), rand([4, 5, 6]))))(rand([4, 5, 6])),
  );
  assert.ok(kernels.includes('AtenReluGrad') && !kernels.includes('Step'), kernels.join(','));
  const x = tf.tensor([NaN, -1, 0, 2, -0, 3, -2, NaN]);
  const dy = tf.tensor([1, Infinity, -Infinity, NaN, 2, -3, NaN, Infinity]);
  await parity(() => tf.grad((a: tf.Tensor) => tf.relu(a))(x, dy));
  tf.dispose([x, dy]);
});

test('square gradient is one kernel, also on a broadcast dy (the gradient of a mean)', async () => {
  const kernels = await parity(() =>
    tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.square(x), rand([3, 4]))))(rand([3, 4])),
  );
  assert.ok(kernels.includes('AtenSquareGrad'), kernels.join(','));
  await parity(() => tf.grad((x: tf.Tensor) => tf.mean(tf.square(x), [0, 1]))(rand([3, 4, 5])));
  await parity(() =>
    tf.grads((x: tf.Tensor) => tf.sum(tf.square(tf.sub(x, tf.mean(x, [0, 1, 2], true)))))([rand([2, 3, 4, 5])]),
  );
});

test('gradients flow through broadcast views into other kernels', async () => {
  // The views of sum's and mean's gradients feed element-wise ops, matmul, reshape and a read.
  await parity(() =>
    tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.matMul(tf.reshape(tf.add(tf.sum(a, 0, true), tf.mean(a, 0, true)), [4, 5]), b)),
    )([rand([3, 4, 5]), rand([5, 2])]),
  );
  await parity(() => tf.grad((a: tf.Tensor) => tf.sum(tf.relu(tf.mean(a, [1, 2]))))(rand([2, 3, 4, 5])));
});

test('higher-order gradients still run tfjs-core gradients', async () => {
  await parity(
    () =>
      tf.grad((x: tf.Tensor) => tf.sum(tf.grad((y: tf.Tensor) => tf.sum(tf.mul(tf.square(y), tf.relu(y))))(x)))(
        rand([6]),
      ),
    1e-4,
  );
  await parity(() =>
    tf.grad((x: tf.Tensor) => tf.sum(tf.grad((y: tf.Tensor) => tf.mean(tf.square(y)))(x)))(rand([2, 3])),
  );
});
