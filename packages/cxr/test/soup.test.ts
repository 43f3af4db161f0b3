// `cxr ensemble --soup`: members fine-tuned from one ImageNet start after a linear probe, their weights
// averaged into one model; members that do not share an architecture, or whose average is not a model
// (networks trained from different random starts), are refused.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { register as registerEnsemble } from '../src/cli/ensemble';
import { register as registerTrain } from '../src/cli/train';
import { initEngine } from '../src/engine';
import { loadModel, readMeta } from '../src/models/io';
import { Predictor } from '../src/predict/predictor';
import { EnsembleRefused } from '../src/train/ensemble';
import type { RecipeInput } from '../src/train/recipe';
import { runTraining } from '../src/train/run';
import { buildSoup } from '../src/train/soup';
import { CHEST_XRAY, MOBILENET_025, needsData } from './shared-data';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const skip = needsData(CHEST_XRAY, MOBILENET_025);
let work: string;

async function cli(registerIn: (p: Command) => void, args: string[]): Promise<void> {
  const program = new Command('cxr').exitOverride();
  registerIn(program);
  await program.parseAsync(args, { from: 'user' });
}

const tiny: Partial<RecipeInput> = { limitPerClass: 100, valFraction: 0.3, splitSeed: 3, batchSize: 16, tta: [] };

async function train(name: string, recipeName: string, overrides: Partial<RecipeInput>): Promise<string> {
  const out = path.join(work, name);
  await runTraining({
    data: CHEST_XRAY,
    out,
    recipeName,
    report: false,
    progress: false,
    gate: false,
    log: () => {},
    overrides: { ...tiny, ...overrides },
  });
  return out;
}

let trained: string;
let lpft: string[];
before(async () => {
  if (skip) return;
  await initEngine();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-soup-'));
  // Two seeds of the shipped recipe, probe first, tiny: one command trains them and makes the soup.
  trained = path.join(work, 'trained-soup');
  const members = path.join(work, 'members');
  await cli(registerTrain, [
    'train',
    '--data',
    CHEST_XRAY,
    '--recipe',
    'cxr-shift-ema-period-mobilenet-short',
    '--weights',
    MOBILENET_025,
    '--head-first',
    '1:5e-3',
    '--input-size',
    '96',
    '--epochs',
    '2',
    '--limit-per-class',
    '100',
    '--batch-size',
    '16',
    '--tta',
    'identity',
    '--no-report',
    '--seeds',
    '1',
    '2',
    '--soup',
    '--members-dir',
    members,
    '--out',
    trained,
  ]);
  lpft = fs.readdirSync(members).map((d) => path.join(members, d));
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('cxr train --seeds --soup and cxr ensemble --soup: the mean of the members weights as one model', {
  skip,
}, async () => {
  assert.equal(lpft.length, 2);
  assert.equal(readMeta(trained).ensemble?.method, 'weight-soup');
  // The soup fits its own gate, so no member fits one.
  assert.ok(fs.existsSync(path.join(trained, 'ood.json')));
  for (const d of lpft) assert.ok(!fs.existsSync(path.join(d, 'ood.json')), d);

  const out = path.join(work, 'soup');
  await cli(registerEnsemble, [
    'ensemble',
    '--soup',
    '--members',
    ...lpft,
    '--out',
    out,
    '--name',
    'tiny-soup',
    '--data',
    CHEST_XRAY,
  ]);
  // The same members averaged by either command: the same weights, byte for byte.
  assert.deepEqual(fs.readFileSync(path.join(out, 'weights.bin')), fs.readFileSync(path.join(trained, 'weights.bin')));
  const meta = readMeta(out);
  assert.equal(meta.name, 'tiny-soup');
  assert.deepEqual(meta.members, [], 'a soup keeps one model, no member folders');
  assert.equal(meta.ensemble?.method, 'weight-soup');
  assert.deepEqual(
    meta.ensemble?.members.map((m) => m.from),
    lpft.map((d) => path.resolve(d)),
  );
  assert.ok(!fs.existsSync(path.join(out, 'm1')));
  assert.match(fs.readFileSync(path.join(out, 'MODEL_CARD.md'), 'utf8'), /## Weight soup[\s\S]*2 members' weights/);
  const check = meta.ensemble?.check as { spreadRatio: number; auc: number; worstMemberAuc: number };
  assert.ok(check.spreadRatio >= 0.5 && check.auc >= check.worstMemberAuc - 0.02, JSON.stringify(check));
  for (const f of ['ood.json', 'bn-reference.json', 'predictions/val.json', 'metrics/val.json'])
    assert.ok(fs.existsSync(path.join(out, f)), f);

  // Every weight, batch-norm statistics included, is the mean of the members' (layer by layer).
  const soup = (await loadModel(out)).members[0];
  const ms = await Promise.all(lpft.map(async (d) => (await loadModel(d)).members[0]));
  let compared = 0;
  soup.layers.forEach((layer, i) => {
    layer.getWeights().forEach((w, k) => {
      const got = w.dataSync();
      const a = ms[0].layers[i].getWeights()[k].dataSync();
      const b = ms[1].layers[i].getWeights()[k].dataSync();
      got.forEach((v, j) => assert.ok(Math.abs(v - (a[j] + b[j]) / 2) <= 1e-6 * (1 + Math.abs(v)), `${layer.name}`));
      compared += got.length;
    });
  });
  assert.equal(compared, soup.countParams(), 'every weight was compared');
  // The members differ, so the soup differs from each.
  assert.notDeepEqual(
    Array.from(soup.layers.at(-1)!.getWeights()[0].dataSync()),
    Array.from(ms[0].layers.at(-1)!.getWeights()[0].dataSync()),
  );
  [soup, ...ms].forEach((m) => m.dispose());

  const p = await Predictor.load(out);
  try {
    assert.ok(p.oodGate, p.notes.join('; '));
    const val = JSON.parse(fs.readFileSync(path.join(out, 'predictions', 'val.json'), 'utf8'));
    const r = await p.predict(fs.readFileSync(path.join(CHEST_XRAY, val.files[0])));
    assert.ok(Math.abs(r.probability - val.probs[0]) < 1e-4, `${r.probability} vs ${val.probs[0]}`);
  } finally {
    p.dispose();
  }
});

test('a soup of members built differently, or trained from different random starts, is refused', {
  skip,
}, async () => {
  const scratch = (seed: number, arch: 'reference' | 'cxrnet') =>
    train(`${arch}-s${seed}`, 'cxr', {
      arch,
      seed,
      inputSize: 32,
      epochs: 8,
      lr: 3e-3,
      schedule: 'constant',
      warmupEpochs: 0,
      augment: 'none',
      labelSmoothing: 0,
      balance: 'none',
    });
  const ref1 = await scratch(1, 'reference');
  const ref2 = await scratch(2, 'reference');
  const net = await scratch(1, 'cxrnet');
  await assert.rejects(
    buildSoup({ members: [ref1, net], outDir: path.join(work, 'mixed'), data: CHEST_XRAY }),
    (e: Error) => e instanceof EnsembleRefused && /must share one architecture/.test(e.message),
  );
  await assert.rejects(
    buildSoup({ members: [ref1, ref2], outDir: path.join(work, 'apart'), data: CHEST_XRAY }),
    (e: Error) => e instanceof EnsembleRefused && /not a model like them/.test(e.message),
  );
  assert.ok(!fs.existsSync(path.join(work, 'apart')), 'a refused soup leaves no folder');
});
