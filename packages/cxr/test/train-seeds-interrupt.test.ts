// Ctrl-C or SIGTERM during `cxr train --seeds` said only "interrupted; continue with: ...": not which member
// (seed) was training, nor at which epoch it stopped, though each member is a run of its own with its own
// checkpoint. The line now names the member (its number, seed and folder) and its epoch, and the command that
// continues the ensemble; that command keeps the finished member and goes on from the stopped one's epoch.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readRunLog, spawnCli } from './child-cli';
import { CHEST_XRAY, needsData } from './shared-data';

const env = {
  ...process.env,
  CXR_CACHE: process.env.CXR_CACHE ?? path.join(os.tmpdir(), 'cxr-test-cache'),
  CXR_DB: path.join(os.tmpdir(), `cxr-seeds-interrupt-audit-${process.pid}.db`),
};

test('Ctrl-C in the second member of --seeds names it and its epoch, and --resume goes on from there', {
  skip: needsData(),
}, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-seeds-interrupt-'));
  try {
    const out = path.join(tmp, 'ens');
    const args = ['train', '--data', CHEST_XRAY, '--out', out, '--seeds', '1', '2', '--model', 'reference'];
    args.push('--input-size', '32', '--limit-per-class', '20', '--batch-size', '16', '--epochs', '2');
    args.push('--no-report', '--no-gate', '--threads', '1');
    const run = spawnCli(args, env);
    // As soon as the second member's first epoch line is out, as a user's Ctrl-C would come.
    const second = /^member 2 of 2: [\s\S]*^epoch 1\/2: /m;
    for (let i = 0; i < 20_000 && !second.test(run.stderr()) && run.child.exitCode === null; i++)
      await new Promise((r) => setTimeout(r, 5));
    assert.equal(run.child.exitCode, null, `the command ended before member 2's first epoch: ${run.stderr()}`);
    run.child.kill('SIGINT');
    await run.done;
    assert.equal(run.child.signalCode, 'SIGINT', run.stderr());
    const member = path.join(`${out}-members`, 'ens-s2');
    assert.equal(
      run.stderr().trim().split('\n').at(-1),
      `interrupted in member 2 of 2 (seed 2, in ${member}) after its epoch 1; ` +
        `continue with: cxr ${args.join(' ')} --resume`,
    );
    const state = JSON.parse(fs.readFileSync(path.join(member, 'checkpoints', 'last', 'state.json'), 'utf8'));
    assert.equal(state.epoch, 1);

    const resumed = spawnCli([...args, '--resume'], env);
    assert.equal(await resumed.done, 0, resumed.stderr());
    assert.match(resumed.stderr(), /^member 1 of 2 \(seed 1\) already trained in .*ens-s1: kept$/m);
    assert.match(resumed.stderr(), /^resuming after epoch 1 /m);
    assert.deepEqual(
      readRunLog(member).map((e) => e.epoch),
      [1, 2],
      'every epoch of the stopped member once',
    );
    assert.ok(fs.existsSync(path.join(out, 'cxr.json')), 'the ensemble is made');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(env.CXR_DB, { force: true });
  }
});
