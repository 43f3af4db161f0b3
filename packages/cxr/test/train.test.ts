// Training on a small real subset: validation AUC rises above chance, and a run killed mid-way
// (with a weight average) resumes to the same epoch count with a loadable model.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initEngine } from '../src/engine';
import { loadModel } from '../src/models/io';
import { runTraining } from '../src/train/run';

import { readRunLog, spawnCli } from './child-cli';
import { CHEST_XRAY, needsData } from './shared-data';
import { PLAIN_RECIPE } from './tiny-films';
const data = CHEST_XRAY;
const skip = needsData();
process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');

test('validation AUC rises clearly above 0.5 within a few epochs on a small real subset', { skip }, async () => {
  await initEngine();
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-train-'));
  const lines: string[] = [];
  const r = await runTraining({
    data,
    out,
    recipeName: 'cxr',
    report: false,
    progress: false,
    log: (l) => lines.push(l),
    overrides: { ...PLAIN_RECIPE, arch: 'cxrnet', inputSize: 64, epochs: 4, limitPerClass: 150 },
  });
  const log = readRunLog(out);
  assert.equal(log.length, 4);
  const best = Math.max(...log.map((e) => e.val_auc));
  assert.ok(best > 0.75, `best validation AUC ${best}\n${lines.join('\n')}`);
  assert.equal(r.meta.inputSize, 64);
  assert.ok(r.meta.operatingPoints.screening.threshold <= r.meta.operatingPoints.balanced.threshold);
  const loaded = await loadModel(out);
  assert.equal(loaded.members.length, 1);
  loaded.members[0].dispose();
});

test('a killed training run resumes to the same epoch count and a loadable model', { skip }, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-resume-'));
  const args = [
    'train',
    '--data',
    data,
    '--out',
    out,
    '--model',
    'reference',
    '--input-size',
    '48',
    '--epochs',
    '3',
    '--limit-per-class',
    '40',
    '--batch-size',
    '16',
    '--no-report',
    // With a weight average, which the checkpoint must carry for the resumed run to continue it.
    '--ema',
    '0.9',
    // And period-balanced epochs, whose draws the resumed run must repeat from the seed.
    '--period-balance',
    '5:3',
  ];
  const first = spawnCli(args);
  const logFile = path.join(out, 'log.jsonl');
  const ckpt = path.join(out, 'checkpoints', 'last', 'state.json');
  // Kill -9 once the first epoch's checkpoint is on disk, before the run can finish.
  for (let i = 0; i < 600 && !(fs.existsSync(ckpt) && fs.existsSync(logFile)); i++)
    await new Promise((r) => setTimeout(r, 100));
  first.child.kill('SIGKILL');
  await first.done;
  assert.ok(fs.existsSync(ckpt), `no checkpoint after the first epoch:\n${first.stderr()}`);
  assert.ok(!fs.existsSync(path.join(out, 'cxr.json')), 'the run finished before it could be killed');
  assert.ok(
    fs.existsSync(path.join(out, 'checkpoints', 'last', 'average.json')),
    'no weight average in the checkpoint',
  );

  const second = spawnCli([...args, '--resume']);
  // The same run uninterrupted, alongside: the resumed run must end where it does.
  const whole = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-whole-'));
  const third = spawnCli(args.map((a) => (a === out ? whole : a)));
  assert.equal(await second.done, 0, second.stderr());
  assert.equal(await third.done, 0, third.stderr());
  assert.match(second.stderr(), /resuming after epoch [12]/);
  const epochs = fs
    .readFileSync(logFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).epoch);
  assert.deepEqual(epochs, [1, 2, 3]);
  const loaded = await loadModel(out);
  assert.equal(loaded.meta.validation?.epochsRun, 3);
  assert.deepEqual(loaded.meta.recipe.weightAverage, { method: 'ema', decay: 0.9 });
  assert.deepEqual(loaded.meta.recipe.periodBalance, { window: 5, maxWeight: 3, power: 1 });
  assert.match(first.stderr(), /period balance: \d+ of \d+ training films weigh more than 1/);
  // The resumed run continued the checkpoint's average: it counts every step of the run, not only the resumed ones.
  const last = path.join(out, 'checkpoints', 'last');
  const steps = JSON.parse(fs.readFileSync(path.join(last, 'average.json'), 'utf8')).steps;
  assert.equal(steps, JSON.parse(fs.readFileSync(path.join(last, 'state.json'), 'utf8')).step);
  // Same initial weights and the same dropout masks per epoch and batch (train/seeded_math_random.ts): the
  // killed and resumed run ends on the uninterrupted run's weights, up to Adam's rounding on restore.
  const weights = (dir: string) =>
    new Float32Array(new Uint8Array(fs.readFileSync(path.join(dir, 'checkpoints', 'last', 'weights.bin'))).buffer);
  const [a, b] = [weights(out), weights(whole)];
  assert.equal(a.length, b.length);
  const gap = a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
  assert.ok(gap < 1e-3, `resumed and uninterrupted runs differ by up to ${gap}`);
  loaded.members[0].dispose();
  fs.rmSync(whole, { recursive: true, force: true });
});

test('two runs of one recipe and seed write the same weights, byte for byte', { skip }, async () => {
  const runs = [0, 1].map(() => fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-repeat-')));
  for (const out of runs) {
    // One after the other: the same thread count, and no competition that could reorder anything.
    const r = spawnCli([
      'train',
      '--data',
      data,
      '--out',
      out,
      '--recipe',
      'cxr-shift-ema',
      '--input-size',
      '32',
      '--epochs',
      '2',
      '--limit-per-class',
      '30',
      '--batch-size',
      '16',
      '--no-report',
      '--threads',
      '2',
    ]);
    assert.equal(await r.done, 0, r.stderr());
  }
  const [a, b] = runs.map((d) => fs.readFileSync(path.join(d, 'weights.bin')));
  assert.ok(a.equals(b), 'the two runs ended on different weights');
  // The recipe has dropout, so its masks (and not only the initial weights) came from the seed.
  const topology = JSON.parse(fs.readFileSync(path.join(runs[0], 'model.json'), 'utf8')).modelTopology;
  const layers: Array<{ class_name: string; config: { rate?: number } }> = topology.config.layers;
  assert.ok(layers.some((l) => l.class_name === 'Dropout' && (l.config.rate ?? 0) > 0));
  for (const d of runs) fs.rmSync(d, { recursive: true, force: true });
});
