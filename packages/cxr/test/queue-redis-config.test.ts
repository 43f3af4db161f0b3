// The job queue's configuration and its Redis, on the stack's Redis, as a hospital integrator found them: a Redis
// URL naming a database Redis does not have (/99 on a Redis of 16) was taken silently and its jobs went to database
// 0, another environment's queue; `cxr worker --lock-duration 200` was accepted and then ran every job twice (its
// lock ran out under each prediction); `cxr worker --help` said `--db <file>` though it takes postgres:// URLs;
// and while Redis was down a worker logged every reconnection's error twice (one per connection) and never that
// Redis was back.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import {
  checkRedis,
  enqueueFile,
  type JobQueue,
  type JobSpec,
  openQueue,
  queueApi,
  queueDepth,
  RedisDatabaseError,
  type RunningWorker,
  startWorker,
  UploadStore,
} from '../src/queue';
import type { Predictor } from '../src/predict/predictor';
import { HttpError } from '../src/serve/http_error';
import { CLI, gradientFilm, XRAY_JPEG } from './serve-fixtures';
import { type Stack, stackCmd, stackUnavailable } from './stack-fixture';
import { startQueueStack, stopQueueStack } from './queue-stack';

const skip = stackUnavailable();
let stack: Stack | undefined;
let dir = '';
let modelDir = '';
let predictor: Predictor;
let queue: JobQueue;
let running: RunningWorker | undefined;

before(async () => {
  if (skip) return;
  ({ dir, modelDir, predictor, stack, queue } = await startQueueStack('queue-redis-config', ['redis']));
});
after(async () => {
  await running?.close();
  await stopQueueStack({ queue, predictor, stack, dir });
});

const cxr = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...stack?.env, CXR_MODEL: modelDir, ...env },
  });

const spec = (): JobSpec => ({
  modelSha256: predictor.model.sha256,
  operatingPoint: 'balanced',
  heatmap: false,
  requestedBy: null,
  priority: 'normal',
});

/** Keys in database 0 of the stack's Redis. */
async function keysInDb0(): Promise<number> {
  // BullMQ's client is a proxy over the ioredis one, which has every command.
  return ((await queue.client) as unknown as { dbsize(): Promise<number> }).dbsize();
}

test('a Redis URL naming a database Redis does not have is refused, naming it; nothing lands in database 0', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const url = stack!.env.CXR_REDIS_URL;
  assert.match(url, /\/0$/, 'the stack writes database 0');
  const bad = url.replace(/\/0$/, '/99');
  const before = await keysInDb0();

  // The commands: exit 1 naming the database, the password hidden.
  const enq = cxr(['enqueue', XRAY_JPEG], { CXR_REDIS_URL: bad });
  assert.equal(enq.status, 1, enq.stdout + enq.stderr);
  assert.match(
    enq.stderr,
    /Redis at redis:\/\/(:\*\*\*\*\*@)?127\.0\.0\.1:\d+\/99 has no database 99 \(SELECT 99: ERR/,
  );
  const password = new URL(url).password;
  assert.ok(!password || !enq.stderr.includes(password), 'the password is hidden');
  const worker = cxr(['worker', '--threads', '1', '--db', path.join(dir, 'w.db')], { CXR_REDIS_URL: bad });
  assert.equal(worker.status, 1, worker.stderr);
  assert.match(worker.stderr, /has no database 99/);
  await assert.rejects(checkRedis(bad), RedisDatabaseError);

  // A producer opened without the check (as cxr serve opens its queue): every call refuses, none writes database 0.
  const wrong = openQueue(bad, predictor.model.sha256);
  try {
    await assert.rejects(enqueueFile(wrong, spec(), XRAY_JPEG), RedisDatabaseError);
    await assert.rejects(queueDepth(wrong), /has no database 99/);
    const api = queueApi({
      queue: wrong,
      model: { sha256: predictor.model.sha256, defaultOperatingPoint: 'balanced' },
      orthanc: null,
    });
    const refused = await api
      .submitUpload(await gradientFilm(), 'film.png', { heatmap: false, requestedBy: null })
      .catch((e: unknown) => e);
    assert.ok(refused instanceof HttpError, String(refused));
    assert.equal(refused.statusCode, 503);
    assert.equal(refused.code, 'QUEUE_UNAVAILABLE');
    assert.match(refused.message, /no database of the number in this server's CXR_REDIS_URL/);
    assert.equal(refused.retryAfterS, 300, 'a configuration to fix: not retried every second');
  } finally {
    await wrong.close();
  }
  assert.equal(await keysInDb0(), before, 'nothing was written to database 0');

  // Database 15 exists on a Redis of 16: taken.
  const last = url.replace(/\/0$/, '/15');
  await checkRedis(last);
  const ok = openQueue(last, predictor.model.sha256);
  try {
    assert.equal(await enqueueFile(ok, spec(), XRAY_JPEG), 'queued');
  } finally {
    await ok.close();
  }
});

test('cxr worker refuses a lock shorter than a few predictions, and its --help says so and that --db takes URLs', {
  skip: skip ?? false,
  timeout: 60_000,
}, () => {
  for (const ms of ['200', '4999']) {
    const r = cxr(['worker', '--threads', '1', '--lock-duration', ms, '--db', path.join(dir, 'lock.db')]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`--lock-duration <ms>' argument '${ms}' is invalid\\. at least 5000 ms`));
    assert.match(r.stderr, /runs out under a job still running/);
    assert.doesNotMatch(r.stderr, /consuming/);
  }
  const help = cxr(['worker', '--help']);
  assert.equal(help.status, 0, help.stderr);
  const text = help.stdout.replace(/\s+/g, ' ');
  assert.match(text, /--db <file\|url> audit log: an SQLite file or a postgres:\/\/ URL/);
  assert.match(text, /--lock-duration <ms> how long a job stays locked .* at least 5000/);
});

