// Memory: tensors and native bytes return to baseline after disposal, and a long run of
// training steps does not grow the tensor count or the native heap.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { nativeMemory } from '../src/index';

v8.setFlagsFromString('--expose-gc');
// RSS is compared after a full GC so that garbage not yet collected does not count as growth.
const gc = vm.runInNewContext('gc') as () => void;

test('numTensors and native bytes return to baseline after dispose', async () => {
  await tf.setBackend('aten');
  const before = tf.memory().numTensors;
  const nativeBefore = nativeMemory().bytesInUse;
  const a = tf.randomNormal([64, 64]);
  // relu and add run natively, so b lives in ATen memory.
  const b = tf.tidy(() => tf.add(tf.relu(tf.matMul(a, a)), 1));
  await b.data();
  assert.ok(nativeMemory().bytesInUse > nativeBefore);
  tf.dispose([a, b]);
  assert.equal(tf.memory().numTensors, before);
  assert.equal(nativeMemory().bytesInUse, nativeBefore);
});

test('1,000 training steps: no growth in tensors, native bytes or RSS', async () => {
  await tf.setBackend('aten');
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [12, 12, 1], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }),
      tfl.layers.batchNormalization(),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.flatten(),
      tfl.layers.dropout({ rate: 0.2 }),
      tfl.layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
  });
  model.compile({ optimizer: tf.train.rmsprop(1e-3), loss: 'binaryCrossentropy' });
  const xs = tf.randomUniform([8, 12, 12, 1]);
  const ys = tf.tensor2d([0, 1, 0, 1, 1, 0, 1, 0], [8, 1]);
  let tensors = 0, bytes = 0, rss = 0;
  for (let step = 0; step < 1000; step++) {
    await model.trainOnBatch(xs, ys);
    if (step === 49) {
      tensors = tf.memory().numTensors;
      bytes = nativeMemory().bytesInUse;
      gc();
      rss = process.memoryUsage().rss;
    }
  }
  assert.equal(tf.memory().numTensors, tensors, 'tensor count grew');
  assert.equal(nativeMemory().bytesInUse, bytes, 'native bytes in use grew');
  gc();
  const growth = process.memoryUsage().rss / rss - 1;
  assert.ok(growth < 0.05, `RSS grew ${(growth * 100).toFixed(1)}% after step 50`);
  tf.dispose([xs, ys]);
  model.dispose();
});
