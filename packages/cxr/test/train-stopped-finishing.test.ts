// A run stopped while it finishes (after the 'validation (best epoch ...)' line, while it fits the gate or writes
// the report) has its cxr.json, weights and metrics/val.json but no ood.json or report/, and still its
// checkpoints/best. It is an unfinished run: `cxr train` says to continue it with --resume, `cxr evaluate` says
// the run did not finish and that the gate is off, and `cxr experiments --resume` finishes the row instead of
// keeping it. Also the data roots: `cxr train` refuses a folder named train that holds the class folders (the
// root the model would record could not give its validation split back), and `cxr evaluate --split validation`
// says it needs the training root.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runEvaluation } from '../src/cli/evaluate_run';
import { initEngine } from '../src/engine';
import { runExperiment } from '../src/experiments/run_experiment';
import { Predictor } from '../src/predict/predictor';
import { DEFAULT_RECIPE } from '../src/train/presets';
import { isFinished, runTraining } from '../src/train/run';
import { CHEST_XRAY, needsData } from './shared-data';

const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');
process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const skip = needsData();
const VAL = path.join(CHEST_XRAY, 'val');
const TINY = { arch: 'reference', inputSize: 32, limitPerClass: 20, batchSize: 16, epochs: 1 } as const;
const quiet = () => {};
const literal = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The folder a stop during finishing leaves (as the QA reproducer's SIGTERM after the 'validation (best epoch'
 * line did): the best epoch's model still in checkpoints/best, no gate, no report.
 */
function stopWhileFinishing(out: string): void {
  const best = path.join(out, 'checkpoints', 'best');
  fs.mkdirSync(best);
  for (const f of ['model.json', 'weights.bin']) fs.copyFileSync(path.join(out, f), path.join(best, f));
  fs.rmSync(path.join(out, 'ood.json'));
  fs.rmSync(path.join(out, 'report'), { recursive: true });
}

test('a run stopped while finishing: unfinished to train, evaluate and experiments --resume', { skip }, async () => {
  await initEngine();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-stopped-'));
  const out = path.join(tmp, 'cxr');
  const run = { data: CHEST_XRAY, out, recipeName: DEFAULT_RECIPE, overrides: TINY, progress: false, log: quiet };
  try {
    await runTraining(run);
    assert.ok(isFinished(out));
    stopWhileFinishing(out);
    assert.equal(isFinished(out), false, 'a run without its gate passed for finished');

    await assert.rejects(
      runTraining(run),
      /already holds an unfinished run, stopped while it finished \(.*\): continue it with --resume/,
    );
    const cli = spawnSync(process.execPath, [MAIN, 'evaluate', '--model', out, '--data', VAL, '--threads', '1'], {
      encoding: 'utf8',
      env: process.env,
    });
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stderr, /note: .*cxr: its training run did not finish .*'cxr train --data .* --resume'/);
    assert.match(cli.stderr, /note: no ood\.json in .*: the OOD gate is off/);
    assert.match(cli.stdout, /\d+ "cannot assess" \(image checks; the not-a-chest-X-ray gate is off\)/);
    // The server and `cxr predict` say it too: the note is the Predictor's.
    const predictor = await Predictor.load(out, { warmUp: false });
    assert.match(predictor.notes[0], /its training run did not finish/);
    predictor.dispose();
    const unfinished = await runEvaluation({ modelDir: out, data: VAL, warn: quiet });
    assert.equal(unfinished.oodGate, null);
    assert.match(unfinished.notes[0], /did not finish/);

    // experiments seed|shift --resume: the row is finished, not kept as it is.
    const lines: string[] = [];
    const row = { data: CHEST_XRAY, runDir: out, recipeName: DEFAULT_RECIPE, name: 'cxr', title: 'cxr' };
    await runExperiment({ ...row, overrides: TINY, resume: true, log: (l) => lines.push(l) });
    assert.match(lines.join('\n'), /resuming after epoch 1/);
    assert.ok(fs.existsSync(path.join(out, 'ood.json')), 'the row got no gate');
    assert.ok(fs.existsSync(path.join(out, 'report', 'index.html')), 'the row got no report');
    assert.equal(fs.existsSync(path.join(out, 'checkpoints', 'best')), false);
    assert.ok(isFinished(out));
    const finished = await runEvaluation({ modelDir: out, data: VAL, warn: quiet });
    assert.ok(finished.oodGate && finished.oodGate.threshold > 0);
    assert.deepEqual(
      finished.notes.filter((n) => /did not finish|gate is off/.test(n)),
      [],
    );

    // --split validation needs the training root; a folder without train/ is told so, not "no images".
    await assert.rejects(
      runEvaluation({ modelDir: out, data: VAL, split: 'validation', warn: quiet }),
      new RegExp(
        `has no train/ with NORMAL/ and PNEUMONIA/ in it: give the training root, the folder with train/ inside ` +
          `\\(this model was trained on ${literal(CHEST_XRAY)}\\)`,
      ),
    );
    await assert.rejects(
      runEvaluation({ modelDir: out, data: path.join(CHEST_XRAY, 'train'), split: 'validation', warn: quiet }),
      new RegExp(`is a train/ folder itself: the folder above it, ${literal(CHEST_XRAY)}\\)`),
    );
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('the best checkpoint, the unfinished mark, goes only after the report is written', { skip }, async () => {
  await initEngine();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-stopped-'));
  const out = path.join(tmp, 'cxr');
  // Stopped at the report's own line: its model, gate and report are written, the mark is still there.
  const stopAtReport = (line: string) => {
    if (/^report/.test(line)) throw new Error('stopped at the report'); // its catch logs 'report not written' too
  };
  try {
    const run = { data: CHEST_XRAY, out, recipeName: DEFAULT_RECIPE, overrides: TINY, progress: false };
    await assert.rejects(runTraining({ ...run, log: stopAtReport }), /stopped at the report/);
    assert.ok(fs.existsSync(path.join(out, 'report', 'index.html')));
    assert.ok(fs.existsSync(path.join(out, 'checkpoints', 'best')), 'the mark went before the report was done');
    assert.equal(isFinished(out), false);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('a run no epoch of which improved is still unfinished when stopped while finishing', { skip }, async () => {
  await initEngine();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-stopped-'));
  const out = path.join(tmp, 'cxr');
  const stopAt = (re: RegExp) => (line: string) => {
    if (re.test(line)) throw new Error(`stopped at: ${line}`);
  };
  try {
    const overrides = { ...TINY, epochs: 2 };
    const run = { data: CHEST_XRAY, out, recipeName: DEFAULT_RECIPE, overrides, progress: false };
    // Stopped at epoch 2's line: epoch 1's checkpoint is the last one.
    await assert.rejects(runTraining({ ...run, log: stopAt(/^epoch 2\/2:/) }), /stopped at: epoch 2\/2/);
    // The loop keeps checkpoints/best only for an epoch that beats the best AUC so far. Resumed from a checkpoint
    // that records AUC 1, the most there is, and no best epoch's model, epoch 2 cannot improve and none is kept.
    const state = path.join(out, 'checkpoints', 'last', 'state.json');
    fs.writeFileSync(state, JSON.stringify({ ...JSON.parse(fs.readFileSync(state, 'utf8')), bestAuc: 1 }));
    fs.rmSync(path.join(out, 'checkpoints', 'best'), { recursive: true });
    // Stopped while finishing, at the line logged once cxr.json is written: before the gate and the report.
    const lines: string[] = [];
    const stopFinishing = stopAt(/^validation \(best epoch/);
    const log = (l: string) => {
      lines.push(l);
      stopFinishing(l);
    };
    await assert.rejects(runTraining({ ...run, resume: true, log }), /stopped at: validation/);
    assert.match(lines.join('\n'), /epoch 2\/2: /);
    assert.ok(fs.existsSync(path.join(out, 'cxr.json')));
    assert.equal(fs.existsSync(path.join(out, 'ood.json')), false);
    assert.equal(isFinished(out), false, 'a run stopped while finishing, no epoch improved, passed for finished');
    await assert.rejects(
      runTraining({ ...run, log: quiet }),
      /stopped while it finished .*: continue it with --resume/,
    );

    // --resume finishes it, on the weights it was finishing.
    const weights = fs.readFileSync(path.join(out, 'weights.bin'));
    await runTraining({ ...run, resume: true, log: quiet });
    assert.ok(isFinished(out));
    assert.ok(fs.existsSync(path.join(out, 'ood.json')), 'the run got no gate');
    assert.ok(fs.existsSync(path.join(out, 'report', 'index.html')), 'the run got no report');
    assert.equal(fs.existsSync(path.join(out, 'checkpoints', 'best')), false);
    assert.ok(fs.readFileSync(path.join(out, 'weights.bin')).equals(weights), 'resumed onto other weights');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('train refuses a folder named train holding the class folders, naming the folder to give', { skip }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-stopped-'));
  const root = path.join(tmp, 'site');
  try {
    for (const cls of ['NORMAL', 'PNEUMONIA']) {
      fs.mkdirSync(path.join(root, 'train', cls), { recursive: true });
      for (const f of fs
        .readdirSync(path.join(CHEST_XRAY, 'train', cls))
        .sort()
        .slice(0, 20))
        fs.symlinkSync(path.join(CHEST_XRAY, 'train', cls, f), path.join(root, 'train', cls, f));
    }
    const out = path.join(tmp, 'run');
    const run = { out, recipeName: DEFAULT_RECIPE, overrides: TINY, progress: false, log: quiet };
    await assert.rejects(
      runTraining({ ...run, data: path.join(root, 'train') }),
      new RegExp(
        `has NORMAL/ and PNEUMONIA/ directly: .*it is a train/ folder itself: give the folder above it, ` +
          `--data ${literal(root)}$`,
      ),
    );
    assert.equal(fs.existsSync(out), false, 'a refused run wrote its folder');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
