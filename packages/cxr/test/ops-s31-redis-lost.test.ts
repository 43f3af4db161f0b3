// Redis losing its data (FLUSHALL, a restart without persistence) under a worker running a job: the worker said
// only BullMQ's "Missing key for job ..." (and "Missing lock ...", "could not renew lock ..."), several lines per
// job. It now says what happened in words, once per job: Redis lost the job's keys, it will not be retried, where
// the audit log stands (here: the row was written before the loss), and where the docs say what to do. Redis from
// scripts/stack.sh; the job is held after its audit row by the worker's fault-injection pause.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { startModelStack, stopModelStack } from './queue-stack';
import { CLI, XRAY_JPEG } from './serve-fixtures';
import { type Stack, stackUnavailable } from './stack-fixture';

const skip = stackUnavailable();
let stack: Stack | undefined;
let dir = '';
let modelDir = '';
let worker: ChildProcess | undefined;

before(async () => {
  if (skip) return;
  ({ dir, modelDir, stack } = await startModelStack('ops-s31-redis-lost', ['redis']));
});
after(async () => {
  if (worker && worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
  await stopModelStack({ stack, dir });
});

async function until(what: () => boolean, ms: number, log: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error(`not seen within ${ms} ms:\n${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a job whose keys Redis lost is said in words, once, with where the audit log stands', {
  skip: skip ?? false,
  timeout: 180_000,
}, async () => {
  const env = { ...process.env, ...stack!.env, CXR_MODEL: modelDir };
  const db = path.join(dir, 'audit.db');
  worker = spawn(
    process.execPath,
    [CLI, 'worker', '--threads', '1', '--db', db, '--close-timeout', '5000', '--lock-duration', '5000'],
    { env: { ...env, CXR_WORKER_PAUSE_AFTER_AUDIT_MS: '6000' } },
  );
  let log = '';
  worker.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((resolve) => worker!.on('close', resolve));
  await until(
    () => /consuming/.test(log),
    60_000,
    () => log,
  );
  const queued = spawnSync(process.execPath, [CLI, 'enqueue', XRAY_JPEG], { encoding: 'utf8', env, timeout: 60_000 });
  assert.equal(queued.status, 0, queued.stderr);
  await until(
    () => /job \S+: started/.test(log),
    30_000,
    () => log,
  );
  const id = /job (\S+): started/.exec(log)![1];
  const redis = new Redis(stack!.env.CXR_REDIS_URL);
  try {
    await redis.flushall();
  } finally {
    redis.disconnect();
  }
  await until(
    () => /Redis lost this job's keys/.test(log),
    30_000,
    () => log,
  );
  // The lock's renewals and the moves to completed and to failed each fail: time for all of them to be heard.
  await new Promise((r) => setTimeout(r, 6_000));
  worker.kill('SIGTERM');
  await exited;
  const lost = log.split('\n').filter((l) => /Redis lost this job's keys/.test(l));
  assert.equal(lost.length, 1, log);
  const line = JSON.parse(lost[0]) as { level: string; msg: string };
  assert.equal(line.level, 'error', 'an error: the job is gone from the queue');
  assert.match(line.msg, new RegExp(`^job ${id}: Redis lost this job's keys \\(a FLUSHALL`));
  assert.match(line.msg, /it will not be retried/);
  assert.match(line.msg, /its result is in the audit log \(predicted\)/);
  assert.match(line.msg, /docs\/deployment\.md "If Redis loses its data"/);
  assert.doesNotMatch(log, /Missing (key|lock) for job|could not renew lock/, 'BullMQ words alone are not said');
  assert.doesNotMatch(log, /\\n\s+at /, 'no stack trace');
});
