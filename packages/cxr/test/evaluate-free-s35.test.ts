// runEvaluation, called by a program, frees the model on a refusal too: an unknown operating point (or an --out
// it must not write into) rejected with the whole model's tensors still held, one model's worth per failed call.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { runEvaluation } from '../src/cli/evaluate_run';
import { initEngine } from '../src/engine';
import { makeTinyModel, tempDir } from './serve-fixtures';

const made: string[] = [];
after(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

test('runEvaluation rejecting an operating point the model lacks leaves no tensor behind', async () => {
  await initEngine();
  const dir = tempDir('s35-eval-free');
  made.push(dir);
  const modelDir = await makeTinyModel(dir);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++)
    await assert.rejects(
      runEvaluation({ modelDir, data: dir, operatingPoint: 'no-such-point' }),
      /model has no operating point 'no-such-point'/,
    );
  assert.equal(tf.memory().numTensors, before, 'tensors held after three refused evaluations');
});
