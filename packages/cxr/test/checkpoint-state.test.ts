// The files --resume reads back (a checkpoint's state.json and optimiser slots, the run's data record, a GAN
// checkpoint's state.json and optimiser slots): a truncated, hand-edited or wrong-typed file is refused with an
// error that names the file and says what to do, before any training; a good one reads back with the fields the
// recipes add to it.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine } from '../src/engine';
import { readGanState, restoreGanCheckpoint, saveGanCheckpoint } from '../src/gan/checkpoint';
import { type Nets, trainables } from '../src/gan/step';
import { readRunData, readState, restoreCheckpoint, runDataPath, saveCheckpoint } from '../src/train/checkpoint';
import { makeOptimizer } from '../src/train/optim';
import { ADAM_STATE, adamModel } from './adam-checkpoint';

const GOOD = {
  epoch: 3,
  step: 12,
  bestAuc: 0.91,
  bestEpoch: 2,
  // As JSON writes a schedule's -Infinity.
  schedule: { plateauLr: 0.001, best: null, bad: 0 },
  elapsedSeconds: 41.5,
  // What transfer.ts adds to the loop's state.
  phase: 'fine-tune',
  headEpochs: 2,
};

function checkpointWith(text: string): string {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-ckpt-state-')), 'checkpoints', 'last');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'state.json'), text);
  return dir;
}

const full = JSON.stringify(GOOD, null, 2);

test("a good state.json reads back, the recipes' own fields and a null schedule value included", () => {
  const state = readState(checkpointWith(full));
  assert.deepEqual(state, { ...GOOD, schedule: { plateauLr: 0.001, best: -Infinity, bad: 0 } });
  assert.equal(readState(fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-ckpt-none-'))), null);
});

test('a truncated, wrong-typed or older state.json is refused, naming the file and what to do', () => {
  const cases: [string, string, RegExp][] = [
    ['truncated', full.slice(0, full.length / 2), /is not JSON/],
    ['empty', '', /is not JSON/],
    ['a string for a number', full.replace('"epoch": 3', '"epoch": "3"'), /is not valid \(epoch: .*expected number/],
    ['a negative epoch', full.replace('"epoch": 3', '"epoch": -1'), /is not valid \(epoch: /],
    ['a missing field (an older version)', JSON.stringify({ ...GOOD, elapsedSeconds: undefined }), /elapsedSeconds/],
    ['a string schedule value', full.replace('"bad": 0', '"bad": "0"'), /schedule\.bad/],
    ['not an object', '[1, 2]', /is not valid \(.*expected object/],
    ['an unknown early stop', JSON.stringify({ ...GOOD, stoppedEarly: true }), /stoppedEarly/],
  ];
  for (const [what, text, why] of cases) {
    const dir = checkpointWith(text);
    const file = path.join(dir, 'state.json');
    assert.throws(
      () => readState(dir),
      (e: Error) => {
        assert.ok(e.message.startsWith(`${file} (the loop state of a run checkpoint)`), `${what}: ${e.message}`);
        assert.match(e.message, why, what);
        assert.match(e.message, new RegExp(`delete the folder ${dir} .*--resume, or train into a new --out folder`));
        return true;
      },
    );
  }
});

test('restoring a checkpoint with a bad state.json fails on the state, before any weights are read', async () => {
  await initEngine();
  const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 1 })] });
  const optimizer = makeOptimizer('sgd', 0.1);
  model.compile({ optimizer, loss: 'meanSquaredError' });
  // No model.json in the folder either: the error must be the state's, which says what to do.
  const dir = checkpointWith('{"epoch": 3, "step":');
  await assert.rejects(restoreCheckpoint(dir, model, optimizer), /state\.json \(the loop state .*\) is not JSON/);
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-ckpt-empty-'));
  await assert.rejects(restoreCheckpoint(empty, model, optimizer), /is not a run checkpoint \(no state\.json\)/);
  model.dispose();
});

