// A tfjs-layers model trains on the engine: the loss falls and the model learns a real rule.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '../src/index';

/** Images with a bright blob in the left (label 1) or right (label 0) half, plus noise. */
function blobs(n: number, size: number, seed: number): { xs: tf.Tensor4D; ys: tf.Tensor2D } {
  let s = seed;
  const rand = () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  const x = new Float32Array(n * size * size);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const left = rand() < 0.5;
    y[i] = left ? 1 : 0;
    const cx = Math.floor((left ? 0.25 : 0.75) * size + (rand() - 0.5) * 4);
    const cy = Math.floor(size / 2 + (rand() - 0.5) * size * 0.5);
    for (let r = 0; r < size; r++) {
      for (let c = 0; c < size; c++) {
        const d2 = (r - cy) ** 2 + (c - cx) ** 2;
        x[i * size * size + r * size + c] = Math.exp(-d2 / 8) + 0.2 * rand();
      }
    }
  }
  return { xs: tf.tensor4d(x, [n, size, size, 1]), ys: tf.tensor2d(y, [n, 1]) };
}

test('a tfjs-layers CNN trains on aten and its loss falls', async () => {
  await tf.setBackend('aten');
  assert.equal(tf.getBackend(), 'aten');
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [16, 16, 1], filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' }),
      tfl.layers.batchNormalization(),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.conv2d({ filters: 16, kernelSize: 3, padding: 'same', activation: 'relu' }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'binaryCrossentropy', metrics: ['accuracy'] });
  const train = blobs(128, 16, 1);
  const testSet = blobs(64, 16, 2);
  const h = await model.fit(train.xs, train.ys, { epochs: 8, batchSize: 16, verbose: 0 });
  const losses = h.history.loss as number[];
  assert.ok(losses[losses.length - 1] < losses[0] * 0.5, `loss did not fall: ${losses.join(', ')}`);
  const [, acc] = model.evaluate(testSet.xs, testSet.ys) as tf.Scalar[];
  assert.ok(acc.dataSync()[0] > 0.9, `held-out accuracy ${acc.dataSync()[0]}`);
  tf.dispose([train.xs, train.ys, testSet.xs, testSet.ys, acc]);
  model.dispose();
});
