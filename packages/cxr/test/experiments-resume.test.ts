// `cxr experiments shift|seed --resume` and `shift --table-only` keep finished run folders: they must
// refuse runs trained otherwise than the command asks (a --quick run kept by a full command was
// tabled as "The generalisation recipes over seeds", its "(quick subset)" label dropped), and
// `seed --only` must refuse a misspelt name up front rather than drop it. Run again on such a folder without
// --resume, both refuse at once unless --overwrite says to train the rows again (a forgotten --resume retrained
// a whole sweep). The finished runs here are the committed ones (docs/experiments), copied: nothing trains and
// no data is read.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { QUICK } from '../src/experiments/run_experiment';
import { runSeedExperiments, SEED_EXPERIMENTS } from '../src/experiments/seed';
import { runShiftExperiments } from '../src/experiments/shift';
import { REPO } from './shared-data';

const COMMITTED = path.join(REPO, 'docs', 'experiments');
const quiet = { log: () => {} };

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-exp-resume-'));
}

/** The run's cxr.json rewritten as a --quick run's: what `experiments shift --quick` records. */
function makeQuick(runDir: string): void {
  const file = path.join(runDir, 'cxr.json');
  const meta = JSON.parse(fs.readFileSync(file, 'utf8'));
  meta.recipe = { ...meta.recipe, ...QUICK };
  meta.inputSize = QUICK.inputSize;
  fs.writeFileSync(file, JSON.stringify(meta, null, 2));
}

