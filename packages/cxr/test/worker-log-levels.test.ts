// What a worker and a producer say when things fail, on the stack's Redis. QA (as hospital IT) found every
// worker line at level info, `attempt N failed` and `failed (after N attempts)` included, and `queue error:
// connect ECONNREFUSED ...` not saying it was Redis; and `cxr orthanc sync --queue` silent for 40 s while
// Redis was down (a producer's calls waited for Redis for ever). Now retries warn, final failures and Redis
// errors are errors naming Redis, and a producer's call fails within seconds, as an outage, naming Redis.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { CLI, XRAY_JPEG } from './serve-fixtures';
import { type Stack, stackCmd, stackUnavailable } from './stack-fixture';
import { startQueueStack, stopQueueStack } from './queue-stack';
import type { Predictor } from '../src/predict/predictor';
import {
  enqueueFile,
  isOutage,
  type JobQueue,
  type JobSpec,
  queueDepth,
  QueueUnavailableError,
  type ResultStore,
  type RunningWorker,
  startWorker,
  UploadStore,
} from '../src/queue';

const skip = stackUnavailable();
let stack: Stack | undefined;
let dir = '';
let modelDir = '';
let predictor: Predictor;
let queue: JobQueue;
let running: RunningWorker | undefined;
const children: ChildProcess[] = [];
const lines: { level: string; line: string }[] = [];
const at = (level: string) => (line: string) => lines.push({ level, line });
const said = (level: string, pattern: RegExp) => lines.some((l) => l.level === level && pattern.test(l.line));

before(async () => {
  if (skip) return;
  ({ dir, modelDir, predictor, stack, queue } = await startQueueStack('worker-log-levels', ['redis']));
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await running?.close();
  await stopQueueStack({ queue, predictor, stack, dir });
});

async function until(ok: () => boolean | Promise<boolean>, ms: number, what?: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) {
      throw new Error(`timed out:\n${what?.() ?? lines.map((l) => `${l.level} ${l.line}`).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The audit log away (a refused connection) for every call. */
const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
const awayStore: ResultStore = {
  location: 'postgres://cxr:*****@db:5432/cxr',
  findByResultKey: () => Promise.reject(refused()),
  insert: () => Promise.reject(refused()),
  insertOnce: () => Promise.reject(refused()),
};

const spec = (): JobSpec => ({
  modelSha256: predictor.model.sha256,
  operatingPoint: 'balanced',
  heatmap: false,
  requestedBy: null,
  priority: 'normal',
});

test('a worker warns of a failed attempt it retries, and errs when a job fails for good', {
  skip: skip ?? false,
  timeout: 60_000,
}, async () => {
  running = await startWorker(
    {
      predictor,
      store: awayStore,
      uploads: new UploadStore(queue, 0),
      orthanc: null,
      storeImages: false,
      log: at('info'),
      warn: at('warn'),
      error: at('error'),
    },
    {
      redisUrl: stack!.env.CXR_REDIS_URL,
      concurrency: 1,
      // An outage retried twice (100 ms, then 200 ms), then failed: its waits pass 250 ms.
      retry: { firstDelayMs: 100, maxDelayMs: 200, retryForMs: 250 },
    },
  );
  assert.equal(await enqueueFile(queue, spec(), XRAY_JPEG), 'queued');
  await until(() => said('error', /failed \(after 3 attempts\): audit log .* is unavailable/), 30_000);
  assert.ok(said('warn', /attempt 1 failed: audit log [^\n]*; retrying in 0\.1 s/), 'a retry is a warning');
  assert.ok(said('warn', /attempt 2 failed: [^\n]*; retrying in 0\.2 s/));
  assert.ok(!said('info', /failed/), 'no failure at level info');
  assert.ok(said('info', /started \(attempt 1\)/), 'progress stays info');
  await running.close();
  running = undefined;
});

test('Redis gone: cxr worker errs naming it; a producer call fails within seconds, as an outage', {
  skip: skip ?? false,
  timeout: 90_000,
}, async () => {
  const child = spawn(
    process.execPath,
    [CLI, 'worker', '--threads', '1', '--db', path.join(dir, 'audit.db'), '--close-timeout', '1000'],
    { env: { ...process.env, ...stack!.env, CXR_MODEL: modelDir } },
  );
  children.push(child);
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const entries = () =>
    log
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: string; msg: string });
  await until(() => /consuming/.test(log), 30_000);
  assert.equal(stackCmd(stack!.dir, 'down', ['redis']).code, 0);
  const redisError = /^job queue \(Redis at redis:\/\/:\*\*\*\*\*@127\.0\.0\.1:\d+\/0\): /;
  await until(
    () => entries().some((e) => e.level === 'error' && redisError.test(e.msg)),
    30_000,
    () => log,
  );
  assert.ok(!log.includes(new URL(stack!.env.CXR_REDIS_URL).password), 'the password is hidden');

  // A producer's call fails within seconds, named, as an outage (a polling sync tries again at its next poll).
  const t0 = Date.now();
  const err = await queueDepth(queue).catch((e: unknown) => e);
  assert.ok(Date.now() - t0 < 8_000, `failed after ${Date.now() - t0} ms`);
  assert.ok(err instanceof QueueUnavailableError, String(err));
  assert.match(err.message, /^the job queue \(Redis at redis:\/\/:\*\*\*\*\*@127\.0\.0\.1:\d+\/0\) does not answer \(/);
  assert.ok(isOutage(err));
  const failed = await enqueueFile(queue, spec(), XRAY_JPEG).catch((e: unknown) => e);
  assert.ok(failed instanceof QueueUnavailableError, String(failed));
  // Closing the producer does not wait for Redis.
  const t1 = Date.now();
  await queue.close();
  assert.ok(Date.now() - t1 < 3_000, `closed after ${Date.now() - t1} ms`);

  child.kill('SIGTERM');
  assert.equal(await exited, 1, 'exits after --close-timeout, as queue-redis-down.test.ts pins');
});
