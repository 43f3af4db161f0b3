// Early stopping and --resume: a run killed after its loop stopped early (in the final checks, the OOD gate,
// or between the transfer recipe's phases) resumes to no further epoch, ending on the uninterrupted run's
// weights and best epoch; an earlier phase's early stop does not end the phase that follows it.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine } from '../src/engine';
import { fileLoader } from '../src/models/io';
import { type LoopState, readState, restoreCheckpoint } from '../src/train/checkpoint';
import { type Phase, runEpochs } from '../src/train/loop';
import { weightedBce } from '../src/train/loss';
import { createSlots, makeOptimizer } from '../src/train/optim';
import { Recipe } from '../src/train/recipe';
import { makeSchedule } from '../src/train/schedule';

const N = 8;
const BATCH = 4;
const STEPS = N / BATCH;
const EPOCHS = 5;
const xs = Float32Array.from({ length: N * 2 }, (_, i) => Math.sin(i * 1.3));
const labels = Array.from({ length: N }, (_, i) => (xs[i * 2] > 0 ? 1 : 0));

// Validation scripted by epoch, so that where the run stops does not hang on what a toy model learns:
// epoch 1 is the best, epoch 2 no better (patience 1 stops there), epoch 3 would be a new best.
const VAL_LABELS = [0, 0, 1, 1];
const VAL_LOGITS = [
  [0, 1, 1, 2], // AUC 0.875
  [0, 0, 0, 0], // AUC 0.5
  [0, 0, 1, 1], // AUC 1
  [0, 0, 1, 1],
  [0, 0, 1, 1],
];

interface Run {
  model: tfl.LayersModel;
  optimizer: tf.Optimizer;
  state: LoopState;
  /** The epoch of every batch trained. */
  batches: number[];
  lines: string[];
}

function setup(init?: tf.Tensor[]): Run {
  const model = tfl.sequential({
    layers: [tfl.layers.dense({ inputShape: [2], units: 3 }), tfl.layers.dense({ units: 1, activation: 'sigmoid' })],
  });
  if (init) model.setWeights(init);
  // SGD with momentum: its slots restore exactly (Adam recomputes beta^t on restore).
  const optimizer = makeOptimizer('sgd', 0.1);
  model.compile({ optimizer, loss: weightedBce(0) });
  const state = { epoch: 0, step: 0, bestAuc: -1, bestEpoch: -1, schedule: {}, elapsedSeconds: 0 };
  return { model, optimizer, state, batches: [], lines: [] };
}

function phase(r: Run, dir: string, o: { name?: 'head' | 'fine-tune'; endEpoch: number }): Phase<LoopState> {
  return {
    name: o.name,
    state: r.state,
    seed: 3,
    endEpoch: o.endEpoch,
    epochTitle: (e) => `epoch ${e + 1}`,
    model: r.model,
    optimizer: r.optimizer,
    schedule: makeSchedule(Recipe.parse({ epochs: EPOCHS, schedule: 'constant', optimizer: 'sgd' }), r.state.schedule),
    batchSize: BATCH,
    labels,
    order: (e) => Array.from({ length: N }, (_, i) => (i * (e + 3)) % N),
    input: (idx, epoch) => {
      r.batches.push(epoch);
      return tf.tensor2d(Float32Array.from(idx.flatMap((i) => [xs[i * 2], xs[i * 2 + 1]])), [idx.length, 2]);
    },
    // The epoch being validated, from the steps taken so far.
    validate: async () => Float32Array.from(VAL_LOGITS[r.state.step / STEPS - 1]),
    valLabels: VAL_LABELS,
    patience: 1,
    bestDir: path.join(dir, 'best'),
    lastDir: path.join(dir, 'last'),
    logFile: path.join(dir, 'log.jsonl'),
    started: Date.now(),
    log: (line) => r.lines.push(line),
  };
}

const weightsOf = (m: tfl.LayersModel) => m.getWeights().map((w) => Array.from(w.dataSync()));

async function savedWeights(dir: string): Promise<number[][]> {
  const m = await tfl.loadLayersModel(fileLoader(dir));
  const w = weightsOf(m);
  m.dispose();
  return w;
}

