// Weight averaging in the epoch loop: the saved (best) model holds the hand-computed moving
// average of the weights after each step, batch-norm statistics included; a run interrupted after
// an epoch and resumed from its checkpoint ends with the same weights and the same average as an
// uninterrupted one (with mixup in the batches, which must also resume identically); an edited or cut-short
// average is refused naming its file and what to do.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine } from '../src/engine';
import { mixBatch } from '../src/data/mix';
import { fileLoader } from '../src/models/io';
import { type LoopState, restoreCheckpoint } from '../src/train/checkpoint';
import { type Phase, runEpochs } from '../src/train/loop';
import { weightedBce } from '../src/train/loss';
import { createSlots, makeOptimizer } from '../src/train/optim';
import { Recipe } from '../src/train/recipe';
import { makeSchedule } from '../src/train/schedule';
import { emaDecay, WeightAverage } from '../src/train/weight_average';

const N = 16;
const BATCH = 8;
const FEATURES = 3;
// Fixed toy data: one 1x1 "film" with 3 channels per sample, the label from the first channel.
const xs = Float32Array.from({ length: N * FEATURES }, (_, i) => Math.sin(i * 1.7) + (i % 3 === 0 ? 0.3 : 0));
const labels = Array.from({ length: N }, (_, i) => (xs[i * FEATURES] > 0 ? 1 : 0));

