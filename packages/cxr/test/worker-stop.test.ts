// `cxr worker` asked to stop while Redis is gone: closing waits for Redis (BullMQ quits its connections), so
// without a bound it waited forever (found with a worker left running for 87 minutes after its Redis was
// stopped). With --close-timeout it exits 1 after that long and says why; with Redis up it stops at once, 0.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CLI, makeTinyModel, tempDir } from './serve-fixtures';
import { type Stack, stackUnavailable, startStack, stopStack } from './stack-fixture';

const skip = stackUnavailable();
let stack: Stack | undefined;
let dir = '';
let modelDir = '';
const children: ChildProcess[] = [];

before(async () => {
  if (skip) return;
  dir = tempDir('worker-stop');
  modelDir = await makeTinyModel(path.join(dir, 'model'));
  stack = startStack('worker-stop', ['redis']);
});
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  stopStack(stack);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function startWorker(): Promise<{ log: () => string; exited: Promise<number | null>; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [CLI, 'worker', '--threads', '1', '--db', path.join(dir, 'audit.db'), '--close-timeout', '2000'],
    { env: { ...process.env, ...stack!.env, CXR_MODEL: modelDir } },
  );
  children.push(child);
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const end = Date.now() + 60_000;
  while (!/consuming/.test(log)) {
    if (child.exitCode !== null || Date.now() > end) throw new Error(`the worker did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { log: () => log, exited, child };
}

test('a worker stopped with Redis up exits 0; with Redis gone it exits 1 after --close-timeout, saying why', {
  skip: skip ?? false,
  timeout: 180_000,
}, async () => {
  const up = await startWorker();
  up.child.kill('SIGTERM');
  assert.equal(await up.exited, 0, up.log());
  assert.match(up.log(), /"msg":"stopped"/);

  const w = await startWorker();
  stopStack(stack);
  stack = undefined;
  const t0 = Date.now();
  w.child.kill('SIGTERM');
  assert.equal(await w.exited, 1, w.log());
  const took = Date.now() - t0;
  assert.ok(took >= 1900 && took < 30_000, `exited after ${took} ms`);
  assert.match(w.log(), /the queue did not close within 2 s \(is Redis reachable\?\): exiting without it/);
});
