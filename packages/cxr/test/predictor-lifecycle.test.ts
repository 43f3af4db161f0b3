// A Predictor's life as a program sees it: a model folder that cannot be loaded is a ModelLoadError whose code
// says why, and dispose() never frees the model under a prediction that is still running.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { PredictorDisposedError } from '../src/predict/errors';
import { Predictor } from '../src/predict/predictor';
import { ModelLoadError } from '../src/predict/predictor_load';
import { gradientFilm, makeTinyModel, tempDir } from './serve-fixtures';

let root = '';
let modelDir = '';

before(async () => {
  root = tempDir('predictor-lifecycle');
  modelDir = await makeTinyModel(path.join(root, 'model'));
});

after(() => fs.rmSync(root, { recursive: true, force: true }));

/** A copy of the tiny model folder with `change` applied to it. */
function damaged(name: string, change: (dir: string) => void): string {
  const dir = path.join(root, name);
  fs.cpSync(modelDir, dir, { recursive: true });
  change(dir);
  return dir;
}

test('a folder that cannot be loaded is a ModelLoadError with a code, its message kept', async () => {
  const file = path.join(root, 'a-file');
  fs.writeFileSync(file, 'not a model');
  const empty = path.join(root, 'empty');
  fs.mkdirSync(empty);
  const cases: [string, string, RegExp][] = [
    [path.join(root, 'missing'), 'NOT_FOUND', /: no such folder$/],
    [file, 'NOT_A_MODEL', /is a file, not a folder/],
    [empty, 'NOT_A_MODEL', /no cxr\.json \(not a cxr model folder\)/],
    [
      damaged('badjson', (d) => fs.writeFileSync(path.join(d, 'cxr.json'), '{"name": ')),
      'BAD_CONFIG',
      /not valid JSON/,
    ],
    [
      damaged('badmeta', (d) => fs.writeFileSync(path.join(d, 'cxr.json'), '{}')),
      'BAD_CONFIG',
      /not a valid cxr\.json/,
    ],
    [damaged('noweights', (d) => fs.rmSync(path.join(d, 'weights.bin'))), 'BAD_WEIGHTS', /weights\.bin/],
    [
      damaged('truncw', (d) => {
        const w = path.join(d, 'weights.bin');
        fs.truncateSync(w, fs.statSync(w).size - 100);
      }),
      'BAD_WEIGHTS',
      /truncated/,
    ],
    [damaged('nomodeljson', (d) => fs.rmSync(path.join(d, 'model.json'))), 'BAD_WEIGHTS', /model\.json/],
  ];
  for (const [dir, code, message] of cases) {
    await assert.rejects(Predictor.load(dir, { warmUp: false }), (e: Error) => {
      assert.ok(e instanceof ModelLoadError, `${path.basename(dir)}: ${e.constructor.name}: ${e.message}`);
      assert.equal(e.code, code, `${path.basename(dir)}: ${e.message}`);
      assert.equal(e.dir, dir);
      assert.match(e.message, message);
      assert.equal(e.message, (e.cause as Error).message, 'the message is the one models/ raised');
      return true;
    });
  }
});

test('a load the system refuses (no file descriptor left) is SYSTEM, not damaged weights', () => {
  // In its own process, with few descriptors, all taken once the engine is up: the folder itself is sound.
  const script = `
    const fs = require('node:fs');
    const { Predictor } = require(${JSON.stringify(require.resolve('../src/predict/predictor'))});
    (async () => {
      (await Predictor.load(process.argv[1], { warmUp: false })).dispose();
      const held = [];
      try { for (;;) held.push(fs.openSync('/dev/null', 'r')); } catch (e) { if (e.code !== 'EMFILE') throw e; }
      try { await Predictor.load(process.argv[1], { warmUp: false }); console.log('loaded'); }
      catch (e) { held.forEach((fd) => fs.closeSync(fd)); console.log(JSON.stringify([e.name, e.code, e.message])); }
    })();`;
  const out = spawnSync('sh', ['-c', 'ulimit -n 256 && exec "$0" -e "$1" "$2"', process.execPath, script, modelDir], {
    encoding: 'utf8',
  });
  assert.equal(out.status, 0, out.stderr);
  const [name, code, message] = JSON.parse(out.stdout.trim().split('\n').pop()!);
  assert.equal(name, 'ModelLoadError', out.stdout);
  assert.equal(code, 'SYSTEM', message);
  assert.match(message, /EMFILE/);
});

test('a weight file this user may not read is UNREADABLE, not damaged weights (as another user)', {
  // Root reads any file: the load runs as `nobody`, which needs root to start and a checkout it can read.
  skip: (() => {
    if (process.getuid?.() !== 0) return 'needs root (to run the load as nobody)';
    const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(require.resolve('../src/paths'))})`], {
      uid: 65534,
      gid: 65534,
    });
    return probe.status === 0 ? false : 'user nobody cannot read this checkout';
  })(),
}, () => {
  const dir = damaged('noread', (d) => fs.chmodSync(path.join(d, 'weights.bin'), 0o600));
  fs.chmodSync(root, 0o755);
  const script = `require(${JSON.stringify(require.resolve('../src/predict/predictor'))})
    .Predictor.load(process.argv[1], { warmUp: false })
    .then(() => console.log('loaded'), (e) => console.log(JSON.stringify([e.name, e.code, e.message])));`;
  const out = spawnSync(process.execPath, ['-e', script, dir], { uid: 65534, gid: 65534, encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  const [name, code, message] = JSON.parse(out.stdout.trim().split('\n').pop()!);
  assert.equal(name, 'ModelLoadError', out.stdout);
  assert.equal(code, 'UNREADABLE', message);
  assert.match(message, /EACCES|permission/i);
  // The weight file's refusal, not cxr.json's (a copy that kept a private cxr.json would pass the checks above).
  assert.match(message, /weights\.bin/);
});

test('dispose() while a prediction runs: it finishes, later calls are refused, nothing leaks', async () => {
  const film = await gradientFilm();
  const before = tf.memory().numTensors;
  const p = await Predictor.load(modelDir, { warmUp: false });
  assert.ok(tf.memory().numTensors > before, 'the model holds tensors');
  const running = [p.predict(film, { heatmap: true }), p.screen(film), p.predict(film)] as const;
  p.dispose(); // before any of them has run the network: each awaits its decode first
  p.dispose(); // twice is once
  const [a, screened, b] = await Promise.all(running);
  assert.ok(Number.isFinite(a.probability) && Number.isFinite(b.probability));
  assert.equal(a.probability, b.probability);
  assert.equal(screened.pixels.length, p.model.meta.inputSize ** 2);
  assert.equal(tf.memory().numTensors, before, "the model's tensors are freed once the last one ended");
  for (const late of [() => p.predict(film), () => p.screen(film), () => p.warmUp(film)]) {
    await assert.rejects(late(), (e: Error) => {
      assert.ok(e instanceof PredictorDisposedError, e.message);
      assert.equal(e.code, 'PREDICTOR_DISPOSED');
      assert.match(e.message, /used after dispose\(\)/);
      return true;
    });
  }
});

test('dispose() with nothing running frees the model at once', async () => {
  const before = tf.memory().numTensors;
  const p = await Predictor.load(modelDir, { warmUp: false });
  await p.predict(await gradientFilm());
  p.dispose();
  assert.equal(tf.memory().numTensors, before);
});