function toyModel(): tfl.LayersModel {
  // Dense + batch norm: the average must cover the BN moving mean and variance (non-trainable).
  return tfl.sequential({
    layers: [
      tfl.layers.flatten({ inputShape: [1, 1, FEATURES] }),
      tfl.layers.dense({ units: 4 }),
      tfl.layers.batchNormalization(),
      tfl.layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
  });
}

function recipe(epochs: number) {
  return Recipe.parse({ epochs, lr: 0.05, schedule: 'constant', optimizer: 'sgd' });
}

interface Run {
  model: tfl.LayersModel;
  optimizer: tf.Optimizer;
  average: WeightAverage;
  state: LoopState;
  seen: Float32Array[][];
}

function setup(init: tf.Tensor[], decay: number): Run {
  const model = toyModel();
  model.setWeights(init);
  // SGD with momentum: its slots restore exactly (Adam recomputes beta^t on restore, off by rounding).
  const optimizer = makeOptimizer('sgd', 0.05);
  model.compile({ optimizer, loss: weightedBce(0) });
  const average = new WeightAverage({ method: 'ema', decay }, model);
  const state = { epoch: 0, step: 0, bestAuc: -1, bestEpoch: -1, schedule: {}, elapsedSeconds: 0 };
  return { model, optimizer, average, state, seen: [] };
}

function phase(r: Run, dir: string, endEpoch: number, mix: boolean): Phase<LoopState> {
  const valX = tf.tensor4d(xs, [N, 1, 1, FEATURES]);
  return {
    state: r.state,
    seed: 1,
    endEpoch,
    epochTitle: (e) => `epoch ${e + 1}`,
    model: r.model,
    optimizer: r.optimizer,
    schedule: makeSchedule(recipe(endEpoch), r.state.schedule),
    batchSize: BATCH,
    labels,
    order: (e) => Array.from({ length: N }, (_, i) => (i * (e + 3)) % N),
    input: (idx) => {
      // The weights the step about to run starts from: after the previous step.
      r.seen.push(r.model.getWeights().map((w) => w.dataSync() as Float32Array));
      return tf.tensor4d(
        Float32Array.from(idx.flatMap((i) => Array.from(xs.subarray(i * FEATURES, (i + 1) * FEATURES)))),
        [idx.length, 1, 1, FEATURES],
      );
    },
    mix: mix
      ? (x, y, e, b) =>
          mixBatch(x as tf.Tensor4D, y as tf.Tensor2D, { method: 'mixup', alpha: 0.4, probability: 1 }, `t:${e}:${b}`)
      : undefined,
    average: r.average,
    validate: async () => {
      const p = tf.tidy(() => tf.clipByValue(r.model.predict(valX) as tf.Tensor, 1e-6, 1 - 1e-6));
      const probs = (await p.data()) as Float32Array;
      p.dispose();
      return Float32Array.from(probs, (q) => Math.log(q / (1 - q)));
    },
    valLabels: labels,
    patience: 0,
    bestDir: path.join(dir, 'best'),
    lastDir: path.join(dir, 'last'),
    logFile: path.join(dir, 'log.jsonl'),
    started: Date.now(),
    log: () => {},
  };
}

async function loadWeights(dir: string): Promise<Float32Array[]> {
  const m = await tfl.loadLayersModel(fileLoader(dir));
  const w = m.getWeights().map((t) => t.dataSync() as Float32Array);
  m.dispose();
  return w;
}

function assertClose(a: Float32Array[], b: ArrayLike<number>[], tol: number, what: string) {
  assert.equal(a.length, b.length);
  a.forEach((w, i) =>
    w.forEach((v, j) => assert.ok(Math.abs(v - b[i][j]) <= tol, `${what}: weight ${i}[${j}] ${v} vs ${b[i][j]}`)),
  );
}

test('the decay is capped early on, then the configured one', () => {
  assert.equal(emaDecay(0.999, 1), 2 / 11);
  assert.equal(emaDecay(0.5, 2), 0.25);
  assert.equal(emaDecay(0.5, 100), 0.5);
});

test('two steps: the saved model holds the hand-computed moving average, BN statistics included', async () => {
  await initEngine();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-ema-'));
  const init = toyModel().getWeights();
  const r = setup(init, 0.6);
  await runEpochs(phase(r, dir, 1, false));
  const after = r.model.getWeights().map((w) => w.dataSync() as Float32Array);
  const [w0, w1] = r.seen; // before step 1 (the start) and after step 1
  const w2 = after; // after step 2 (the loop put the raw weights back)
  assert.notDeepEqual(Array.from(w1[0]), Array.from(w2[0]), 'the steps did not move the weights');
  // BN moving statistics are among the weights and moved with the steps.
  assert.equal(w0.length, 8); // dense 2, BN gamma, beta, moving mean, moving variance, dense 2
  assert.notDeepEqual(Array.from(w0[4]), Array.from(w2[4]), 'BN moving mean did not move');
  const d1 = Math.min(0.6, 2 / 11);
  const d2 = Math.min(0.6, 3 / 12);
  const expected = w0.map((a, i) => a.map((v, j) => d2 * (d1 * v + (1 - d1) * w1[i][j]) + (1 - d2) * w2[i][j]));
  assertClose(await loadWeights(path.join(dir, 'best')), expected, 1e-5, 'averaged');
  assert.equal(r.average.steps, 2);
});

test('a run resumed from its checkpoint ends like an uninterrupted one (weights, average, mixup)', async () => {
  await initEngine();
  const init = toyModel().getWeights();
  const decay = 0.7;
  const aDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-ema-a-'));
  const a = setup(init, decay);
  await runEpochs(phase(a, aDir, 3, true));

  const bDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-ema-b-'));
  const b1 = setup(init, decay);
  await runEpochs(phase(b1, bDir, 1, true));
  // A fresh process would build a new model, optimiser and average, then restore all three.
  const b = setup(toyModel().getWeights(), decay);
  await createSlots(b.model, b.optimizer, tf.zeros([1, 1, 1, FEATURES]), tf.zeros([1, 1]));
  b.state = await restoreCheckpoint(path.join(bDir, 'last'), b.model, b.optimizer);
  b.average.restore(path.join(bDir, 'last'));
  assert.equal(b.state.epoch, 1);
  await runEpochs(phase(b, bDir, 3, true));

  const raw = (r: Run) => r.model.getWeights().map((w) => w.dataSync() as Float32Array);
  const avg = (r: Run) => r.average.averaged().map((w) => w.dataSync() as Float32Array);
  assertClose(raw(b), raw(a), 0, 'raw');
  assertClose(avg(b), avg(a), 0, 'average');
  assert.equal(b.average.steps, a.average.steps);
  assert.equal(a.average.steps, 6);

  // The mixing is part of what was replayed: without it the same run ends elsewhere.
  const c = setup(init, decay);
  await runEpochs(phase(c, fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-ema-c-')), 3, false));
  const diff = raw(c)[0].reduce((s, v, j) => s + Math.abs(v - raw(a)[0][j]), 0);
  assert.ok(diff > 1e-4, `mixup made no difference (${diff})`);
});

test('restoring a checkpoint without an average fails with a clear message', async () => {
  await initEngine();
  const r = setup(toyModel().getWeights(), 0.9);
  assert.throws(() => r.average.restore(os.tmpdir()), /has no weight average to resume/);
});

test("a checkpoint's weight average edited or cut short is refused, naming the file and what to do", async () => {
  await initEngine();
  const r = setup(toyModel().getWeights(), 0.9);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-ema-damaged-'));
  try {
    const good = path.join(root, 'good');
    fs.mkdirSync(good);
    await r.average.save(good);
    r.average.restore(good);
    const json = JSON.parse(fs.readFileSync(path.join(good, 'average.json'), 'utf8'));
    const bin = fs.readFileSync(path.join(good, 'average.bin'));
    const cases: [string, (dir: string) => void, RegExp][] = [
      [
        'cut short',
        (d) => fs.writeFileSync(path.join(d, 'average.json'), '{"steps": 3, "spe'),
        /average\.json \(the weight average of a run checkpoint\) is not JSON/,
      ],
      [
        'a spec without its shape',
        (d) => {
          const specs = [{ name: 'w0', dtype: 'float32' }, ...json.specs.slice(1)];
          fs.writeFileSync(path.join(d, 'average.json'), JSON.stringify({ ...json, specs }));
        },
        /average\.json \(the weight average of a run checkpoint\) is not valid \(specs\.0\.shape: /,
      ],
      [
        'weights cut short',
        (d) => fs.writeFileSync(path.join(d, 'average.bin'), bin.subarray(0, bin.length - 4)),
        new RegExp(`average\\.bin holds ${bin.length - 4} bytes where average\\.json describes ${bin.length} `),
      ],
    ];
    for (const [i, [what, damage, why]] of cases.entries()) {
      const dir = path.join(root, `case-${i}`);
      fs.cpSync(good, dir, { recursive: true });
      damage(dir);
      assert.throws(
        () => r.average.restore(dir),
        (e: Error) => {
          assert.match(e.message, why, what);
          assert.match(e.message, new RegExp(`delete the folder ${dir} to start the run again`), what);
          return true;
        },
      );
    }
  } finally {
    r.average.dispose();
    r.model.dispose();
    fs.rmSync(root, { recursive: true, force: true });
  }
});
