// The GAN: `cxr gan train --quick` end to end (grid PNG, exported generator that reacts to its
// label and its noise, loss log, memorisation check), sampling, resume, and generated images
// reaching the classifier's training set only.
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { initEngine } from '../src/engine';
import { generate, loadGenerator } from '../src/gan/generator_io';
import { gridDims } from '../src/gan/grid';
import { ganCounts, SYNTHETIC_PREFIX, withGanImages } from '../src/gan/mix';
import { nearest } from '../src/gan/nearest';
import { GRID_COLS, GRID_ROWS_PER_CLASS } from '../src/gan/train';
import { runSeedExperiments } from '../src/experiments/seed';
import { readMeta } from '../src/models/io';
import { loadTrainVal } from '../src/data/dataset_images';
import { runTraining } from '../src/train/run';

const isSynthetic = (file: string) => file.startsWith(SYNTHETIC_PREFIX);

import { readRunLog } from './child-cli';
import { CHEST_XRAY, needsData } from './shared-data';
const data = CHEST_XRAY;
const skip = needsData(data);
const cli = path.resolve(__dirname, '..', 'src', 'cli', 'main.js');
process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');

function cxr(args: string[]): { status: number | null; stdout: string; stderr: string; seconds: number } {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: process.env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, seconds: (Date.now() - t0) / 1000 };
}

let ganDir = '';

before(async () => {
  if (skip) return;
  await initEngine();
  ganDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-gan-'));
  const r = cxr(['gan', 'train', '--data', data, '--out', ganDir, '--quick']);
  assert.equal(r.status, 0, r.stderr);
  process.stderr.write(`# cxr gan train --quick: ${r.seconds.toFixed(1)} s\n`);
});

test('gan train --quick writes a sample grid per epoch with one row block per class', { skip }, async () => {
  for (const epoch of ['001', '002']) {
    const png = path.join(ganDir, 'samples', `epoch-${epoch}.png`);
    assert.ok(fs.existsSync(png), `${png} missing`);
    const meta = await sharp(png).metadata();
    const want = gridDims(2 * GRID_ROWS_PER_CLASS, GRID_COLS, 64);
    assert.equal(meta.format, 'png');
    assert.deepEqual([meta.width, meta.height], [want.width, want.height]);
  }
  const log = readRunLog(ganDir);
  assert.deepEqual(
    log.filter((e) => e.kind === 'epoch').map((e) => e.epoch),
    [1, 2],
  );
  for (const e of log) assert.ok(Number.isFinite(e.d_loss) && Number.isFinite(e.g_loss), JSON.stringify(e));
  assert.ok(fs.existsSync(path.join(ganDir, 'checkpoints', 'last', 'state.json')));
});

test("the generator's output changes with the class label and with the noise", { skip }, async () => {
  const { model, meta } = await loadGenerator(ganDir);
  assert.equal(meta.size, 64);
  const n = 4,
    per = 64 * 64;
  const normal = generate(model, meta.zDim, Array(n).fill(0), 7);
  const pneumonia = generate(model, meta.zDim, Array(n).fill(1), 7); // same noise, other label
  const otherNoise = generate(model, meta.zDim, Array(n).fill(0), 8);
  const again = generate(model, meta.zDim, Array(n).fill(0), 7);
  const meanAbs = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;
  assert.deepEqual(again, normal, 'the same seed gives the same images');
  assert.ok(meanAbs(normal, pneumonia) > 0.5, `label changes the output by ${meanAbs(normal, pneumonia)}`);
  assert.ok(meanAbs(normal, otherNoise) > 0.5, `noise changes the output by ${meanAbs(normal, otherNoise)}`);
  // Within one batch, different noise vectors give different images.
  assert.ok(meanAbs(normal.subarray(0, per), normal.subarray(per, 2 * per)) > 0.5);
  model.dispose();
});

test('the memorisation check writes pairs.png and numbers next to real-to-real distances', { skip }, async () => {
  const dir = path.join(ganDir, 'memorisation');
  const s = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'));
  assert.equal(s.samples.n, 32);
  assert.ok(s.trainToTrain.n > 0 && s.valToTrain.n > 0);
  for (const k of ['samples', 'trainToTrain', 'valToTrain']) assert.ok(s[k].median > 0 && s[k].median < 255, k);
  assert.match(fs.readFileSync(path.join(dir, 'summary.md'), 'utf8'), /Verdict/);
  const meta = await sharp(path.join(dir, 'pairs.png')).metadata();
  assert.deepEqual([meta.width, meta.height], Object.values(gridDims(8, 8, 64)));
});

test('gan sample writes N PNGs of the asked class', { skip }, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-gan-sample-'));
  const r = cxr([
    'gan',
    'sample',
    '--gan-model',
    ganDir,
    '--n',
    '3',
    '--class',
    'PNEUMONIA',
    '--out',
    out,
    '--size',
    '96',
  ]);
  assert.equal(r.status, 0, r.stderr);
  const files = fs.readdirSync(out).sort();
  assert.deepEqual(files, ['PNEUMONIA-s1-0001.png', 'PNEUMONIA-s1-0002.png', 'PNEUMONIA-s1-0003.png']);
  const meta = await sharp(path.join(out, files[0])).metadata();
  assert.deepEqual([meta.width, meta.height, meta.channels], [96, 96, 1]);
  assert.notEqual(
    cxr(['gan', 'sample', '--gan-model', ganDir, '--n', '1', '--class', 'COVID', '--out', out]).status,
    0,
  );
});

