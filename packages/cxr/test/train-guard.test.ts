// What `cxr train` refuses before it writes anything (a bad data folder or flags, one class on a side of the
// split, a folder that already holds a run), what --resume refuses (a folder with no run, other data, other
// options, a finished run), and the line an interrupted run leaves on stderr.
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnCli } from './child-cli';
import { CHEST_XRAY, needsData } from './shared-data';
import { spawnAsync } from './spawn-async';

const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const env = { ...process.env, CXR_CACHE: process.env.CXR_CACHE ?? path.join(os.tmpdir(), 'cxr-test-cache') };
const skip = needsData();
const TINY = [
  '--model',
  'reference',
  '--input-size',
  '32',
  '--limit-per-class',
  '20',
  '--batch-size',
  '16',
  '--no-report',
  '--no-gate',
  '--threads',
  '1',
];

// Each command stays a child process: its exit status from main.js and what it leaves on disk are the subject.
// The tests share nothing (each its own folders) and run side by side, and so do a test's refusals that leave
// the folders as they were: the file takes about the time of its longest test, not of their sum.
async function cxr(...args: string[]) {
  const r = await spawnAsync(process.execPath, [MAIN, ...args], { env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
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

/** A Kaggle-layout train/ folder of links to the shared films (no decoding needed to be refused). */
function linkedData(root: string, normal: string[], pneumonia: string[]): string {
  for (const [cls, names] of [
    ['NORMAL', normal],
    ['PNEUMONIA', pneumonia],
  ] as const) {
    const dir = path.join(root, 'train', cls);
    fs.mkdirSync(dir, { recursive: true });
    for (const n of names) fs.symlinkSync(path.join(CHEST_XRAY, 'train', cls, n), path.join(dir, n));
  }
  return root;
}

const films = (cls: string) => fs.readdirSync(path.join(CHEST_XRAY, 'train', cls)).sort();

describe('cxr train refusals', { concurrency: true }, () => {
  test('a refused train leaves no run folder, and an existing folder as it was', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-guard-'));
    const out = path.join(tmp, 'run');
    const [noData, bad] = await Promise.all([
      cxr('train', '--data', path.join(tmp, 'nope'), '--out', out, ...TINY),
      cxr('train', '--data', path.join(tmp, 'nope'), '--out', out, ...TINY, '--head-first', '1:1e-3'),
    ]);
    assert.equal(noData.code, 1);
    assert.match(noData.stderr, /--data .*nope: no such folder/);
    assert.equal(fs.existsSync(out), false, 'a refused run wrote its folder');
    // A flag combination refused: the folder is not made either, so no saved recipe can come back with --resume.
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /headFirst is the first phase of an endToEnd run/);
    assert.equal(fs.existsSync(out), false);
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'notes.txt'), 'mine\n');
    const other = await cxr('train', '--data', path.join(tmp, 'nope'), '--out', out, ...TINY);
    assert.equal(other.code, 1);
    // A folder of other things (a data folder given as --out by mistake) is no place for a model's files.
    assert.match(other.stderr, /run holds other files \(notes\.txt\), not a run: choose a new or empty --out folder/);
    assert.deepEqual(fs.readdirSync(out), ['notes.txt']);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('a run refused for want of its generator or backbone weights leaves no run folder', { skip }, async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-guard-'));
    const data = linkedData(tmp, films('NORMAL').slice(0, 12), films('PNEUMONIA').slice(0, 12));
    const tiny = ['--input-size', '32', '--limit-per-class', '6', '--no-report', '--no-gate', '--threads', '1'];
    const noGan = path.join(tmp, 'no-gan');
    const noWeights = path.join(tmp, 'no-weights');
    const weights = path.join(tmp, 'missing.h5');
    const [gan, bb] = await Promise.all([
      cxr('train', '--data', data, '--out', noGan, '--recipe', 'gan-mix', '--gan-model', noGan, ...tiny),
      cxr('train', '--data', data, '--out', noWeights, '--backbone', 'mobilenet_v1_0.25', '--weights', weights),
    ]);
    assert.equal(gan.code, 1, gan.stderr);
    assert.match(gan.stderr, /no gan\.json/);
    assert.equal(fs.existsSync(noGan), false, 'a run refused for its generator wrote its folder');
    assert.equal(bb.code, 1, bb.stderr);
    assert.match(bb.stderr, /missing\.h5/);
    assert.equal(fs.existsSync(noWeights), false, 'a run refused for its weights wrote its folder');
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('--resume on a folder with no run refuses, saying how to start one', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-guard-'));
    const missing = path.join(tmp, 'never-trained');
    // A folder with files but no run (no checkpoint, no saved recipe) is refused alike, and left as it was.
    fs.writeFileSync(path.join(tmp, 'notes.txt'), 'mine\n');
    const [r, empty] = await Promise.all([
      cxr('train', '--data', path.join(tmp, 'nope'), '--out', missing, ...TINY, '--resume'),
      cxr('train', '--data', path.join(tmp, 'nope'), '--out', tmp, ...TINY, '--resume'),
    ]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /never-trained: there is nothing to resume \(no such folder\); start a new run with the same/,
    );
    assert.equal(fs.existsSync(missing), false, 'the refused resume made the folder');
    assert.equal(empty.code, 1);
    assert.match(
      empty.stderr,
      /there is nothing to resume \(no run checkpoint in it\); start a new run .* without --resume/,
    );
    assert.deepEqual(fs.readdirSync(tmp), ['notes.txt']);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('--resume names the saved recipe when that recipe is not valid', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-guard-'));
    fs.writeFileSync(path.join(tmp, 'recipe.json'), JSON.stringify({ epochs: 0 }));
    const r = await cxr('train', '--data', path.join(tmp, 'nope'), '--out', tmp, '--resume');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /recipe\.json, the recipe this run started with \(--resume continues it\), is not a valid/);
    assert.match(r.stderr, /→ at epochs/);
    // A recipe the schema takes but training refuses, as a folder left by an older refused command holds.
    fs.writeFileSync(path.join(tmp, 'recipe.json'), JSON.stringify({ endToEnd: true }));
    const combination = await cxr('train', '--data', path.join(tmp, 'nope'), '--out', tmp, '--resume');
    assert.equal(combination.code, 1);
    assert.match(
      combination.stderr,
      /recipe\.json, the recipe this run started with \(--resume continues it\): endToEnd needs/,
    );
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('a training folder or a side of the split without both classes is refused before training', {
    skip,
  }, async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-guard-'));
    const out = path.join(tmp, 'run');
    const normal = films('NORMAL').slice(0, 20);
    const noPneumonia = linkedData(path.join(tmp, 'one-class'), normal, []);
    // One pneumonia patient: its films all go to one side of the patient split, so the other side has none.
    const patient = films('PNEUMONIA').filter((f) => f.startsWith('person1_'));
    const onePatient = linkedData(path.join(tmp, 'one-patient'), normal, patient);
    const [one, side, help] = await Promise.all([
      cxr('train', '--data', noPneumonia, '--out', out, ...TINY, '--epochs', '1'),
      cxr('train', '--data', onePatient, '--out', out, ...TINY, '--epochs', '1'),
      cxr('train', '--help'),
    ]);
    assert.equal(one.code, 1);
    assert.match(one.stderr, /the training folder has no PNEUMONIA images; training needs both classes/);
    assert.equal(fs.existsSync(out), false);
    assert.equal(side.code, 1);
    assert.match(side.stderr, /the (training|validation) side of the patient split \(\d+ images\) has no PNEUMONIA/);
    // Every option the message suggests exists (the help is the same text each time: read once).
    for (const option of side.stderr.match(/--[a-z-]+/g) ?? []) assert.match(help.stdout, new RegExp(option));
    assert.match(side.stderr, /--val-fraction/);
    assert.equal(fs.existsSync(out), false);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('a finished run is neither trained over nor resumed', { skip }, async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-guard-'));
    const out = path.join(tmp, 'run');
    const args = ['train', '--data', CHEST_XRAY, '--out', out, ...TINY, '--epochs', '1'];
    const first = await cxr(...args);
    assert.equal(first.code, 0, first.stderr);
    const before = snapshot(out);
    // Both refuse without writing (the snapshot after says so): side by side.
    const [again, resumed] = await Promise.all([cxr(...args), cxr(...args, '--resume')]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds a trained model, which training would overwrite: choose a new --out/);
    assert.equal(resumed.code, 1);
    assert.match(resumed.stderr, /holds a finished run: there is nothing to resume/);
    assert.deepEqual(snapshot(out), before);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('an interrupted run says how to continue; --resume refuses other data and other options', { skip }, async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-guard-'));
    const out = path.join(tmp, 'run');
    // Many epochs of a tiny model: the run is still training when the first checkpoint appears.
    const args = ['train', '--data', CHEST_XRAY, '--out', out, ...TINY, '--epochs', '60'];
    const run = spawnCli(args, env);
    const state = path.join(out, 'checkpoints', 'last', 'state.json');
    for (let i = 0; i < 2400 && !fs.existsSync(state) && run.child.exitCode === null; i++)
      await new Promise((r) => setTimeout(r, 50));
    run.child.kill('SIGINT');
    await run.done;
    assert.equal(run.child.signalCode, 'SIGINT', run.stderr());
    const epoch = JSON.parse(fs.readFileSync(state, 'utf8')).epoch;
    assert.ok(epoch < 60, 'the run finished before it was interrupted');
    const line = run.stderr().trim().split('\n').at(-1)!;
    assert.equal(line, `interrupted after epoch ${epoch}; continue with: cxr ${args.join(' ')} --resume`);

    const before = snapshot(out);
    // The same number of films per class, other films: another split, which --resume must not switch to.
    const other = linkedData(path.join(tmp, 'other'), films('NORMAL').slice(-25), films('PNEUMONIA').slice(-25));
    // The folder the run started on, with other films in it now: advice about the folder, not its name again.
    const copy = path.join(tmp, 'run-copy');
    fs.cpSync(out, copy, { recursive: true });
    const record = path.join(copy, 'checkpoints', 'data.json');
    fs.writeFileSync(record, JSON.stringify({ ...JSON.parse(fs.readFileSync(record, 'utf8')), root: other }));
    // Every one refuses without writing (the snapshot at the end says so): side by side.
    const [fewer, recipe, moved, changed, fresh] = await Promise.all([
      cxr(...args.map((a) => (a === '60' ? '2' : a)), '--resume'),
      cxr(...args, '--recipe', 'cxr', '--resume'),
      cxr(...args.map((a) => (a === CHEST_XRAY ? other : a)), '--resume'),
      cxr(...args.map((a) => (a === CHEST_XRAY ? other : a === out ? copy : a)), '--resume'),
      cxr(...args),
    ]);
    assert.equal(fewer.code, 1);
    assert.match(fewer.stderr, /these options differ from it: epochs 2 \(saved: 60\)/);
    assert.equal(recipe.code, 1);
    // --recipe asks for the whole recipe it names: here the default's site-shift augmentation is not in it.
    assert.match(recipe.stderr, /these options differ from it: .*shiftAugment \(none\) \(saved: \{"changes"/);
    assert.equal(moved.code, 1);
    assert.match(moved.stderr, /is not the data this run started on \(split fingerprint differs\)/);
    assert.match(moved.stderr, new RegExp(`resume with --data ${CHEST_XRAY}`));
    assert.equal(changed.code, 1);
    assert.match(changed.stderr, /the films in .*other changed since this run started \(split fingerprint differs; /);
    assert.match(changed.stderr, /put the folder back as it was to resume/);
    assert.doesNotMatch(changed.stderr, /resume with --data/);
    assert.equal(fresh.code, 1);
    assert.match(fresh.stderr, /already holds an unfinished run: continue it with --resume/);
    assert.deepEqual(snapshot(out), before, 'a refused resume changed the run folder');
    fs.rmSync(tmp, { recursive: true, force: true });
  });
});