test("a checkpoint's optimiser slots that are missing, edited or cut short are refused, naming the file", async () => {
  await initEngine();
  const state = ADAM_STATE;
  const saved = await adamModel();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-ckpt-optimizer-'));
  const good = path.join(root, 'good');
  await saveCheckpoint(good, saved.model, saved.optimizer, state);
  const slots = fs.readFileSync(path.join(good, 'optimizer.bin'));
  const r = await adamModel();
  assert.deepEqual(await restoreCheckpoint(good, r.model, r.optimizer), state, 'a good checkpoint restores');
  const cases: [string, (dir: string) => void, RegExp][] = [
    ['missing', (d) => fs.rmSync(path.join(d, 'optimizer.json')), /\/case-0 has no optimizer\.json \(the optimiser /],
    [
      'cut short',
      (d) => fs.writeFileSync(path.join(d, 'optimizer.json'), '[{"name": "m'),
      /optimizer\.json \(.*\) is not JSON/,
    ],
    [
      'a spec without its shape',
      (d) => fs.writeFileSync(path.join(d, 'optimizer.json'), '[{"name": "iter", "dtype": "float32"}]'),
      /optimizer\.json \(the optimiser slots of a run checkpoint\) is not valid \(0\.shape: /,
    ],
    [
      'slots cut short',
      (d) => fs.writeFileSync(path.join(d, 'optimizer.bin'), slots.subarray(0, slots.length - 4)),
      new RegExp(`optimizer\\.bin holds ${slots.length - 4} bytes where optimizer\\.json describes ${slots.length} `),
    ],
  ];
  for (const [i, [what, damage, why]] of cases.entries()) {
    const dir = path.join(root, `case-${i}`);
    fs.cpSync(good, dir, { recursive: true });
    damage(dir);
    const m = await adamModel();
    await assert.rejects(restoreCheckpoint(dir, m.model, m.optimizer), (e: Error) => {
      assert.match(e.message, why, what);
      assert.match(e.message, new RegExp(`delete the folder ${dir} to start the run again`), what);
      return true;
    });
    m.model.dispose();
  }
  saved.model.dispose();
  r.model.dispose();
  fs.rmSync(root, { recursive: true, force: true });
});

test("a bad record of the run's data is refused, naming it and what to do", () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-ckpt-data-'));
  assert.equal(readRunData(out), null);
  fs.mkdirSync(path.dirname(runDataPath(out)), { recursive: true });
  const good = { root: '/data/chest_xray', fingerprint: 'abc', train: 100, validation: 20 };
  fs.writeFileSync(runDataPath(out), JSON.stringify(good));
  assert.deepEqual(readRunData(out), good);
  const remedy = /delete it to resume without checking the data, or train into a new --out folder/;
  for (const [text, why] of [
    ['{"root": "/data', /is not JSON/],
    [JSON.stringify({ ...good, train: 'many' }), /is not valid \(train: /],
    [JSON.stringify({ root: good.root }), /is not valid \(fingerprint: /],
  ] as const) {
    fs.writeFileSync(runDataPath(out), text);
    assert.throws(
      () => readRunData(out),
      (e: Error) => {
        assert.ok(e.message.startsWith(`${runDataPath(out)} (the record of the data this run started on)`), e.message);
        assert.match(e.message, why);
        assert.match(e.message, remedy);
        return true;
      },
    );
  }
});

test("a bad GAN checkpoint's state.json is refused, naming it and what to do", () => {
  const good = checkpointWith(JSON.stringify({ epoch: 2, step: 40, elapsedSeconds: 3.5 }));
  assert.deepEqual(readGanState(good), { epoch: 2, step: 40, elapsedSeconds: 3.5 });
  assert.equal(readGanState(fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-gan-none-'))), null);
  for (const [text, why] of [
    ['{"epoch": 2, "st', /is not JSON/],
    ['{"epoch": 2.5, "step": 40, "elapsedSeconds": 3.5}', /is not valid \(epoch: /],
    ['{"epoch": 2, "elapsedSeconds": 3.5}', /is not valid \(step: /],
  ] as const) {
    const dir = checkpointWith(text);
    assert.throws(
      () => readGanState(dir),
      (e: Error) => {
        assert.ok(e.message.startsWith(`${path.join(dir, 'state.json')} (the state of a GAN checkpoint)`), e.message);
        assert.match(e.message, why);
        assert.match(e.message, new RegExp(`delete the folder ${dir} to train the GAN again from the start`));
        return true;
      },
    );
  }
});

test("a GAN checkpoint's optimiser slots missing, edited or cut short are refused, naming the file", async () => {
  await initEngine();
  const net = () => tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 1 })] });
  const built = (): Nets => ({ g: net(), d: net(), optG: tf.train.adam(0.01), optD: tf.train.adam(0.01) });
  const dispose = (n: Nets) => [n.g, n.d].forEach((m) => m.dispose());
  const saved = built();
  // A step of each optimiser, so that Adam has slots to save.
  for (const [m, opt] of [
    [saved.g, saved.optG],
    [saved.d, saved.optD],
  ] as const)
    opt.minimize(() => tf.sum(m.apply(tf.ones([1, 2])) as tf.Tensor) as tf.Scalar, false, trainables(m));
  const state = { epoch: 1, step: 1, elapsedSeconds: 2 };
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-gan-optimizer-'));
  const good = path.join(root, 'good');
  await saveGanCheckpoint(good, saved, state);
  const slots = fs.readFileSync(path.join(good, 'optimizer-d.bin'));
  const r = built();
  assert.deepEqual(await restoreGanCheckpoint(good, r), state, 'a good checkpoint restores');
  const cases: [string, (dir: string) => void, RegExp][] = [
    [
      'missing',
      (d) => fs.rmSync(path.join(d, 'optimizer-g.json')),
      /\/case-0 has no optimizer-g\.json \(the optimiser /,
    ],
    [
      'a spec without its shape',
      (d) => fs.writeFileSync(path.join(d, 'optimizer-d.json'), '[{"name": "iter", "dtype": "float32"}]'),
      /optimizer-d\.json \(the optimiser slots of a GAN checkpoint\) is not valid \(0\.shape: /,
    ],
    [
      'slots cut short',
      (d) => fs.writeFileSync(path.join(d, 'optimizer-d.bin'), slots.subarray(0, slots.length - 4)),
      new RegExp(
        `optimizer-d\\.bin holds ${slots.length - 4} bytes where optimizer-d\\.json describes ${slots.length} `,
      ),
    ],
  ];
  for (const [i, [what, damage, why]] of cases.entries()) {
    const dir = path.join(root, `case-${i}`);
    fs.cpSync(good, dir, { recursive: true });
    damage(dir);
    const m = built();
    await assert.rejects(restoreGanCheckpoint(dir, m), (e: Error) => {
      assert.match(e.message, why, what);
      assert.match(e.message, new RegExp(`delete the folder ${dir} to train the GAN again from the start`), what);
      return true;
    });
    dispose(m);
  }
  dispose(saved);
  dispose(r);
  fs.rmSync(root, { recursive: true, force: true });
});
