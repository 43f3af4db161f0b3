// Transfer learning on a small real subset: the frozen MobileNet v1 0.25 + head learns (AUC well
// above chance), the result is a normal cxr model folder that loads and predicts like any other,
// features are cached, fine-tuning moves only the unfrozen blocks (batch norm untouched), and an
// end-to-end run trains every layer, batch norm included.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../src/engine';
import { readBackboneWeights, backboneSpec, locateWeights } from '../src/models/backbones';
import { loadModel } from '../src/models/io';
import { predictAllLogits, sigmoid } from '../src/models/infer';
import { loadTrainVal } from '../src/data/dataset_images';
import { runTraining } from '../src/train/run';
import { Predictor } from '../src/predict/predictor';

import { readRunLog, spawnCli } from './child-cli';
import { CHEST_XRAY, MOBILENET_025, needsData } from './shared-data';
import type { TtaView } from '../src/models/tta_views';
const data = CHEST_XRAY;
const shared = MOBILENET_025;
const skip = needsData(CHEST_XRAY, MOBILENET_025);
const imageCache = process.env.CXR_CACHE ?? path.join(os.tmpdir(), 'cxr-test-cache');

const QUICK = { inputSize: 128, limitPerClass: 100, valFraction: 0.3, batchSize: 16, tta: [] as TtaView[] };

test("seed6-transfer on a small real subset: 'auto' falls back to MobileNet, AUC well above 0.5, a cxr model", {
  skip,
}, async () => {
  await initEngine();
  // Only the shared MobileNet v1 0.25 is present: no InceptionV3 anywhere.
  process.env.CXR_CACHE = imageCache;
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-tl-'));
  const lines: string[] = [];
  const r = await runTraining({
    data,
    out,
    recipeName: 'seed6-transfer',
    report: false,
    progress: false,
    log: (l) => lines.push(l),
    overrides: { ...QUICK, epochs: 6 },
  });
  const log = readRunLog(out);
  assert.equal(log.length, 6);
  const best = Math.max(...log.map((e) => e.val_auc));
  assert.ok(best > 0.75, `best validation AUC ${best}\n${lines.join('\n')}`);
  assert.equal(r.meta.arch, 'transfer/mobilenet_v1_0.25');
  assert.equal(r.meta.recipe.backbone, 'mobilenet_v1_0.25');
  assert.equal(r.meta.recipe.backboneRequested, 'auto');
  assert.match(String(r.meta.recipe.backboneFallback), /InceptionV3 weights not found/);
  assert.ok(
    lines.some((l) => /fallback: InceptionV3 weights not found/.test(l)),
    lines.join('\n'),
  );

  // Loads and predicts through the same path as evaluate/predict/serve, gray [S,S,1] input.
  const loaded = await loadModel(out);
  const m = loaded.members[0];
  assert.deepEqual(m.inputs[0].shape, [null, 128, 128, 1]);
  assert.deepEqual(m.getLayer('last_conv').outputShape, [null, 4, 4, 256]);
  const { val } = await loadTrainVal(data, {
    size: 128,
    valFraction: QUICK.valFraction,
    seed: 42,
    limitPerClass: QUICK.limitPerClass,
  });
  const logits = await predictAllLogits(loaded.members, val.pixels, val.labels.length, 128);
  const saved = JSON.parse(fs.readFileSync(path.join(out, 'predictions', 'val.json'), 'utf8')) as { probs: number[] };
  const T = loaded.meta.temperature;
  const maxDiff = Math.max(...Array.from(logits, (z, i) => Math.abs(sigmoid(z / T) - saved.probs[i])));
  assert.ok(maxDiff < 1e-5, `reloaded model disagrees with the run's own validation predictions by ${maxDiff}`);
  m.dispose();
  // A head-first run fits the not-a-chest-X-ray gate as every run does, and the Predictor uses it.
  assert.ok(fs.existsSync(path.join(out, 'ood.json')), 'no not-a-chest-X-ray gate');
  const p = await Predictor.load(out);
  try {
    const film = path.join(data, 'val', 'NORMAL', fs.readdirSync(path.join(data, 'val', 'NORMAL'))[0]);
    const r = await p.predict(fs.readFileSync(film));
    assert.ok(r.ood, "the prediction carries the gate's score");
  } finally {
    p.dispose();
  }

  // The same data and backbone again: features come from the cache.
  const again: string[] = [];
  await runTraining({
    data,
    out: fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-tl-')),
    recipeName: 'seed6-transfer',
    report: false,
    progress: false,
    log: (l) => again.push(l),
    overrides: { ...QUICK, epochs: 1 },
  });
  assert.ok(
    again.some((l) => /^train features: .*\(cached\)/.test(l)),
    again.join('\n'),
  );
});

