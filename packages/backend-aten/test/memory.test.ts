// Memory: tensors and native bytes return to baseline after disposal, and 1,000 training steps
// do not grow the tensor count, the native heap or RSS.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { nativeMemory } from '../src/index';

interface Sample {
  step: number;
  rss: number;
  tensors: number;
  nativeBytes: number;
}

/** The 1,000-step run; executed in a child process (see below) and reports one sample per line. */
async function probe(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc!;
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
  for (let step = 1; step <= 1000; step++) {
    await model.trainOnBatch(xs, ys);
    if (step === 50 || step % 250 === 0) {
      gc();
      const s: Sample = {
        step,
        rss: process.memoryUsage().rss,
        tensors: tf.memory().numTensors,
        nativeBytes: nativeMemory().bytesInUse,
      };
      process.stdout.write(JSON.stringify(s) + '\n');
    }
  }
}

if (process.env.ATEN_MEMORY_PROBE) {
  void probe();
} else {
  test('numTensors and native bytes return to baseline after dispose', async () => {
    await tf.setBackend('aten');
    const before = tf.memory().numTensors;
    const nativeBefore = nativeMemory().bytesInUse;
    const a = tf.randomNormal([64, 64]);
    const b = tf.tidy(() => tf.add(tf.relu(tf.matMul(a, a)), 1));
    await b.data();
    assert.ok(nativeMemory().bytesInUse > nativeBefore);
    tf.dispose([a, b]);
    assert.equal(tf.memory().numTensors, before);
    assert.equal(nativeMemory().bytesInUse, nativeBefore);
  });

  test('1,000 training steps: no growth in tensors, native bytes or RSS (< 5 % after step 50)', () => {
    // A fresh process with a full GC before each sample and V8's young generation at its final
    // size from the start: otherwise V8 doubling its nursery once (16 -> 32 MB) reads as growth.
    const r = spawnSync(process.execPath, ['--expose-gc', '--min-semi-space-size=16', __filename], {
      env: { ...process.env, ATEN_MEMORY_PROBE: '1' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const samples = r.stdout
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Sample);
    assert.equal(samples.length, 5, r.stdout + r.stderr);
    const [first, ...rest] = samples;
    for (const s of rest) {
      assert.equal(s.tensors, first.tensors, `tensor count grew by step ${s.step}`);
      assert.equal(s.nativeBytes, first.nativeBytes, `native bytes grew by step ${s.step}`);
    }
    const growth = samples[samples.length - 1].rss / first.rss - 1;
    assert.ok(growth < 0.05, `RSS grew ${(growth * 100).toFixed(1)}% from step 50 to step 1000`);
  });
}