test('Redis going away is one error line from a worker, and its return one info line', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const lines: { level: string; line: string }[] = [];
  const at = (level: string) => (line: string) => lines.push({ level, line });
  running = await startWorker(
    {
      predictor,
      store: {
        location: 'unused',
        insert: async () => {},
        insertOnce: async () => 'inserted',
        findByResultKey: async () => null,
      },
      uploads: new UploadStore(queue, 0),
      orthanc: null,
      storeImages: false,
      log: at('info'),
      warn: at('warn'),
      error: at('error'),
    },
    { redisUrl: stack!.env.CXR_REDIS_URL, concurrency: 1 },
  );
  const about = (level: string, pattern: RegExp) => lines.filter((l) => l.level === level && pattern.test(l.line));
  const redis = /^job queue \(Redis at redis:\/\/(:\*\*\*\*\*@)?127\.0\.0\.1:\d+\/0\): /;
  const show = () => lines.map((l) => `${l.level} ${l.line}`).join('\n');
  assert.equal(stackCmd(stack!.dir, 'down', ['redis']).code, 0);
  try {
    // ioredis reconnects about once a second, each of the worker's two connections reporting every failure.
    await new Promise((r) => setTimeout(r, 6_000));
    assert.equal(about('error', redis).length, 1, show());
    assert.match(about('error', redis)[0].line, /ECONNREFUSED.*Redis does not answer; reconnecting/);
  } finally {
    // Up again whatever was said: the worker's close, and the stack's, wait for it.
    assert.equal(stackCmd(stack!.dir, 'up', ['redis']).code, 0);
  }
  const end = Date.now() + 30_000;
  while (about('info', /answers again/).length === 0) {
    if (Date.now() > end) assert.fail(`no line said Redis answers again:\n${show()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 3_000)); // nothing more to say
  assert.equal(about('info', /answers again/).length, 1, show());
  assert.match(about('info', /answers again/)[0].line, /^job queue \(Redis at .*\) answers again, after \d+ s$/);
  assert.equal(about('error', redis).length, 1, show());
  assert.equal(lines.filter((l) => l.level === 'error').length, 1, show());

  // Up again, it takes jobs.
  assert.equal(await enqueueFile(queue, spec(), XRAY_JPEG), 'queued');
  const done = Date.now() + 30_000;
  while ((await queueDepth(queue)).completed === 0) {
    if (Date.now() > done) assert.fail(`the job was not run:\n${show()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await running.close();
  running = undefined;
});