test('gan train --resume continues from the last checkpoint', { skip }, () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-gan-resume-'));
  const args = ['gan', 'train', '--data', data, '--out', out, '--quick', '--check', '0'];
  assert.equal(cxr([...args, '--epochs', '1']).status, 0);
  const r = cxr([...args, '--epochs', '2', '--resume']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /resuming after epoch 1/);
  const epochs = readRunLog(out)
    .filter((e) => e.kind === 'epoch')
    .map((e) => e.epoch);
  assert.deepEqual(epochs, [1, 2]);
  assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'gan.json'), 'utf8')).epochs, 2);
});

test('GAN images are resized to the classifier size and appended to the training set only', { skip }, async () => {
  const { train, val } = await loadTrainVal(data, { size: 48, valFraction: 0.3, seed: 42, limitPerClass: 20 });
  const r = await withGanImages(train, { ganImages: 5, ganModel: ganDir, seed: 42 }, () => {});
  assert.equal(r.train.labels.length, train.labels.length + 10);
  assert.equal(r.train.pixels.length, r.train.labels.length * 48 * 48);
  assert.deepEqual(Array.from(r.train.labels.subarray(train.labels.length)), [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
  assert.equal(r.train.files.filter(isSynthetic).length, 10);
  assert.equal(val.files.filter(isSynthetic).length, 0);
  assert.deepEqual(r.info.synthetic && (r.info.synthetic as { normal: number }).normal, 5);
  await assert.rejects(
    withGanImages(train, { ganImages: 5, seed: 42 }, () => {}),
    /--gan-model/,
  );
  assert.deepEqual(ganCounts('balance', [0, 1, 1, 1]), [2, 0]);
  assert.deepEqual(ganCounts(3, [0, 1]), [3, 3]);
});

test('cxr train --gan-images records the generated images and validates on real images only', { skip }, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-gan-mix-'));
  await runTraining({
    data,
    out,
    report: false,
    progress: false,
    log: () => {},
    overrides: {
      arch: 'reference',
      inputSize: 48,
      epochs: 1,
      // The GAN's split (--quick: 40 films per class, split seed 42, validation fraction 0.15): a GAN trained on
      // another split is refused (gan-refusals.test.ts).
      limitPerClass: 40,
      valFraction: 0.15,
      batchSize: 16,
      augment: 'none',
      schedule: 'constant',
      warmupEpochs: 0,
      balance: 'none',
      tta: [],
      ganImages: 'balance',
      ganModel: ganDir,
    },
  });
  const meta = readMeta(out);
  const d = meta.data as {
    synthetic: { normal: number; pneumonia: number };
    train: { n: number };
    validation: { n: number };
  };
  const { train, val } = await loadTrainVal(data, { size: 48, valFraction: 0.15, seed: 42, limitPerClass: 40 });
  const [n0, n1] = ganCounts('balance', train.labels);
  assert.deepEqual([d.synthetic.normal, d.synthetic.pneumonia], [n0, n1]);
  assert.equal(d.train.n, train.labels.length + n0 + n1);
  assert.equal(d.validation.n, val.labels.length);
  const preds = JSON.parse(fs.readFileSync(path.join(out, 'predictions', 'val.json'), 'utf8'));
  assert.equal(preds.files.filter(isSynthetic).length, 0);
});

test('experiments seed --gan-model: the GAN row gets generated images, its resampling counterpart none', {
  skip,
}, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-exp-gan-'));
  const { summaries } = await runSeedExperiments({
    data,
    out,
    quick: true,
    ganModel: ganDir,
    only: ['gan-vs-oversample', 'cxr-oversample'],
    log: () => {},
  });
  assert.equal(summaries.length, 2);
  const gan = readMeta(path.join(out, 'gan-vs-oversample'));
  const over = readMeta(path.join(out, 'cxr-oversample'));
  const synthetic = (m: typeof gan) => (m.data as { synthetic?: { perClass: unknown; generator: string } }).synthetic;
  // The quick subset is already balanced, so 'balance' adds no image here; the row still draws on the GAN.
  assert.deepEqual(
    [synthetic(gan)?.perClass, synthetic(gan)?.generator],
    ['balance', ganDir],
    'the GAN row balances with the GAN',
  );
  assert.equal(synthetic(over), undefined, 'no generated images in the oversampling row');
  assert.equal((over.recipe as { balance: string }).balance, 'oversample');
  assert.equal((gan.recipe as { balance: string }).balance, 'none');
});

test('nearest neighbours match brute force and honour exclusions', () => {
  const dim = 16,
    nq = 5,
    nr = 37;
  const q = Uint8Array.from({ length: nq * dim }, (_, i) => (i * 37) % 251);
  const r = Uint8Array.from({ length: nr * dim }, (_, i) => (i * 91 + 7) % 253);
  r.set(q.subarray(dim, 2 * dim), 20 * dim); // query 1 has an exact copy at 20
  const skip = (i: number, j: number) => j === 3 * i;
  const got = nearest(q, nq, r, nr, dim, skip, 8);
  for (let i = 0; i < nq; i++) {
    let best = Infinity,
      arg = -1;
    for (let j = 0; j < nr; j++) {
      if (skip(i, j)) continue;
      let s = 0;
      for (let k = 0; k < dim; k++) s += (q[i * dim + k] - r[j * dim + k]) ** 2;
      if (s < best) {
        best = s;
        arg = j;
      }
    }
    assert.equal(got.index[i], arg);
    assert.ok(Math.abs(got.distance[i] - Math.sqrt(best / dim)) < 1e-2);
  }
  assert.equal(got.index[1], 20);
  assert.ok(got.distance[1] < 1e-2);
  assert.equal(tf.memory().numTensors >= 0, true);
});
