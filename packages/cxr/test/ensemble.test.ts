// `cxr ensemble` with two tiny members trained on the same small real subset and split, and
// `cxr adapt` on the ensemble (each member adapted).
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { adaptModel } from '../src/adapt/adapt';
import { register } from '../src/cli/ensemble';
import { decodeFile } from '../src/data/decode';
import { initEngine } from '../src/engine';
import { evaluate } from '../src/eval';
import { runEvaluation } from '../src/cli/evaluate_run';
import { loadModel, readMeta } from '../src/models/io';
import { predictLogits, toInput } from '../src/models/infer';
import { Predictor } from '../src/predict/predictor';
import { EnsembleRefused } from '../src/train/ensemble';
import { runTraining } from '../src/train/run';
import { CHEST_XRAY, haveData, makeSeededModel, tempDir } from './ood-fixtures';
import { PLAIN_RECIPE } from './tiny-films';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const skip = !haveData && 'no shared/data';
let work: string;
const members: string[] = [];

async function cli(args: string[]): Promise<void> {
  const program = new Command('cxr').exitOverride();
  register(program);
  await program.parseAsync(args, { from: 'user' });
}

before(async () => {
  if (!haveData) return;
  await initEngine();
  work = tempDir('ensemble');
  for (const arch of ['reference', 'cxrnet'] as const) {
    const out = path.join(work, arch);
    await runTraining({
      data: CHEST_XRAY,
      out,
      recipeName: 'cxr',
      report: false,
      progress: false,
      log: () => {},
      overrides: { ...PLAIN_RECIPE, arch, inputSize: 32, epochs: 2, limitPerClass: 40 },
    });
    members.push(out);
  }
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('cxr ensemble: one folder averaging the members, calibrated on their shared validation split', {
  skip,
}, async () => {
  const out = path.join(work, 'ens');
  await cli(['ensemble', '--members', ...members, '--out', out, '--name', 'tiny-ens', '--data', CHEST_XRAY]);
  const meta = readMeta(out);
  assert.equal(meta.name, 'tiny-ens');
  assert.deepEqual(meta.members, ['m1', 'm2']);
  assert.deepEqual(
    meta.ensemble!.members.map((m) => m.arch),
    ['reference', 'cxrnet'],
  );
  assert.match(fs.readFileSync(path.join(out, 'MODEL_CARD.md'), 'utf8'), /## Ensemble[\s\S]*\| `m2` \|/);

  // The recorded operating point's figures are those of the ensemble's own validation predictions.
  const val = JSON.parse(fs.readFileSync(path.join(out, 'predictions', 'val.json'), 'utf8')) as {
    files: string[];
    labels: number[];
    probs: number[];
  };
  assert.equal(val.labels.length, (readMeta(members[0]).data.validation as { n: number }).n);
  // Films are named relative to the data root, not by this machine's folders.
  assert.ok(
    val.files.every((f) => /^train\/(NORMAL|PNEUMONIA)\/[^/]+$/.test(f)),
    val.files.slice(0, 3).join(', '),
  );
  const op = meta.operatingPoints.balanced;
  const m = evaluate(val.labels, val.probs, { threshold: op.threshold });
  assert.equal(m.sensitivity, op.sensitivity);
  assert.equal(m.specificity, op.specificity);
  assert.notEqual(meta.temperature, readMeta(members[0]).temperature);

  // A prediction is sigmoid(mean member logit / T), members run on their own.
  const p = await Predictor.load(out);
  try {
    assert.ok(p.oodGate, p.notes.join('; '));
    const film = path.join(CHEST_XRAY, val.files[0]);
    const r = await p.predict(fs.readFileSync(film));
    const x = toInput((await decodeFile(film, 32)).pixels, 1, 32);
    let sum = 0;
    for (const d of members) {
      const l = await loadModel(d);
      sum += predictLogits(l.members, x)[0];
      l.members[0].dispose();
    }
    x.dispose();
    assert.ok(Math.abs(r.logit - sum / 2 / meta.temperature) < 1e-4, `${r.logit} vs ${sum / 2 / meta.temperature}`);
    assert.ok(Math.abs(r.probability - val.probs[0]) < 1e-4);
  } finally {
    p.dispose();
  }
  const e = await runEvaluation({ modelDir: out, data: path.join(CHEST_XRAY, 'val') });
  assert.equal(e.n, 16);

  // Adapting an ensemble adapts every member.
  const adapted = path.join(work, 'ens-adapted');
  const a = await adaptModel({
    modelDir: out,
    imagesDir: path.join(CHEST_XRAY, 'val'),
    outDir: adapted,
    minImages: 10,
  });
  assert.ok(a.adaptation.bnLayers > 0);
  for (const d of ['m1', 'm2']) {
    assert.notDeepEqual(
      fs.readFileSync(path.join(adapted, d, 'weights.bin')),
      fs.readFileSync(path.join(out, d, 'weights.bin')),
      d,
    );
  }
  const q = await Predictor.load(adapted);
  assert.ok(q.oodGate, q.notes.join('; '));
  q.dispose();
});

test('cxr ensemble --float16: half the weight bytes, calibrated and gated on the weights as stored', {
  skip,
}, async () => {
  const full = path.join(work, 'ens32');
  const half = path.join(work, 'ens16');
  await cli(['ensemble', '--members', ...members, '--out', full, '--data', CHEST_XRAY]);
  await cli(['ensemble', '--members', ...members, '--out', half, '--data', CHEST_XRAY, '--float16']);
  const meta = readMeta(half);
  assert.equal(meta.ensemble!.weights, 'float16');
  assert.equal(readMeta(full).ensemble!.weights, undefined);
  for (const d of ['m1', 'm2']) {
    const bytes = (dir: string) => fs.statSync(path.join(dir, d, 'weights.bin')).size;
    assert.ok(Math.abs(bytes(half) - bytes(full) / 2) <= 64, `${d}: ${bytes(half)} vs ${bytes(full)}`);
  }
  assert.match(fs.readFileSync(path.join(half, 'MODEL_CARD.md'), 'utf8'), /half precision \(float16\)/);
  // The half-precision folder loads (TF.js widens the weights), predicts as the recorded validation
  // predictions say, close to the float32 ensemble, and carries its own gate.
  const val = JSON.parse(fs.readFileSync(path.join(half, 'predictions', 'val.json'), 'utf8')) as {
    files: string[];
    probs: number[];
  };
  const full32 = JSON.parse(fs.readFileSync(path.join(full, 'predictions', 'val.json'), 'utf8')) as {
    probs: number[];
  };
  const p = await Predictor.load(half);
  try {
    assert.ok(p.oodGate, p.notes.join('; '));
    for (const i of [0, 1, 2]) {
      const r = await p.predict(fs.readFileSync(path.join(CHEST_XRAY, val.files[i])));
      assert.ok(Math.abs(r.probability - val.probs[i]) < 1e-4, `${r.probability} vs ${val.probs[i]}`);
    }
  } finally {
    p.dispose();
  }
  const gap = Math.max(...val.probs.map((x, i) => Math.abs(x - full32.probs[i])));
  assert.ok(gap < 0.02, `float16 moved a validation probability by ${gap}`);

  // Adapting it keeps what its cxr.json and card say: the adapted members are stored in half precision too.
  const adapted = path.join(work, 'ens16-adapted');
  await adaptModel({ modelDir: half, imagesDir: path.join(CHEST_XRAY, 'val'), outDir: adapted, minImages: 10 });
  assert.equal(readMeta(adapted).ensemble!.weights, 'float16');
  for (const d of ['m1', 'm2']) {
    const weights = (dir: string) => fs.readFileSync(path.join(dir, d, 'weights.bin'));
    assert.equal(weights(adapted).length, weights(half).length, d);
    assert.notDeepEqual(weights(adapted), weights(half), `${d}: adaptation changed no statistic`);
    const manifest = JSON.parse(fs.readFileSync(path.join(adapted, d, 'model.json'), 'utf8')).weightsManifest[0];
    for (const w of manifest.weights) if (w.dtype === 'float32') assert.equal(w.quantization?.dtype, 'float16', w.name);
  }
  const q = await Predictor.load(adapted);
  try {
    assert.ok(q.oodGate, q.notes.join('; '));
    const r = await q.predict(fs.readFileSync(path.join(CHEST_XRAY, val.files[0])));
    assert.ok(r.probability >= 0 && r.probability <= 1);
  } finally {
    q.dispose();
  }
});

test('cxr ensemble refuses members with other inputs or other validation splits', { skip }, async () => {
  const m0 = readMeta(members[0]);
  const other = await makeSeededModel(path.join(work, 'other-size'), { inputSize: 48 });
  fs.writeFileSync(
    path.join(other, 'cxr.json'),
    JSON.stringify({ ...readMeta(other), data: m0.data, recipe: m0.recipe }),
  );
  await assert.rejects(
    cli(['ensemble', '--members', members[0], other, '--out', path.join(work, 'bad1')]),
    (e: unknown) => e instanceof EnsembleRefused && /differ in input/.test(e.message),
  );

  const resplit = path.join(work, 'resplit');
  fs.cpSync(members[1], resplit, { recursive: true });
  const m1 = readMeta(resplit);
  fs.writeFileSync(path.join(resplit, 'cxr.json'), JSON.stringify({ ...m1, data: { ...m1.data, splitSeed: 7 } }));
  await assert.rejects(
    cli(['ensemble', '--members', members[0], resplit, '--out', path.join(work, 'bad2'), '--data', CHEST_XRAY]),
    (e: unknown) => e instanceof EnsembleRefused && /different splits/.test(e.message),
  );
  await assert.rejects(
    cli(['ensemble', '--members', members[0], '--out', path.join(work, 'bad3')]),
    /at least 2 members/,
  );
  // One model counted twice is refused however it is named: a symlink to it, or a copy of its folder.
  const link = path.join(work, 'member-link');
  fs.symlinkSync(path.resolve(members[0]), link);
  await assert.rejects(
    cli(['ensemble', '--members', members[0], link, '--out', path.join(work, 'bad4')]),
    (e: unknown) => e instanceof EnsembleRefused && /the same member is named twice: .*member-link is /.test(e.message),
  );
  const copy = path.join(work, 'member-copy');
  fs.cpSync(members[0], copy, { recursive: true });
  await assert.rejects(
    cli(['ensemble', '--members', members[0], copy, '--out', path.join(work, 'bad5')]),
    (e: unknown) => e instanceof EnsembleRefused && /member-copy is a copy of /.test(e.message),
  );
  await assert.rejects(
    cli(['ensemble', '--members', members[0], path.join(work, 'nowhere'), '--out', path.join(work, 'bad6')]),
    /--members .*nowhere: no such folder/,
  );
  assert.ok(!['bad4', 'bad5', 'bad6'].some((d) => fs.existsSync(path.join(work, d))));

  // A member written before cxr.json had `normalize` (absent = 'none') matches one that says 'none';
  // a member that equalises its input does not.
  const legacy = path.join(work, 'legacy');
  fs.cpSync(members[1], legacy, { recursive: true });
  const ml = readMeta(legacy);
  const { normalize: _dropped, ...prepNoNormalize } = ml.preprocessing;
  fs.writeFileSync(path.join(legacy, 'cxr.json'), JSON.stringify({ ...ml, preprocessing: prepNoNormalize }));
  const withNone = path.join(work, 'with-none');
  fs.cpSync(members[0], withNone, { recursive: true });
  const mn = readMeta(withNone);
  fs.writeFileSync(
    path.join(withNone, 'cxr.json'),
    JSON.stringify({ ...mn, preprocessing: { ...mn.preprocessing, normalize: 'none' } }),
  );
  await cli(['ensemble', '--members', withNone, legacy, '--out', path.join(work, 'legacy-ens'), '--data', CHEST_XRAY]);
  assert.ok(fs.existsSync(path.join(work, 'legacy-ens', 'cxr.json')));
  // A backbone member records the RGB scaling inside its graph (`inModel`); its input is the same.
  const backboneLike = path.join(work, 'backbone-like');
  fs.cpSync(members[1], backboneLike, { recursive: true });
  fs.writeFileSync(
    path.join(backboneLike, 'cxr.json'),
    JSON.stringify({ ...ml, preprocessing: { ...ml.preprocessing, inModel: 'gray replicated to 3 channels' } }),
  );
  const mixed = path.join(work, 'mixed-ens');
  await cli(['ensemble', '--members', members[0], backboneLike, '--out', mixed, '--data', CHEST_XRAY]);
  assert.equal(readMeta(mixed).members.length, 2);
  const eq = path.join(work, 'equalised');
  fs.cpSync(members[1], eq, { recursive: true });
  fs.writeFileSync(
    path.join(eq, 'cxr.json'),
    JSON.stringify({ ...ml, preprocessing: { ...ml.preprocessing, normalize: 'equalize' } }),
  );
  await assert.rejects(
    cli(['ensemble', '--members', withNone, eq, '--out', path.join(work, 'bad4'), '--data', CHEST_XRAY]),
    (e: unknown) => e instanceof EnsembleRefused && /differ in input/.test(e.message),
  );
  assert.ok(!fs.existsSync(path.join(work, 'bad1')) && !fs.existsSync(path.join(work, 'bad2')));
});
