// `cxr train --seeds A B`: members trained per seed on one split, combined into one ensemble folder, the
// gate fitted once; a rerun keeps finished members; the mistakes refused before any training.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { register } from '../src/cli/train';
import { initEngine } from '../src/engine';
import { readMeta } from '../src/models/io';
import { loadOod } from '../src/explain/ood';
import { loadBnReference } from '../src/models/bn_reference';
import { Predictor } from '../src/predict/predictor';
import { CHEST_XRAY, haveData, tempDir } from './ood-fixtures';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const skip = !haveData && 'no shared/data';
let work: string;

// A tiny recipe: cxrnet at 32 px, one epoch on 30 films per class.
const TINY = [
  '--recipe',
  'cxr',
  '--input-size',
  '32',
  '--epochs',
  '1',
  '--limit-per-class',
  '30',
  '--batch-size',
  '16',
  '--augment',
  'none',
  '--tta',
  'identity',
  '--no-report',
];

async function cli(args: string[]): Promise<void> {
  const program = new Command('cxr').exitOverride();
  register(program);
  await program.parseAsync(['train', '--data', CHEST_XRAY, ...args], { from: 'user' });
}

before(async () => {
  if (!haveData) return;
  await initEngine();
  work = tempDir('seed-ensemble');
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('cxr train --seeds: one member per seed on one split, one gate, one ensemble folder that predicts', {
  skip,
}, async () => {
  const out = path.join(work, 'ens');
  await cli([...TINY, '--out', out, '--seeds', '3', '5', '--name', 'tiny']);
  const membersDir = `${out}-members`;
  const [m3, m5] = ['cxr-s3', 'cxr-s5'].map((d) => path.join(membersDir, d));
  const metas = [m3, m5].map((d) => readMeta(d));
  assert.deepEqual(
    metas.map((m) => m.recipe.seed),
    [3, 5],
  );
  // Both validate on the split of the first seed, so the ensemble is calibrated on films neither trained on.
  assert.deepEqual(
    metas.map((m) => m.recipe.splitSeed),
    [3, 3],
  );
  assert.ok(fs.existsSync(path.join(m3, 'ood.json')), 'the first member fits the gate');
  assert.ok(!fs.existsSync(path.join(m5, 'ood.json')), 'later members skip it');
  const meta = readMeta(out);
  assert.equal(meta.name, 'tiny');
  assert.equal(meta.members.length, 2);
  // The ensemble's gate is the first member's, copied byte for byte.
  assert.equal(fs.readFileSync(path.join(out, 'ood.json'), 'utf8'), fs.readFileSync(path.join(m3, 'ood.json'), 'utf8'));
  assert.ok(loadOod(out, path.join(out, meta.members[0])).model, 'the gate fits the copied member');
  // Every run and the ensemble carry the batch-norm reference `cxr adapt` adapts against, for their weights.
  for (const [dir, members] of [
    [m3, [m3]],
    [out, meta.members.map((d) => path.join(out, d))],
  ] as const) {
    const ref = loadBnReference(dir, members);
    assert.ok(ref.members, `${dir}: ${ref.members === null ? ref.problem : ''}`);
    assert.equal(ref.members.length, members.length);
    assert.ok(ref.members[0].size > 0);
    assert.equal(ref.ref.films.count, metas[0].data.validation?.n);
  }
  const p = await Predictor.load(out);
  try {
    const film = path.join(CHEST_XRAY, 'val', 'NORMAL', fs.readdirSync(path.join(CHEST_XRAY, 'val', 'NORMAL'))[0]);
    const r = await p.predict(fs.readFileSync(film));
    assert.ok(r.probability >= 0 && r.probability <= 1);
  } finally {
    p.dispose();
  }

  // A rerun into a new folder with the same members folder keeps both members instead of training them again.
  const before = fs.statSync(path.join(m5, 'weights.bin')).mtimeMs;
  const again = path.join(work, 'ens-again');
  await cli([...TINY, '--out', again, '--seeds', '3', '5', '--name', 'tiny', '--members-dir', membersDir]);
  assert.equal(fs.statSync(path.join(m5, 'weights.bin')).mtimeMs, before);
  assert.equal(readMeta(again).members.length, 2);
  // --no-gate holds for the combined model too (it used to fit one on the first member anyway).
  const ungated = path.join(work, 'ens-no-gate');
  await cli([...TINY, '--out', ungated, '--seeds', '3', '5', '--members-dir', membersDir, '--no-gate']);
  assert.ok(!fs.existsSync(path.join(ungated, 'ood.json')), 'no gate in the ensemble');
  const q = await Predictor.load(ungated);
  try {
    const film = path.join(CHEST_XRAY, 'val', 'NORMAL', fs.readdirSync(path.join(CHEST_XRAY, 'val', 'NORMAL'))[0]);
    assert.ok((await q.predict(fs.readFileSync(film))).probability >= 0);
  } finally {
    q.dispose();
  }
  // The same members folder with other options: those members are not this recipe's, so nothing is reused.
  await assert.rejects(
    cli([
      ...TINY,
      '--epochs',
      '2',
      '--out',
      path.join(work, 'other'),
      '--seeds',
      '3',
      '5',
      '--members-dir',
      membersDir,
    ]),
    /trained with another recipe/,
  );
});

test('cxr train --seeds refuses one seed, a repeated seed, --seed beside it and a used --out, before training', {
  skip,
}, async () => {
  const used = path.join(work, 'used');
  fs.mkdirSync(used, { recursive: true });
  fs.writeFileSync(path.join(used, 'x'), '');
  const cases: [string[], RegExp][] = [
    [['--seeds', '3'], /at least 2 seeds/],
    [['--seeds', '3', '3'], /names a seed twice/],
    [['--seeds', '3', '5', '--seed', '1'], /--seed and --seeds together/],
    [['--seeds', '3', 'x'], /argument 'x' is invalid\. a whole number >= 0/],
    [['--soup'], /--soup goes with --seeds/],
  ];
  for (const [args, message] of cases) {
    const out = path.join(work, `refused-${args.join('-')}`);
    await assert.rejects(cli([...TINY, '--out', out, ...args]), message);
    assert.ok(!fs.existsSync(`${out}-members`), `${args.join(' ')}: nothing trained`);
  }
  await assert.rejects(cli([...TINY, '--out', used, '--seeds', '3', '5']), /already exists and is not empty/);
  await assert.rejects(cli([...TINY, '--out', path.join(work, 'single'), '--members-dir', work]), /goes with --seeds/);
});
