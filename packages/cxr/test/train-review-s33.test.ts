// Review of train/ (session 33): correctness checks of the whole-model trainer's phases.
//
// A headFirst run's whole-model phase counted its early-stopping patience from the best epoch of the head's
// probe: with the best epoch in the probe, the whole model was stopped after a single epoch however long the
// patience, where the transfer trainer's fine-tuning counts patience within its own phase (transfer.ts).
//
// `cxr calibrate` wrote the model's cxr.json in place: a write that failed half way (a kill, a full disk) left
// it cut, and the model folder could no longer be loaded, nor calibrated again. The failure here is a real one:
// the child writes under a file-size limit of 0 (`ulimit -f 0`), as train-recipe-atomic.test.ts does.
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { resolveRecipe } from '../src/train/run';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine } from '../src/engine';
import type { ImageSet } from '../src/data/images';
import { HEAD_LAYER } from '../src/models/backbones';
import { readState } from '../src/train/checkpoint';
import { Recipe } from '../src/train/recipe';
import { train } from '../src/train/trainer';
import { recalibrate } from '../src/train/calibrate';
import { parseMeta } from '../src/models/metadata';
import { CHEST_XRAY, haveData, makeSeededModel, TINY_SEEDED, tempDir } from './ood-fixtures';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');

const SIZE = 32;
const PER = SIZE * SIZE;

function imageSet(n: number, pixel: (i: number, p: number) => number, labels: number[]): ImageSet {
  return {
    size: SIZE,
    pixels: Uint8Array.from({ length: n * PER }, (_, k) => pixel(Math.floor(k / PER), k % PER)),
    labels: Uint8Array.from(labels),
    files: labels.map((_, i) => `f${i}.png`),
    patients: labels.map((_, i) => `p${i}`),
  };
}

test('headFirst: patience counts within the whole-model phase, not from a best epoch of the probe', async () => {
  await initEngine();
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-review-s33-'));
  try {
    const trainSet = imageSet(8, (i, p) => (i * 37 + p * 11) % 256, [0, 1, 0, 1, 0, 1, 0, 1]);
    // Every validation film alike: every epoch's AUC is 0.5, so the first epoch (a head epoch) stays the best.
    const val = imageSet(4, () => 128, [0, 0, 1, 1]);
    const recipe = Recipe.parse({
      epochs: 4,
      batchSize: 4,
      optimizer: 'sgd',
      lr: 0.01,
      schedule: 'constant',
      patience: 2,
      headFirst: { epochs: 3, lr: 0.01 },
    });
    const model = tfl.sequential({
      layers: [
        tfl.layers.flatten({ inputShape: [SIZE, SIZE, 1] }),
        tfl.layers.dense({ units: 2, name: 'hidden' }),
        tfl.layers.dense({ units: 1, activation: 'sigmoid', name: HEAD_LAYER }),
      ],
    });
    const lines: string[] = [];
    const r = await train({
      recipe,
      source: {
        arch: 'tiny',
        size: SIZE,
        defaultName: 'tiny',
        build: async () => model,
        preprocessing: {},
        recipeExtras: {},
      },
      train: trainSet,
      val,
      outDir: out,
      plan: () => ({ indices: [0, 1, 2, 3, 4, 5, 6, 7] }),
      dataInfo: { root: out },
      gate: false,
      log: (l) => lines.push(l),
    });
    // Head epochs 1-3 (best: epoch 1), then the whole model: patience 2 lets it train epochs 4 and 5 before it
    // stops; counted from epoch 1 it stopped after epoch 4, one epoch of the whole model.
    assert.equal(r.epochs, 5, lines.join('\n'));
    assert.equal(readState(path.join(out, 'checkpoints', 'last'))?.stoppedEarly, 'train');
    assert.match(lines.join('\n'), /early stopping: no better validation AUC for 2 epochs/);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('a cxr calibrate whose write of cxr.json fails keeps the old cxr.json whole', {
  skip: !haveData && 'no shared/data',
}, async () => {
  const dir = tempDir('review-s33-calibrate');
  try {
    const model = await makeSeededModel(path.join(dir, 'model'), TINY_SEEDED);
    // Once here: the split's films are then in the cache, so the child's first write is the calibration's own.
    await recalibrate(model, CHEST_XRAY, () => {});
    const file = path.join(model, 'cxr.json');
    const before = fs.readFileSync(file, 'utf8');
    const script = path.join(dir, 'calibrate.js');
    fs.writeFileSync(
      script,
      `const { initEngine } = require(${JSON.stringify(require.resolve('../src/engine'))});
       const { recalibrate } = require(${JSON.stringify(require.resolve('../src/train/calibrate'))});
       const args = [${JSON.stringify(model)}, ${JSON.stringify(CHEST_XRAY)}, () => {}, { scaling: 'platt' }];
       initEngine().then(() => recalibrate(...args))
         .then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); });`,
    );
    const r = spawnSync('bash', ['-c', 'ulimit -f 0 && exec "$0" "$1"', process.execPath, script], {
      encoding: 'utf8',
      env: process.env,
    });
    assert.equal(r.status, 1, `the write should have failed: ${r.stderr}`);
    assert.match(r.stderr, /EFBIG/);
    assert.equal(fs.readFileSync(file, 'utf8'), before, 'cxr.json as it was');
    parseMeta(JSON.parse(before), 'cxr.json');
    assert.deepEqual(
      fs.readdirSync(model).filter((f) => f.startsWith('.')),
      [],
      'no temporary file left',
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("resolveRecipe refuses a name that is only Object's ('toString', '__proto__'), as any unknown one", () => {
  for (const name of ['toString', '__proto__', 'constructor', 'hasOwnProperty']) {
    assert.throws(() => resolveRecipe(name), /unknown recipe/, name);
  }
  assert.equal(resolveRecipe('seed1-baseline').arch, 'deadskull7');
});