test('augmentation + oversampling + fine-tuning: only the top blocks change, BN and lower ones keep ImageNet values', {
  skip,
}, async () => {
  await initEngine();
  process.env.CXR_CACHE = imageCache;
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-tlft-'));
  const lines: string[] = [];
  const r = await runTraining({
    data,
    out,
    recipeName: 'seed8-transfer-augment',
    report: false,
    progress: false,
    log: (l) => lines.push(l),
    overrides: {
      ...QUICK,
      inputSize: 96,
      limitPerClass: 40,
      epochs: 1,
      balance: 'oversample',
      backbone: 'mobilenet_v1_0.25',
      weights: shared,
      fineTune: { blocks: 2, epochs: 1, lr: 1e-3 },
    },
  });
  const log = readRunLog(out);
  assert.deepEqual(
    log.map((e) => [e.epoch, e.phase]),
    [
      [1, 'head'],
      [2, 'fine-tune'],
    ],
  );
  assert.equal(r.meta.recipe.backboneFallback, null);
  assert.ok(
    lines.some((l) => /features per batch/.test(l)),
    lines.join('\n'),
  );

  const loaded = await loadModel(out);
  const m = loaded.members[0];
  const imagenet = await readBackboneWeights(locateWeights(backboneSpec('mobilenet_v1_0.25'), shared)!);
  const same = (layer: string, weight: number, short: string) => {
    const got = m.getLayer(layer).getWeights()[weight].dataSync();
    const want = imagenet.get(layer)!.get(short)!.data;
    return got.length === want.length && got.every((v, i) => v === want[i]);
  };
  if (r.meta.validation?.bestPhase === 'fine-tune') {
    assert.ok(!same('conv_pw_13', 0, 'kernel'), 'the top block did not train');
    assert.ok(!same('conv_dw_12', 0, 'depthwise_kernel'), 'the second block from the top did not train');
  }
  assert.ok(same('conv_pw_11', 0, 'kernel'), 'a frozen block changed');
  assert.ok(same('conv1', 0, 'kernel'), 'the first conv changed');
  for (const [i, short] of ['gamma', 'beta', 'moving_mean', 'moving_variance'].entries()) {
    assert.ok(same('conv_pw_13_bn', i, short), `batch norm ${short} changed`);
  }
  assert.deepEqual(Array.from(m.getLayer('to_rgb').getWeights()[0].dataSync()), [2, 2, 2]);
  assert.deepEqual(Array.from(m.getLayer('to_rgb').getWeights()[1].dataSync()), [-1, -1, -1]);
  m.dispose();
  tf.disposeVariables();
});

test('a transfer run killed during fine-tuning resumes to the same epochs and a loadable model', { skip }, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-tlresume-'));
  const args = [
    'train',
    '--data',
    data,
    '--out',
    out,
    '--backbone',
    'mobilenet_v1_0.25',
    '--weights',
    shared,
    '--input-size',
    '96',
    '--epochs',
    '2',
    '--fine-tune',
    '1:3:1e-4',
    '--limit-per-class',
    '40',
    '--batch-size',
    '16',
    '--augment',
    'none',
    '--no-report',
  ];
  const env = { ...process.env, CXR_CACHE: imageCache };
  const first = spawnCli(args, env);
  const state = path.join(out, 'checkpoints', 'last', 'state.json');
  const inFineTune = () => fs.existsSync(state) && JSON.parse(fs.readFileSync(state, 'utf8')).phase === 'fine-tune';
  for (let i = 0; i < 1200 && !inFineTune() && first.child.exitCode === null; i++)
    await new Promise((r) => setTimeout(r, 100));
  first.child.kill('SIGKILL');
  await first.done;
  assert.ok(inFineTune(), `no fine-tuning checkpoint before the kill:\n${first.stderr()}`);
  assert.ok(!fs.existsSync(path.join(out, 'cxr.json')), 'the run finished before it could be killed');

  const second = spawnCli([...args, '--resume'], env);
  assert.equal(await second.done, 0, second.stderr());
  assert.match(second.stderr(), /resuming after epoch [345] \(fine-tune/);
  const log = readRunLog(out);
  assert.deepEqual(
    log.map((e) => [e.epoch, e.phase]),
    [
      [1, 'head'],
      [2, 'head'],
      [3, 'fine-tune'],
      [4, 'fine-tune'],
      [5, 'fine-tune'],
    ],
  );
  const loaded = await loadModel(out);
  assert.equal(loaded.meta.validation?.epochsRun, 5);
  loaded.members[0].dispose();
});

