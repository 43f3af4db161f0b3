// What `cxr gan train` refuses before it writes anything (a used --out: a trained or unfinished GAN, a
// classifier's run folder; --resume with nothing to resume or with options that differ from the saved
// config), `cxr train` refusing a GAN folder as its --out, and `cxr train --gan-model` refusing a GAN that
// trained on another patient split or other films than the run validates on.
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initEngine } from '../src/engine';
import { QUICK } from '../src/gan/config';
import { type GanTrainOptions, trainGan } from '../src/gan/train';
import { runTraining } from '../src/train/run';
import type { RecipeInput } from '../src/train/recipe';
import { CHEST_XRAY, needsData } from './shared-data';

const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');
process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const skip = needsData();
const GAN = ['--quick', '--epochs', '1', '--check', '0', '--threads', '1'];
/** `cxr gan train --data CHEST_XRAY --out OUT --quick --epochs 1 --check 0`, in this process. */
const ganTrain = (out: string, o: Partial<GanTrainOptions> = {}) =>
  trainGan({
    data: CHEST_XRAY,
    out,
    config: { ...QUICK, epochs: 1 },
    checkPerClass: 0,
    progress: false,
    log: () => {},
    ...o,
  });

function cxr(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: process.env });
  return { code: r.status, stderr: r.stderr };
}

/** Every file under dir with its bytes, to show that a refused command changed nothing. */
function snapshot(dir: string): Record<string, string> {
  const files = fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  return Object.fromEntries(
    files.map((e) => {
      const p = path.join(e.parentPath, e.name);
      return [path.relative(dir, p), fs.readFileSync(p).toString('base64')];
    }),
  );
}

/** A tiny classifier run, on the GAN's --quick split (40 films per class, split seed 42) unless overridden. */
const TINY: Partial<RecipeInput> = {
  arch: 'reference',
  inputSize: 32,
  epochs: 1,
  limitPerClass: 40,
  batchSize: 16,
  tta: [],
};
const quiet = { report: false, progress: false, gate: false, log: () => {} };

let tmp = '';
let ganDir = '';
let clsDir = '';

before(async () => {
  if (skip) return;
  await initEngine(1);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-gan-refusals-'));
  ganDir = path.join(tmp, 'gan');
  await ganTrain(ganDir);
  clsDir = path.join(tmp, 'cls');
  await runTraining({ data: CHEST_XRAY, out: clsDir, overrides: { ...TINY, limitPerClass: 20 }, ...quiet });
});

test('gan train refuses a folder that holds a trained GAN or a classifier run, and changes nothing', {
  skip,
}, async () => {
  const gan = snapshot(ganDir);
  const again = cxr('gan', 'train', '--data', CHEST_XRAY, '--out', ganDir, ...GAN);
  assert.equal(again.code, 1, again.stderr);
  assert.match(again.stderr, /gan already holds a trained GAN, which training would overwrite: choose a new --out/);
  assert.match(again.stderr, /--resume --epochs N, N more than 1/);
  assert.deepEqual(snapshot(ganDir), gan);

  const cls = snapshot(clsDir);
  await assert.rejects(
    ganTrain(clsDir),
    /cls is a classifier run folder \(cxr train\), not a GAN: choose a new --out folder/,
  );
  assert.deepEqual(snapshot(clsDir), cls, 'the classifier folder was written to');
});

test('gan train refuses an unfinished GAN without --resume, and a folder of other files', { skip }, async () => {
  // What a run started with --epochs 2 and killed after its first epoch leaves: the checkpoint of epoch 1.
  const killed = path.join(tmp, 'killed');
  fs.cpSync(ganDir, killed, { recursive: true });
  const config = path.join(killed, 'config.json');
  fs.writeFileSync(config, JSON.stringify({ ...JSON.parse(fs.readFileSync(config, 'utf8')), epochs: 2 }));
  await assert.rejects(
    ganTrain(killed),
    /killed already holds an unfinished GAN run \(1 of 2 epochs\): continue it with --resume/,
  );

  const other = path.join(tmp, 'other');
  fs.mkdirSync(other);
  fs.writeFileSync(path.join(other, 'notes.txt'), 'mine\n');
  await assert.rejects(
    ganTrain(other),
    /other holds other files \(notes\.txt\), not a GAN run: choose a new or empty --out/,
  );
  assert.deepEqual(fs.readdirSync(other), ['notes.txt']);
});

