// A shared service away is waited out; a bad film is not. QA (as hospital IT) stopped the stack's PostgreSQL
// for ~15 s under a running `cxr worker` and queued a film: attempts 1, 2, 3 at +0, +5, +15 s failed with
// `connect ECONNREFUSED` and the job failed for good (the same with Orthanc away for an Orthanc job). Now an
// outage of the audit log, Orthanc or the network is retried with capped exponential backoff for hours
// (queue/retry.ts), and a film that cannot be read still fails at its first attempt. The first tests pin the
// policy without services; the last one runs a real worker on the stack's Redis and PostgreSQL, with the
// backoff shortened by --retry-delay / --retry-max-delay so that it takes seconds.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UnrecoverableError } from 'bullmq';
import { modelIdentity } from '../src/models/io';
import { OrthancClient, OrthancError } from '../src/pacs';
import {
  countOtherFailure,
  DEFAULT_RETRY,
  isOutage,
  type JobQueue,
  jobIdFor,
  nextRetryMs,
  openQueue,
  otherFailuresOf,
  OUTAGE_BACKOFF,
  resultKeyOf,
  retryDelayMs,
} from '../src/queue';
import { openAuditStore } from '../src/serve/audit';
import { startModelStack, stopQueueStack } from './queue-stack';
import { CLI, XRAY_JPEG } from './serve-fixtures';
import { postgresUnavailable, type Stack, stackCmd, stackUnavailable } from './stack-fixture';

const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:39005'), { code: 'ECONNREFUSED' });

test('an outage: a connection refused or lost, Orthanc away, the audit log away; not a bad film', async () => {
  assert.ok(isOutage(refused()));
  // Node connects to each address of "localhost" and reports them together.
  assert.ok(isOutage(new AggregateError([refused(), refused()], '')));
  assert.ok(isOutage(new Error('wrapped', { cause: refused() })));
  assert.ok(
    isOutage(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })),
  );
  assert.ok(isOutage(new Error('Connection terminated unexpectedly')));
  assert.ok(isOutage(Object.assign(new Error('the audit log (x) does not answer'), { code: 'AUDIT_UNAVAILABLE' })));
  // What the client throws for an Orthanc that is not there.
  const away = await new OrthancClient({ url: 'http://127.0.0.1:1' }).changes(0, 1).catch((e: unknown) => e);
  assert.ok(away instanceof OrthancError && /unreachable/.test(away.message) && isOutage(away), String(away));
  assert.ok(isOutage(new OrthancError('POST /dicom-web/studies: HTTP 503', 503)), 'a gateway saying it is away');
  assert.ok(!isOutage(new OrthancError('GET /instances/x/file: HTTP 404', 404)), 'an instance deleted');
  assert.ok(!isOutage(new OrthancError('GET /changes: HTTP 401', 401)), 'a wrong password is no outage');
  assert.ok(!isOutage(new UnrecoverableError('not a JPEG, PNG or DICOM image')));
  assert.ok(!isOutage(new Error('syntax error at or near "SELEC"')));
});