test('end to end: every backbone layer and batch norm train from ImageNet, with EMA and period balance, and a gate', {
  skip,
}, async () => {
  await initEngine();
  process.env.CXR_CACHE = imageCache;
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-e2e-'));
  const lines: string[] = [];
  const r = await runTraining({
    data,
    out,
    recipeName: 'cxr-shift-ema-period-mobilenet',
    report: false,
    progress: false,
    log: (l) => lines.push(l),
    overrides: { ...QUICK, inputSize: 96, limitPerClass: 40, epochs: 2, weights: shared },
  });
  assert.equal(r.meta.arch, 'transfer/mobilenet_v1_0.25');
  assert.equal(r.meta.recipe.endToEnd, true);
  assert.equal(r.meta.recipe.backbone, 'mobilenet_v1_0.25');
  assert.deepEqual(r.meta.recipe.weightAverage, { method: 'ema', decay: 0.998 });
  assert.match(String(r.meta.preprocessing.inModel), /x\*2-1/);
  assert.ok(
    lines.some((l) => /^period balance: /.test(l)),
    lines.join('\n'),
  );
  assert.ok(fs.existsSync(path.join(out, 'ood.json')), 'no not-a-chest-X-ray gate');
  const log = readRunLog(out);
  assert.equal(log.length, 2);

  const loaded = await loadModel(out);
  const m = loaded.members[0];
  const imagenet = await readBackboneWeights(locateWeights(backboneSpec('mobilenet_v1_0.25'), shared)!);
  const changed = (layer: string, weight: number, short: string) => {
    const got = m.getLayer(layer).getWeights()[weight].dataSync();
    const want = imagenet.get(layer)!.get(short)!.data;
    return got.length === want.length && got.some((v, i) => v !== want[i]);
  };
  assert.ok(changed('conv1', 0, 'kernel'), 'the first conv did not train');
  assert.ok(changed('conv_dw_1', 0, 'depthwise_kernel'), 'the first block did not train');
  assert.ok(changed('conv_pw_13', 0, 'kernel'), 'the top block did not train');
  for (const [i, short] of ['gamma', 'beta', 'moving_mean', 'moving_variance'].entries())
    assert.ok(changed('conv1_bn', i, short), `batch norm ${short} did not train`);
  assert.deepEqual(Array.from(m.getLayer('to_rgb').getWeights()[0].dataSync()), [2, 2, 2]);
  assert.deepEqual(Array.from(m.getLayer('to_rgb').getWeights()[1].dataSync()), [-1, -1, -1]);
  m.dispose();
  tf.disposeVariables();
});

test('end to end needs a backbone and excludes fine-tuning; head-first runs refuse whole-model options', async () => {
  const run = (overrides: Parameters<typeof runTraining>[0]['overrides']) =>
    runTraining({
      data: '/nonexistent',
      out: fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-e2e-bad-')),
      recipeName: 'cxr-shift',
      report: false,
      overrides,
    });
  await assert.rejects(run({ endToEnd: true }), /endToEnd needs a backbone/);
  await assert.rejects(
    run({ endToEnd: true, backbone: 'mobilenet_v1_0.25', fineTune: { blocks: 2, epochs: 1, lr: 1e-4 } }),
    /drop fineTune/,
  );
  await assert.rejects(
    run({ backbone: 'mobilenet_v1_0.25', weightAverage: { method: 'ema', decay: 0.99 } }),
    /need a whole-model run/,
  );
});
