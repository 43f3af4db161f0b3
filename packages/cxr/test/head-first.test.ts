// An end-to-end backbone run with a linear probe first (recipe field headFirst, LP-FT): during the probe
// only the head learns while the backbone keeps its ImageNet weights, then every layer trains; a run
// killed between the two phases resumes to the uninterrupted run's weights.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine } from '../src/engine';
import { backboneSpec, HEAD_LAYER, locateWeights, readBackboneWeights } from '../src/models/backbones';
import { fileLoader, loadModel } from '../src/models/io';
import { readRunLog, spawnCli } from './child-cli';
import { CHEST_XRAY, MOBILENET_025, needsData } from './shared-data';

const skip = needsData(CHEST_XRAY, MOBILENET_025);
const env = { ...process.env, CXR_CACHE: process.env.CXR_CACHE ?? path.join(os.tmpdir(), 'cxr-test-cache') };

test('headFirst: the probe trains the head alone, then every layer trains; a kill between them resumes', {
  skip,
}, async () => {
  await initEngine();
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-lpft-'));
  const args = [
    'train',
    '--data',
    CHEST_XRAY,
    '--out',
    out,
    '--recipe',
    'cxr-shift-ema-period-mobilenet-short',
    '--head-first',
    '1:5e-3',
    '--weights',
    MOBILENET_025,
    '--input-size',
    '96',
    '--epochs',
    '2',
    '--limit-per-class',
    '40',
    '--batch-size',
    '16',
    '--no-report',
    '--no-gate',
    '--threads',
    '2',
  ];
  const ckpt = path.join(out, 'checkpoints', 'last');
  const checkpointState = () => {
    try {
      return JSON.parse(fs.readFileSync(path.join(ckpt, 'state.json'), 'utf8'));
    } catch {
      return null; // none, or killed between the two renames of a later checkpoint
    }
  };
  // Kill -9 as soon as the probe's checkpoint is on disk (polled every 50 ms). A whole-model epoch here takes about
  // a second, so a test process descheduled after it saw the file may kill after the next epoch's checkpoint:
  // what is on disk once the run is dead is read, and the run made again (into an emptied folder) when it is not
  // the probe's.
  let first = spawnCli(args, env);
  let state = null;
  for (let attempt = 1; ; attempt++) {
    for (let i = 0; i < 1200 && !fs.existsSync(path.join(ckpt, 'state.json')); i++)
      await new Promise((r) => setTimeout(r, 50));
    first.child.kill('SIGKILL');
    await first.done;
    state = checkpointState();
    if ((state?.phase === 'head' && state.epoch === 1) || attempt === 5) break;
    fs.rmSync(out, { recursive: true, force: true });
    fs.mkdirSync(out);
    first = spawnCli(args, env);
  }
  assert.ok(state, `no checkpoint:\n${first.stderr()}`);
  assert.equal(state.phase, 'head', `the first checkpoint is not the probe's:\n${first.stderr()}`);
  assert.equal(state.epoch, 1);
  assert.match(first.stderr(), /the head alone for 1 epoch at lr 0\.005, then 2 epochs/);

  // After the probe: the backbone's weights are ImageNet's, bit for bit; its batch-norm statistics are not.
  const probe = await tfl.loadLayersModel(fileLoader(ckpt));
  const imagenet = await readBackboneWeights(locateWeights(backboneSpec('mobilenet_v1_0.25'), MOBILENET_025)!);
  const same = (m: tfl.LayersModel, layer: string, i: number, short: string) => {
    const got = m.getLayer(layer).getWeights()[i].dataSync();
    const want = imagenet.get(layer)!.get(short)!.data;
    return got.length === want.length && got.every((v, j) => v === want[j]);
  };
  for (const [layer, i, short] of [
    ['conv1', 0, 'kernel'],
    ['conv_dw_7', 0, 'depthwise_kernel'],
    ['conv_pw_13', 0, 'kernel'],
    ['conv1_bn', 0, 'gamma'],
    ['conv_pw_13_bn', 1, 'beta'],
  ] as const)
    assert.ok(same(probe, layer, i, short), `${layer} ${short} moved during the probe`);
  assert.ok(!same(probe, 'conv1_bn', 2, 'moving_mean'), 'batch-norm statistics did not follow the films');
  const headKernel = Array.from(probe.getLayer(HEAD_LAYER).getWeights()[0].dataSync());
  probe.dispose();

  const second = spawnCli([...args, '--resume'], env);
  const whole = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-lpft-whole-'));
  const third = spawnCli(
    args.map((a) => (a === out ? whole : a)),
    env,
  );
  assert.equal(await second.done, 0, second.stderr());
  assert.equal(await third.done, 0, third.stderr());
  assert.match(second.stderr(), /resuming after the head's 1 epoch$/m);
  const log = readRunLog(out);
  assert.deepEqual(
    log.map((e) => [e.epoch, e.phase ?? 'whole']),
    [
      [1, 'head'],
      [2, 'whole'],
      [3, 'whole'],
    ],
  );
  const loaded = await loadModel(out);
  const m = loaded.members[0];
  assert.deepEqual(loaded.meta.recipe.headFirst, { epochs: 1, lr: 0.005 });
  assert.equal(loaded.meta.validation?.epochsRun, 3);
  assert.ok(!same(m, 'conv1', 0, 'kernel'), 'the backbone did not train after the probe');
  assert.notDeepEqual(Array.from(m.getLayer(HEAD_LAYER).getWeights()[0].dataSync()), headKernel);
  assert.match(fs.readFileSync(path.join(out, 'MODEL_CARD.md'), 'utf8'), /the head alone trained first/);
  m.dispose();
  // The resumed run starts the whole model's phase as the uninterrupted run did: the same weights.
  const weights = (dir: string) =>
    new Float32Array(new Uint8Array(fs.readFileSync(path.join(dir, 'weights.bin'))).buffer);
  const [a, b] = [weights(out), weights(whole)];
  assert.equal(a.length, b.length);
  const gap = a.reduce((mx, x, i) => Math.max(mx, Math.abs(x - b[i])), 0);
  assert.ok(gap < 1e-4, `resumed and uninterrupted runs differ by up to ${gap}`);
  for (const d of [out, whole]) fs.rmSync(d, { recursive: true, force: true });
});