test('an outage is retried with doubling delays capped at 5 minutes for a day; other failures 3 times', () => {
  const delays: number[] = [];
  for (let n = 1; ; n++) {
    const ms = retryDelayMs(DEFAULT_RETRY, n, refused());
    if (ms < 0) break;
    delays.push(ms);
  }
  assert.deepEqual(delays.slice(0, 8), [5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
  const total = delays.reduce((a, b) => a + b, 0);
  assert.ok(total >= 24 * 3600_000 && total < 24 * 3600_000 + 300_000, `waits ${total} ms in all`);
  assert.ok(delays.length < 1000, 'far below the attempts a job is given');
  const bug = new Error('audit log: x was reported present and then not found');
  assert.deepEqual(
    [1, 2, 3].map((n) => retryDelayMs(DEFAULT_RETRY, n, bug)),
    [5_000, 10_000, -1],
  );
  // The worker's log and its uploads read the same decision; jobs queued by an older cxr keep theirs.
  const job = (attemptsMade: number) => ({
    attemptsMade,
    opts: { attempts: 100_000, backoff: { type: OUTAGE_BACKOFF } },
  });
  assert.equal(nextRetryMs(DEFAULT_RETRY, job(3), refused()), 20_000);
  assert.equal(nextRetryMs(DEFAULT_RETRY, job(3), bug), null);
  assert.equal(nextRetryMs(DEFAULT_RETRY, job(1), new UnrecoverableError('corrupt')), null);
  const legacy = (attemptsMade: number) => ({
    attemptsMade,
    opts: { attempts: 3, backoff: { type: 'exponential', delay: 5_000 } },
  });
  assert.equal(nextRetryMs(DEFAULT_RETRY, legacy(2), refused()), 10_000);
  assert.equal(nextRetryMs(DEFAULT_RETRY, legacy(3), refused()), null);
});

test('a job that waited out a long outage still gets its 3 tries at another failure', async () => {
  const bug = new Error('audit log: x was reported present and then not found');
  // The worker's count in the job (its progress), as BullMQ keeps it between attempts and workers.
  const job = {
    attemptsMade: 0,
    progress: 0 as unknown,
    opts: { attempts: 100_000, backoff: { type: OUTAGE_BACKOFF } },
  };
  const fail = async (err: Error) => {
    await countOtherFailure(
      {
        get progress() {
          return job.progress;
        },
        updateProgress: async (p: object) => {
          job.progress = p;
        },
      },
      err,
    );
    job.attemptsMade++;
    return nextRetryMs(DEFAULT_RETRY, job, err);
  };
  for (let n = 0; n < 8; n++) assert.notEqual(await fail(refused()), null, 'an outage is waited out');
  assert.equal(otherFailuresOf(job), 0);
  assert.equal(await fail(bug), 5_000, 'the first other failure after 8 outage attempts is retried');
  assert.equal(await fail(refused()), 300_000, 'the outage goes on from where it was');
  assert.equal(await fail(bug), 10_000);
  assert.equal(await fail(bug), null, 'the third other failure ends it');
  assert.equal(otherFailuresOf(job), 3);
  // Unknown (a job an older worker failed): the attempts made stand in, as before.
  assert.equal(retryDelayMs(DEFAULT_RETRY, 3, bug, null), -1);
  assert.equal(retryDelayMs(DEFAULT_RETRY, 9, bug, 1), 5_000);
  // A film's fault is not counted: it is never retried anyway.
  const before = job.progress;
  await countOtherFailure(
    { progress: before, updateProgress: async (p) => void (job.progress = p) },
    new UnrecoverableError('x'),
  );
  assert.equal(job.progress, before);
});

test('a worker whose audit log cannot be reached says why it needs one, and names no option it lacks', () => {
  const r = spawnSync(process.execPath, [CLI, 'worker', '--threads', '1'], {
    encoding: 'utf8',
    timeout: 60_000,
    // Redis is only reached after the audit log is open.
    env: { ...process.env, CXR_REDIS_URL: 'redis://127.0.0.1:1', CXR_DB: 'postgres://cxr:s3cret@127.0.0.1:1/cxr' },
  });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /audit log postgres:\/\/cxr:\*+@127\.0\.0\.1:1\/cxr: connect ECONNREFUSED/);
  assert.match(r.stderr, /a worker cannot run without its audit log .*give another with --db or CXR_DB/);
  assert.doesNotMatch(r.stderr, /--no-audit|s3cret/);
});

const skip = stackUnavailable() ?? postgresUnavailable();
let stack: Stack | undefined;
let dir = '';
let modelDir = '';
let queue: JobQueue | undefined;
const children: ChildProcess[] = [];

before(async () => {
  if (skip) return;
  ({ dir, modelDir, stack } = await startModelStack('queue-outage', ['postgresql', 'redis']));
  queue = openQueue(stack.env.CXR_REDIS_URL, modelIdentity(modelDir).sha256);
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await stopQueueStack({ queue, stack, dir });
});

const env = () => ({ ...process.env, ...stack!.env, CXR_MODEL: modelDir });

/** Waits up to `ms` for `ok`, polling every 100 ms; fails with `why()`. */
async function until(ok: () => boolean | Promise<boolean>, ms: number, why: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) assert.fail(why());
    await new Promise((r) => setTimeout(r, 100));
  }
}

