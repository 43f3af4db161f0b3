// What a run does when its folders fail it midway, found by killing and starving tiny runs (QA): a disk that fills
// or a folder that turns unwritable at an epoch's end, or while the model is written, said only the file system's
// "ENOSPC: no space left on device, write" (here ENOTDIR, EISDIR: the same path), not what was kept or that --resume
// continues; and films that could not be read after the file list was checked (a data folder moved away while the
// run read it, or damaged files) trained on what was left, 0 validation films, and failed with "cannot evaluate an
// empty set of predictions".
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initEngine } from '../src/engine';
import { DEFAULT_RECIPE } from '../src/train/presets';
import { isFinished, runTraining, type RunOptions } from '../src/train/run';
import { readRunLog } from './child-cli';
import { CHEST_XRAY, needsData } from './shared-data';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const skip = needsData();
const TINY = { arch: 'reference', inputSize: 32, limitPerClass: 20, batchSize: 16, epochs: 3 } as const;

/** A tiny run into a fresh folder; `onLine` sees each line as it is logged (inside the run, synchronously). */
function tinyRun(tmp: string, onLine: (line: string) => void = () => {}, data = CHEST_XRAY): RunOptions {
  const out = path.join(tmp, 'run');
  return {
    data,
    out,
    recipeName: DEFAULT_RECIPE,
    overrides: TINY,
    progress: false,
    report: false,
    gate: false,
    log: onLine,
  };
}

