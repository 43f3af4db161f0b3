// Ctrl-C right after an epoch's line: the epoch is kept (the signal waits for its checkpoint, train/loop.ts and
// cli/interrupt.ts), the line says so, and --resume goes on from it. A stop after the line while the checkpoint
// was written lost the epoch and said "interrupted before the first epoch ended". `cxr experiments shift` says
// how to continue it too (it stopped without a word).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type CliChild, readRunLog, spawnCli } from './child-cli';
import { CHEST_XRAY, needsData } from './shared-data';

const env = {
  ...process.env,
  CXR_CACHE: process.env.CXR_CACHE ?? path.join(os.tmpdir(), 'cxr-test-cache'),
  CXR_DB: path.join(os.tmpdir(), `cxr-interrupt-audit-${process.pid}.db`),
};
const skip = needsData();

/** Sends `signal` as soon as stderr holds a line that matches `line` (as the tester's Ctrl-C did), then waits. */
async function stopAt(run: CliChild, line: RegExp, signal: NodeJS.Signals): Promise<void> {
  for (let i = 0; i < 6000 && !line.test(run.stderr()) && run.child.exitCode === null; i++)
    await new Promise((r) => setTimeout(r, 5));
  assert.equal(run.child.exitCode, null, `the command ended before ${line}: ${run.stderr()}`);
  run.child.kill(signal);
  await run.done;
  assert.equal(run.child.signalCode, signal, run.stderr());
}

const lastLine = (run: CliChild) => run.stderr().trim().split('\n').at(-1);

test('Ctrl-C right after an epoch line keeps the epoch, and --resume goes on from it', { skip }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-interrupt-'));
  try {
    const out = path.join(tmp, 'run');
    const args = ['train', '--data', CHEST_XRAY, '--out', out, '--model', 'reference', '--input-size', '32'];
    args.push('--limit-per-class', '20', '--batch-size', '16', '--epochs', '3', '--no-report', '--no-gate');
    args.push('--threads', '1');
    const run = spawnCli(args, env);
    await stopAt(run, /^epoch 1\/3: /m, 'SIGINT');
    assert.equal(lastLine(run), `interrupted after epoch 1; continue with: cxr ${args.join(' ')} --resume`);
    const ckpt = path.join(out, 'checkpoints');
    const state = JSON.parse(fs.readFileSync(path.join(ckpt, 'last', 'state.json'), 'utf8'));
    assert.equal(state.epoch, 1);
    assert.equal(state.bestEpoch, 1);
    assert.deepEqual(fs.readdirSync(path.join(ckpt, 'best')).sort(), ['model.json', 'weights.bin']);

    const resumed = spawnCli([...args, '--resume'], env);
    assert.equal(await resumed.done, 0, resumed.stderr());
    assert.match(resumed.stderr(), /^resuming after epoch 1 /m);
    assert.deepEqual(
      readRunLog(out).map((e) => e.epoch),
      [1, 2, 3],
      'every epoch once',
    );
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('SIGTERM during cxr experiments shift says how to continue it', { skip }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-interrupt-'));
  try {
    const out = path.join(tmp, 'sweep');
    const args = ['experiments', 'shift', '--data', CHEST_XRAY, '--out', out, '--recipes', 'cxr-shift'];
    args.push('--seeds', '42', '--quick', '--threads', '1', '--overwrite');
    const run = spawnCli(args, env);
    await stopAt(run, /^epoch 1\/2: /m, 'SIGTERM');
    // --resume continues it, in place of --overwrite (the two are refused together).
    const again = args.filter((a) => a !== '--overwrite');
    assert.equal(
      lastLine(run),
      `interrupted during row cxr-shift-s42; continue with: cxr ${again.join(' ')} --resume ` +
        '(rows --overwrite had not trained again yet keep their earlier runs)',
    );
    const state = path.join(out, 'cxr-shift-s42', 'checkpoints', 'last', 'state.json');
    assert.equal(JSON.parse(fs.readFileSync(state, 'utf8')).epoch, 1);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(env.CXR_DB, { force: true });
  }
});

test('stopped before a run wrote anything, the line says to run the command again, not --resume', () => {
  // As `cxr train` stops while its data still load: no recipe.json, no checkpoint, so --resume would be refused.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-interrupt-early-'));
  try {
    const script = path.join(dir, 'cxr.js');
    fs.writeFileSync(
      script,
      `require(${JSON.stringify(require.resolve('../src/cli/interrupt'))}).sayHowToContinue({
         where: () => 'interrupted before the first epoch ended',
         resumable: () => false,
       });
       setTimeout(() => {}, 10_000);
       process.kill(process.pid, 'SIGINT');`,
    );
    const r = spawnSync(process.execPath, [script, 'train', '--data', 'd', '--out', 'runs/a b'], { encoding: 'utf8' });
    assert.equal(r.signal, 'SIGINT', r.stderr);
    assert.equal(
      r.stderr.trim(),
      'interrupted before the first epoch ended, before anything was written; run it again: ' +
        "cxr train --data d --out 'runs/a b'",
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