test('experiments shift --table-only, --resume: quick runs refused to a full command, full to --quick', async () => {
  const out = tmp();
  try {
    for (const seed of [1, 7])
      fs.cpSync(path.join(COMMITTED, 'shift', `cxr-shift-s${seed}`), path.join(out, `cxr-shift-s${seed}`), {
        recursive: true,
      });
    const o = { ...quiet, data: path.join(out, 'no-data'), out, recipes: ['cxr-shift'], seeds: [1, 7] };
    const comparison = path.join(out, 'comparison.md');

    // Full runs, a full command: the table is drawn, without the quick label.
    await runShiftExperiments({ ...o, tableOnly: true });
    assert.match(fs.readFileSync(comparison, 'utf8'), /^# The generalisation recipes over seeds\n/);
    // The same runs asked for as --quick ones: refused, naming the fields and what to do.
    fs.rmSync(comparison);
    await assert.rejects(runShiftExperiments({ ...o, tableOnly: true, quick: true }), (e: Error) => {
      assert.match(e.message, /^experiments shift --table-only: 2 finished runs were trained otherwise/);
      assert.match(e.message, /cxr-shift-s1: limitPerClass: asked 40, trained 0; epochs: asked 2, trained 10;/);
      assert.match(e.message, /\nthey are full runs, not --quick: drop --quick to keep them; or choose another/);
      return true;
    });
    assert.equal(fs.existsSync(comparison), false, 'a refused command writes no table');

    // Quick runs, a full command (the tester's case): refused with --resume and with --table-only.
    for (const seed of [1, 7]) makeQuick(path.join(out, `cxr-shift-s${seed}`));
    for (const flags of [{ resume: true }, { tableOnly: true }]) {
      await assert.rejects(runShiftExperiments({ ...o, ...flags }), (e: Error) => {
        const differ =
          'limitPerClass: asked 0, trained 40; epochs: asked 10, trained 2; inputSize: asked 160, trained 64';
        assert.ok(e.message.includes(`cxr-shift-s7: ${differ}; batchSize: asked 32, trained 16\n`), e.message);
        assert.match(e.message, /they are --quick runs: add --quick to keep them/);
        const other = flags.resume
          ? /run with --overwrite instead of --resume to train them again/
          : /instead of --table-only/;
        assert.match(e.message, other);
        return true;
      });
      assert.equal(fs.existsSync(comparison), false, 'a refused command writes no table');
    }
    // With --quick they are kept, and the table says what they are.
    await runShiftExperiments({ ...o, tableOnly: true, quick: true });
    assert.match(fs.readFileSync(comparison, 'utf8'), /^# The generalisation recipes over seeds \(quick subset\)\n/);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('experiments seed --resume refuses a finished run trained otherwise than asked', async () => {
  const out = tmp();
  try {
    fs.cpSync(path.join(COMMITTED, 'cxr'), path.join(out, 'cxr'), { recursive: true });
    const o = { ...quiet, data: path.join(out, 'no-data'), out, only: ['cxr'], resume: true };
    await assert.rejects(runSeedExperiments({ ...o, quick: true }), (e: Error) => {
      assert.match(e.message, /^experiments seed --resume: a finished run was trained otherwise than this command/);
      assert.match(e.message, /\nit is a full run, not --quick: drop --quick to keep it; or /);
      return true;
    });
    assert.equal(fs.existsSync(path.join(out, 'comparison.md')), false);
    makeQuick(path.join(out, 'cxr'));
    await assert.rejects(runSeedExperiments(o), /it is a --quick run: add --quick to keep it/);
    await runSeedExperiments({ ...o, quick: true });
    assert.match(fs.readFileSync(path.join(out, 'comparison.md'), 'utf8'), /reproduced \(quick subset\)\n/);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('experiments seed --only refuses an unknown name up front, with the known names', async () => {
  // 'nowhere' as data: a name let through would start training and fail on the data instead.
  const o = { ...quiet, data: 'nowhere', out: path.join(os.tmpdir(), 'cxr-exp-only-never-made') };
  const known = new RegExp(`unknown experiment 'seed1-baselin' in --only \\(known: ${SEED_EXPERIMENTS.join(', ')};`);
  await assert.rejects(runSeedExperiments({ ...o, only: ['seed1-baselin'] }), known);
  // Beside a valid name the typo is not dropped: nothing runs.
  await assert.rejects(runSeedExperiments({ ...o, only: ['seed1-baseline', 'seed1-baselin'] }), known);
  // A GAN row without a GAN says what it needs.
  await assert.rejects(
    runSeedExperiments({ ...o, only: ['gan-mix'] }),
    /'gan-mix' is a row of the GAN comparison.*--gan-model/,
  );
  assert.equal(fs.existsSync(o.out), false);
});

/** Every file under `dir` with its bytes: what a refused command must leave as it was. */
function snapshot(dir: string): Record<string, string> {
  const files = fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
  return Object.fromEntries(
    files
      .filter((f) => fs.statSync(path.join(dir, f)).isFile())
      .map((f) => [f, fs.readFileSync(path.join(dir, f)).toString('base64')]),
  );
}

test('experiments shift|seed run again without --resume refuse a folder holding runs, unless --overwrite', async () => {
  const out = tmp();
  try {
    for (const seed of [1, 7])
      fs.cpSync(path.join(COMMITTED, 'shift', `cxr-shift-s${seed}`), path.join(out, `cxr-shift-s${seed}`), {
        recursive: true,
      });
    // An interrupted row beside the finished ones: a checkpoint and no model yet.
    const interrupted = path.join(out, 'cxr-shift-s42');
    fs.mkdirSync(path.join(interrupted, 'checkpoints', 'last'), { recursive: true });
    fs.writeFileSync(path.join(interrupted, 'checkpoints', 'last', 'state.json'), '{}');
    const before = snapshot(out);
    // 'no-data': a row let through would go on to train and fail on the data, not on the folder.
    const o = { ...quiet, data: path.join(out, 'no-data'), out, recipes: ['cxr-shift'], seeds: [1, 7, 42] };
    await assert.rejects(runShiftExperiments(o), (e: Error) => {
      assert.equal(
        e.message,
        `experiments shift: ${out} already holds 2 finished rows (cxr-shift-s1, cxr-shift-s7) and 1 interrupted row ` +
          '(cxr-shift-s42) of the 3 this command runs, which it would train again from scratch: add --resume to ' +
          'keep the finished rows and continue the interrupted ones, or --overwrite to train every row again over ' +
          'what its folder holds',
      );
      return true;
    });
    assert.deepEqual(snapshot(out), before, 'a refused command changed the folder');
    for (const flags of [{ resume: true }, { tableOnly: true }])
      await assert.rejects(
        runShiftExperiments({ ...o, ...flags, overwrite: true }),
        /: --(resume|table-only) keeps the finished rows and --overwrite trains them again: pass one of them/,
      );
    // --overwrite gets past the folder: the first row goes on to train and stops at the missing data.
    await assert.rejects(runShiftExperiments({ ...o, overwrite: true }), /no-data/);
    assert.deepEqual(snapshot(out), before, 'a run refused for its data changed the folder');

    // seed: one finished row is named as one.
    fs.cpSync(path.join(COMMITTED, 'cxr'), path.join(out, 'cxr'), { recursive: true });
    const seed = { ...quiet, data: path.join(out, 'no-data'), out, only: ['seed1-baseline', 'cxr'] };
    await assert.rejects(
      runSeedExperiments(seed),
      /experiments seed: .* already holds 1 finished row \(cxr\) of the 2 this command runs, .*--resume/,
    );
    await assert.rejects(runSeedExperiments({ ...seed, overwrite: true }), /no-data/);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('a model set aside by an --overwrite that did not finish is held, and given back on a refusal', async () => {
  const out = tmp();
  try {
    const row = path.join(out, 'cxr-shift-s1');
    fs.cpSync(path.join(COMMITTED, 'shift', 'cxr-shift-s1'), row, { recursive: true });
    const original = snapshot(out);
    // What a stop before training wrote leaves: the finished model's markers moved into .overwritten/.
    fs.mkdirSync(path.join(row, '.overwritten'));
    fs.renameSync(path.join(row, 'cxr.json'), path.join(row, '.overwritten', 'cxr.json'));
    fs.renameSync(path.join(row, 'metrics', 'val.json'), path.join(row, '.overwritten', 'metrics__val.json'));
    const o = { ...quiet, data: path.join(out, 'no-data'), out, recipes: ['cxr-shift'], seeds: [1] };
    // A plain call would replace it: refused, as for an interrupted row.
    await assert.rejects(runShiftExperiments(o), /already holds 1 interrupted row \(cxr-shift-s1\)/);
    // --overwrite refused on its data before training wrote anything: the earlier model comes back whole.
    await assert.rejects(runShiftExperiments({ ...o, overwrite: true }), /no-data/);
    assert.deepEqual(snapshot(out), original, 'the earlier model is back in its row, and .overwritten/ is gone');
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