function enqueue(file: string): void {
  const r = spawnSync(process.execPath, [CLI, 'enqueue', '--priority', 'normal', file], {
    encoding: 'utf8',
    env: env(),
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^1 queued/);
}

test('a job queued with the audit database down completes once it is back, one row; a corrupt film fails at once', {
  skip: skip ?? false,
  timeout: 90_000,
}, async () => {
  const child = spawn(
    process.execPath,
    [CLI, 'worker', '--threads', '1', '--concurrency', '1', '--retry-delay', '300', '--retry-max-delay', '1500'],
    { env: env() },
  );
  children.push(child);
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  await until(
    () => /consuming/.test(log),
    30_000,
    () => `the worker did not start: ${log}`,
  );

  assert.equal(stackCmd(stack!.dir, 'down', ['postgresql']).code, 0);
  const film = fs.readFileSync(XRAY_JPEG);
  const id = jobIdFor(
    resultKeyOf(film),
    modelIdentity(modelDir).sha256,
    modelIdentity(modelDir).meta.defaultOperatingPoint,
  );
  enqueue(XRAY_JPEG);
  // Past the 3 attempts that used to end it: still waiting for its next try, named as the audit log's outage.
  await until(
    () => /attempt 4 failed: [^\n]*audit log[^\n]*; retrying in/.test(log),
    20_000,
    () => log,
  );
  assert.match(await (await queue!.getJob(id))!.getState(), /^(delayed|waiting|prioritized|active)$/);
  const password = new URL(stack!.env.CXR_DB).password;
  assert.ok(password && !log.includes(password), 'the log hides the database password');
  assert.match(log, /audit log[^\n]*postgres:\/\/cxr:\*+@127\.0\.0\.1:\d+\/cxr/);

  assert.equal(stackCmd(stack!.dir, 'up', ['postgresql']).code, 0);
  const state = async () => (await queue!.getJob(id))!.getState();
  await until(
    async () => (await state()) === 'completed',
    20_000,
    () => `job ${id} is not done:\n${log}`,
  );
  const audit = await openAuditStore(stack!.env.CXR_DB, { readonly: true });
  try {
    const rows = (await audit.list({ limit: 100 })).items;
    assert.deepEqual(
      rows.map((r) => r.resultKey),
      [resultKeyOf(film)],
      'one row for the film',
    );
  } finally {
    await audit.close();
  }

  // The film's own fault: one attempt, no retry, whatever the policy.
  const corrupt = path.join(dir, 'corrupt.jpeg');
  fs.writeFileSync(corrupt, film.subarray(0, 400));
  const badId = jobIdFor(
    resultKeyOf(film.subarray(0, 400)),
    modelIdentity(modelDir).sha256,
    modelIdentity(modelDir).meta.defaultOperatingPoint,
  );
  enqueue(corrupt);
  const failedLine = new RegExp(`job ${badId.replace(/[.+]/g, '\\$&')}: failed: `);
  // Done in Redis, and said: the worker prints the line from BullMQ's 'failed' event, which comes after the job is
  // stored as failed, so the line can still be on its way (a loaded machine) when Redis already says so.
  await until(
    async () => (await queue!.getJob(badId))?.finishedOn !== undefined && failedLine.test(log),
    20_000,
    () => log,
  );
  const bad = (await queue!.getJob(badId))!;
  assert.equal(await bad.getState(), 'failed', log);
  assert.equal(bad.attemptsMade, 1, 'failed at its first attempt');
  assert.match(log, failedLine);
  assert.doesNotMatch(log, new RegExp(`job ${badId.replace(/[.+]/g, '\\$&')}: attempt \\d+ failed`));

  child.kill('SIGTERM');
  assert.equal(await exited, 0, log);
});