/** A fresh process's resume: a new model and optimiser, then the checkpoint restored into them. */
async function resumed(dir: string): Promise<Run> {
  const r = setup();
  await createSlots(r.model, r.optimizer, tf.zeros([1, 2]), tf.zeros([1, 1]));
  r.state = await restoreCheckpoint(path.join(dir, 'last'), r.model, r.optimizer);
  return r;
}

test('a run killed after an early stop resumes to no further epoch, ending as the uninterrupted run', async () => {
  await initEngine();
  const init = setup().model.getWeights();
  // The uninterrupted run: stops early after epoch 2 of 5, and whatever follows the loop uses its state.
  const aDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-stop-a-'));
  const a = setup(init);
  assert.equal(await runEpochs(phase(a, aDir, { endEpoch: EPOCHS })), true);
  assert.deepEqual(a.batches, [0, 0, 1, 1]);
  assert.equal(a.state.epoch, 2);
  assert.equal(a.state.bestEpoch, 1);
  assert.equal(readState(path.join(aDir, 'last'))?.stoppedEarly, 'train');

  // The same run killed once its loop had returned (in the final checks or the OOD gate), then resumed.
  const bDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-stop-b-'));
  await runEpochs(phase(setup(init), bDir, { endEpoch: EPOCHS }));
  const bestBefore = await savedWeights(path.join(bDir, 'best'));
  const logBefore = fs.readFileSync(path.join(bDir, 'log.jsonl'), 'utf8');
  const b = await resumed(bDir);
  assert.equal(b.state.epoch, 2);
  assert.equal(await runEpochs(phase(b, bDir, { endEpoch: EPOCHS })), true, 'the resumed loop did not report the stop');
  // No further epoch: epoch 3 would have been a new best, replacing the model the uninterrupted run keeps.
  assert.deepEqual(b.batches, [], `the resumed run trained epochs ${b.batches.join(', ')}`);
  assert.match(b.lines.join('\n'), /training stopped early after epoch 2/);
  assert.deepEqual(
    { epoch: b.state.epoch, step: b.state.step, bestEpoch: b.state.bestEpoch, bestAuc: b.state.bestAuc },
    { epoch: 2, step: 2 * STEPS, bestEpoch: 1, bestAuc: a.state.bestAuc },
  );
  assert.deepEqual(weightsOf(b.model), weightsOf(a.model));
  assert.deepEqual(await savedWeights(path.join(bDir, 'best')), bestBefore);
  assert.deepEqual(bestBefore, await savedWeights(path.join(aDir, 'best')));
  assert.equal(fs.readFileSync(path.join(bDir, 'log.jsonl'), 'utf8'), logBefore, 'the resumed run logged an epoch');
});

test('a run killed mid-way, before any early stop, still resumes and trains on', async () => {
  await initEngine();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-stop-c-'));
  // One epoch, then the kill: no stop recorded, the resumed run trains epoch 2 and stops there as usual.
  await runEpochs(phase(setup(), dir, { endEpoch: 1 }));
  assert.equal(readState(path.join(dir, 'last'))?.stoppedEarly, undefined);
  const r = await resumed(dir);
  assert.equal(await runEpochs(phase(r, dir, { endEpoch: EPOCHS })), true);
  assert.deepEqual(r.batches, [1, 1]);
  assert.equal(r.state.epoch, 2);
});

test("a phase's early stop does not end the next phase, and that phase's own stop is its own", async () => {
  await initEngine();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-stop-d-'));
  // The transfer recipe's shape: the head stops early, fine-tuning continues on the same state.
  const r = setup();
  assert.equal(await runEpochs(phase(r, dir, { name: 'head', endEpoch: EPOCHS })), true);
  assert.equal(r.state.stoppedEarly, 'head');
  assert.equal(await runEpochs(phase(r, dir, { name: 'fine-tune', endEpoch: 3 })), false);
  assert.deepEqual(r.batches, [0, 0, 1, 1, 2, 2]);
  assert.equal(readState(path.join(dir, 'last'))?.stoppedEarly, undefined, "the head's stop outlived it");
  assert.equal(r.state.bestEpoch, 3);
});