test('gan train --resume refuses a folder with nothing to resume and options that differ', { skip }, async () => {
  const missing = path.join(tmp, 'never-trained');
  await assert.rejects(
    ganTrain(missing, { resume: true }),
    /never-trained: there is nothing to resume \(no such folder\); start a new GAN/,
  );
  assert.equal(fs.existsSync(missing), false, 'the refused resume made the folder');

  const gan = snapshot(ganDir);
  await assert.rejects(
    ganTrain(ganDir, { resume: true, config: { size: 32, lr: 0.1, epochs: 3 } }),
    /these options differ from the saved config: --size 32 \(saved: 64\), --lr 0\.1 \(saved: 0\.0002\)/,
  );
  await assert.rejects(
    ganTrain(ganDir, { resume: true, config: { epochs: 1 } }),
    /holds a GAN that finished its 1 epoch: there is nothing to resume/,
  );
  assert.deepEqual(snapshot(ganDir), gan);
});

test('cxr train refuses a GAN folder as its --out, with --resume too', { skip }, async () => {
  const gan = snapshot(ganDir);
  for (const resume of [false, true]) {
    await assert.rejects(
      runTraining({ data: CHEST_XRAY, out: ganDir, overrides: TINY, resume, ...quiet }),
      /gan is a GAN folder \(cxr gan train\), not a classifier run: choose a new --out folder/,
    );
  }
  assert.deepEqual(snapshot(ganDir), gan);
});

test('cxr train --gan-model refuses a GAN trained on another patient split', { skip }, async () => {
  const out = path.join(tmp, 'mix-other-split');
  const mix = { ...TINY, ganImages: 2, ganModel: ganDir };
  await assert.rejects(runTraining({ data: CHEST_XRAY, out, overrides: { ...mix, splitSeed: 7 }, ...quiet }), (e) => {
    const m = (e as Error).message;
    assert.match(m, /was trained on another patient split than this run's \(the GAN's: split seed 42, /);
    assert.match(m, /this run's: split seed 7, /);
    assert.match(m, /\d+ of this run's \d+ validation patients are among the GAN's training patients/);
    assert.match(m, /cxr gan train --data .* --seed 7 --val-fraction 0\.15 --limit-per-class 40\)/);
    assert.match(m, /give this run the GAN's split \(--split-seed 42\)/);
    return true;
  });
  await assert.rejects(
    runTraining({ data: CHEST_XRAY, out, overrides: { ...mix, valFraction: 0.3, limitPerClass: 20 }, ...quiet }),
    /give this run the GAN's split \(--val-fraction 0\.15 --limit-per-class 40\)/,
  );
  assert.equal(fs.existsSync(out), false, 'a refused run wrote its folder');
});

test('cxr train --gan-model refuses a GAN trained on other films with the same split options', { skip }, async () => {
  // A data folder of 30 films per class: the run's subset of 40 per class is not the GAN's.
  const data = path.join(tmp, 'fewer');
  for (const cls of ['NORMAL', 'PNEUMONIA']) {
    const dir = path.join(data, 'train', cls);
    fs.mkdirSync(dir, { recursive: true });
    const films = fs
      .readdirSync(path.join(CHEST_XRAY, 'train', cls))
      .sort()
      .slice(0, 30);
    for (const f of films) fs.symlinkSync(path.join(CHEST_XRAY, 'train', cls, f), path.join(dir, f));
  }
  const out = path.join(tmp, 'mix-other-films');
  await assert.rejects(
    runTraining({ data, out, overrides: { ...TINY, ganImages: 2, ganModel: ganDir }, ...quiet }),
    /was trained on other films than this run's split holds \(it trained on .*chest_xray\): split fingerprints/,
  );
});