async function inTmp(body: (tmp: string) => Promise<void>): Promise<void> {
  await initEngine();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-interrupt-qa-'));
  try {
    await body(tmp);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * A tiny run whose epoch 2 cannot be saved: at its line, its best model and checkpoint are still to be written,
 * and a file where their folder goes fails them as a full disk would (the folder is kept aside, `${ckpt}.aside`).
 */
function runFailingAtEpoch2(tmp: string): { run: RunOptions; ckpt: string } {
  const ckpt = path.join(tmp, 'run', 'checkpoints');
  const run = tinyRun(tmp, (line) => {
    if (!line.startsWith('epoch 2/3:')) return;
    fs.renameSync(ckpt, `${ckpt}.aside`);
    fs.writeFileSync(ckpt, '');
  });
  return { run, ckpt };
}

test('an epoch that cannot be saved says what is kept and that --resume continues', { skip }, () =>
  inTmp(async (tmp) => {
    const { run, ckpt } = runFailingAtEpoch2(tmp);
    await assert.rejects(runTraining(run), (e: Error) => {
      assert.match(
        e.message,
        /^epoch 2 could not be saved in .*run \(a file is in the way\); its checkpoint keeps epoch 1: .*--resume$/,
      );
      return true;
    });
    fs.rmSync(ckpt);
    fs.renameSync(`${ckpt}.aside`, ckpt);
    const lines: string[] = [];
    await runTraining({ ...run, resume: true, log: (l) => lines.push(l) });
    assert.ok(
      lines.some((l) => l.startsWith('resuming after epoch 1 ')),
      lines.join('\n'),
    );
    assert.deepEqual(
      readRunLog(run.out).map((e) => e.epoch),
      [1, 2, 3],
    );
    assert.ok(isFinished(run.out));
  }),
);

/** A process id that is surely gone: a child that has exited. */
const deadPid = (): number => spawnSync(process.execPath, ['-e', '']).pid!;
/** This machine's name as models/io.ts writes it into its temp and set-aside folders. */
const HOST = os.hostname().replace(/[^A-Za-z0-9_]/g, '_') || 'host';

test(
  'a run killed in the middle of writing a checkpoint or its model resumes from the checkpoint, no leftovers',
  {
    skip,
  },
  () =>
    inTmp(async (tmp) => {
      const { run, ckpt } = runFailingAtEpoch2(tmp);
      await assert.rejects(runTraining(run), /epoch 2 could not be saved/);
      fs.rmSync(ckpt);
      fs.renameSync(`${ckpt}.aside`, ckpt);
      // What a SIGKILL between the two renames of a checkpoint's write leaves: the last checkpoint set aside under
      // its writer's name and no checkpoints/last (the resumed run began again at epoch 1); and a model write's temp
      // folder (kept for good in the run folder).
      const aside = path.join(ckpt, `last.old-${HOST}-${deadPid()}`);
      fs.renameSync(path.join(ckpt, 'last'), aside);
      const saveTemp = path.join(run.out, `.save-${HOST}-${deadPid()}-Ab12Cd`);
      fs.mkdirSync(saveTemp);
      // And a log line cut short as it was appended (a kill, a full disk): the resume stopped on its JSON.
      fs.appendFileSync(path.join(run.out, 'log.jsonl'), '{"epoch": 3, "loss": 0.6');
      const lines: string[] = [];
      await runTraining({ ...run, resume: true, log: (l) => lines.push(l) });
      assert.ok(
        lines.some((l) => l.startsWith('resuming after epoch 1 ')),
        lines.join('\n'),
      );
      assert.ok(!fs.existsSync(aside), 'the set-aside checkpoint was put back');
      assert.ok(!fs.existsSync(saveTemp), "a dead writer's temp folder is swept");
      assert.deepEqual(
        readRunLog(run.out).map((e) => e.epoch),
        [1, 2, 3],
      );
      assert.ok(isFinished(run.out));
    }),
);

test('a model that cannot be written says its best epoch is kept, and --resume finishes it', { skip }, () =>
  inTmp(async (tmp) => {
    const out = path.join(tmp, 'run');
    // A folder where weights.bin goes: the rename into place fails, as a full disk fails the write before it.
    const blocker = path.join(out, 'weights.bin');
    const run = tinyRun(tmp, (line) => {
      if (line.startsWith('epoch 3/3:')) fs.mkdirSync(path.join(blocker, 'x'), { recursive: true });
    });
    await assert.rejects(runTraining(run), (e: Error) => {
      assert.match(
        e.message,
        /^the trained model and its validation files could not all be written in .*run \(.*\); its best epoch is /,
      );
      assert.match(e.message, /kept in checkpoints\/best: .* finish the run with --resume$/);
      return true;
    });
    assert.equal(fs.existsSync(path.join(out, 'cxr.json')), false, 'cxr.json without its weights');
    assert.ok(fs.existsSync(path.join(out, 'checkpoints', 'best', 'weights.bin')));
    fs.rmSync(blocker, { recursive: true });
    await runTraining({ ...run, resume: true, log: () => {} });
    assert.ok(isFinished(run.out));
  }),
);

test('films that cannot be read after the check: refused before training, naming the data', { skip }, () =>
  inTmp(async (tmp) => {
    // Listed films that do not decode (as a folder unmounted midway reads): every NORMAL film here, so what the
    // run reads holds pneumonia alone, though the file list it checked first holds both classes on both sides.
    const data = path.join(tmp, 'data');
    for (const cls of ['NORMAL', 'PNEUMONIA']) {
      const dir = path.join(data, 'train', cls);
      fs.mkdirSync(dir, { recursive: true });
      const names = fs
        .readdirSync(path.join(CHEST_XRAY, 'train', cls))
        .sort()
        .slice(0, 12);
      for (const [i, name] of names.entries()) {
        if (cls === 'PNEUMONIA') fs.copyFileSync(path.join(CHEST_XRAY, 'train', cls, name), path.join(dir, name));
        else fs.writeFileSync(path.join(dir, name), `not a JPEG ${i}`);
      }
    }
    const run = { ...tinyRun(tmp, () => {}, data), overrides: { ...TINY, limitPerClass: 12 } };
    await assert.rejects(runTraining(run), (e: Error) => {
      assert.match(e.message, /data: the training films read hold no NORMAL images \(12 of 24 films could be read/);
      assert.match(e.message, /run the same command again \(nothing was trained\)$/);
      return true;
    });
    assert.equal(fs.existsSync(path.join(run.out, 'checkpoints', 'last')), false);
  }),
);
