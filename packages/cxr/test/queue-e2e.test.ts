// The job queue end to end, on the real services of scripts/stack.sh (Orthanc and Redis) and
// real `cxr` processes: films sent into Orthanc, `cxr orthanc sync --once --queue`, two
// `cxr worker`s; then exactly one SR and one Secondary Capture per chest film in its study and
// one audit row per film. Again: nothing is added. Then a worker is killed with kill -9 in the
// middle of a job (after its audit row, before its results are stored): another worker retries
// the job once its lock expires, and there is still exactly one SR, SC and audit row per film.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { readSource } from '../src/dicom_out';
import { modelIdentity } from '../src/models/io';
import { type JobQueue, openQueue, queueDepth } from '../src/queue';
import { openAuditStore } from '../src/serve/audit';
import { assertOneResultEach, uploadSamples, findInstances } from './pacs-results';
import { startModelStack, stopQueueStack } from './queue-stack';
import { orthanc, type Stack, stackUnavailable } from './stack-fixture';

const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const skip = stackUnavailable();
if (skip) console.log(`# queue-e2e skipped: ${skip}`);

let stack: Stack | undefined;
let dir = '';
let modelDir = '';
let queue: JobQueue | undefined;
const children: ChildProcess[] = [];

before(async () => {
  if (skip) return;
  ({ dir, modelDir, stack } = await startModelStack('queue-e2e', []));
  queue = openQueue(stack.env.CXR_REDIS_URL, modelIdentity(modelDir).sha256);
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await stopQueueStack({ queue, stack, dir });
});

/** The audit log: the stack's PostgreSQL when it has one, else an SQLite file. */
const auditTarget = () => stack!.env.CXR_DB ?? path.join(dir, 'audit.db');

/** Credentials only through the environment, as in production. */
const env = (extra: Record<string, string> = {}) => ({
  ...process.env,
  ...stack!.env,
  CXR_MODEL: modelDir,
  CXR_DB: auditTarget(),
  ...extra,
});

function cxr(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: env(), cwd: dir });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

interface Worker {
  child: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
}

/**
 * A `cxr worker` with the shortest lock it takes (a dead worker's job is retried within ~5 s); resolves once it
 * consumes.
 */
async function startWorker(extra: Record<string, string> = {}, args: string[] = []): Promise<Worker> {
  const child = spawn(
    process.execPath,
    [MAIN, 'worker', '--threads', '1', '--lock-duration', '5000', '--stalled-interval', '500', ...args],
    { env: env(extra), cwd: dir },
  );
  children.push(child);
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  await waitFor(() => /consuming/.test(log) || child.exitCode !== null, 60_000, 'the worker to start');
  assert.match(log, /consuming/, log);
  return { child, log: () => log, exited };
}

async function waitFor(ok: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every job finished: none waiting or running, `completed` done. */
const drained = (completed: number) => async () => {
  const d = await queueDepth(queue!);
  assert.equal(d.failed, 0, 'no job failed');
  return d.waiting === 0 && d.active === 0 && d.completed === completed;
};

/** The audit log's rows: how many, and how many per result key (SOP Instance UID). */
async function auditRows(): Promise<{ total: number; perKey: Map<string | null, number> }> {
  const store = await openAuditStore(auditTarget(), { readonly: true });
  try {
    const page = await store.list({ limit: 1000 });
    const perKey = new Map<string | null, number>();
    for (const r of page.items) perKey.set(r.resultKey, (perKey.get(r.resultKey) ?? 0) + 1);
    return { total: page.total, perKey };
  } finally {
    await store.close();
  }
}

/** Exactly one row per film, keyed by the film's SOP Instance UID. */
async function assertOneAuditRowEach(films: Map<string, string>): Promise<void> {
  const rows = await auditRows();
  assert.equal(rows.total, films.size, 'one audit row per film');
  assert.deepEqual([...rows.perKey.keys()].sort(), [...films.keys()].sort(), 'keyed by the films');
  assert.ok(
    [...rows.perKey.values()].every((n) => n === 1),
    'no film has two rows',
  );
}

async function stop(w: Worker): Promise<void> {
  w.child.kill('SIGTERM');
  assert.equal(await w.exited, 0, w.log());
  assert.match(w.log(), /SIGTERM: finishing the jobs in progress/);
}

test('sync --queue, two workers: one SR, SC and audit row per film; again, and after a kill -9 mid-job: still one', {
  skip: skip ?? false,
  timeout: 400_000,
}, async () => {
  const films = await uploadSamples(stack!);
  assert.equal(films.size, 4, 'the six samples hold four distinct chest instances');

  // Two workers wait; the change feed is queued (not predicted in the sync process), they drain it. Each takes
  // one job at a time and holds it 2 s after its audit row: a job waits 2 s or more for a worker that is busy,
  // so both take jobs unless one is stalled for the 6 s the other takes over the four, however they are scheduled.
  const holding = { CXR_WORKER_PAUSE_AFTER_AUDIT_MS: '2000' };
  // Started side by side (each loads the engine and the model): the file waits for the slower, not for both.
  const workers = await Promise.all([
    startWorker(holding, ['--concurrency', '1']),
    startWorker(holding, ['--concurrency', '1']),
  ]);
  const state = path.join(dir, 'state.json');
  const sync = await cxr(['orthanc', 'sync', '--once', '--since-start', '--queue', '--state', state, '--json']);
  assert.equal(sync.code, 0, sync.stderr);
  assert.equal((JSON.parse(sync.stdout) as { processed: number }).processed, 4, sync.stderr);
  assert.match(sync.stderr, /4 queued/);
  await waitFor(drained(4), 120_000, 'the first batch');
  for (const w of workers) await stop(w);
  assert.ok(
    workers.every((w) => /predicted/.test(w.log())),
    'both workers took jobs',
  );
  await assertOneResultEach(stack!, films);
  await assertOneAuditRowEach(films);

  // Again, through the sync and a full backfill: every film is found done, nothing is queued. Neither queues
  // anything when right, so they run side by side; the counts below would show a film queued twice.
  const [again, backfill] = await Promise.all([
    cxr(['orthanc', 'sync', '--once', '--since-start', '--queue', '--state', state, '--json']),
    cxr(['enqueue', '--orthanc-all', '--json']),
  ]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((JSON.parse(again.stdout) as { processed: number }).processed, 0, again.stderr);
  assert.equal(backfill.code, 0, backfill.stderr);
  const b = JSON.parse(backfill.stdout) as Record<string, number>;
  assert.deepEqual(
    { queued: b.queued, alreadyDone: b.alreadyDone, skipped: b.skipped },
    { queued: 0, alreadyDone: 4, skipped: 8 },
  );
  await assertOneResultEach(stack!, films);
  await assertOneAuditRowEach(films);

  // A second batch: four new films (new SOP Instance UIDs in the same studies).
  for (const [k, id] of (await findInstances(stack!, { Modality: 'CR' }))
    .concat(await findInstances(stack!, { Modality: 'DX' }))
    .entries()) {
    const newUid = `2.25.${9_000_000_000 + k}`;
    const modified = await orthanc(stack!, `/instances/${id}/modify`, {
      method: 'POST',
      body: JSON.stringify({ Replace: { SOPInstanceUID: newUid }, Force: true }),
    });
    assert.equal(modified.status, 200);
    const bytes = Buffer.from(await modified.arrayBuffer());
    assert.equal((await orthanc(stack!, '/instances', { method: 'POST', body: new Uint8Array(bytes) })).status, 200);
    films.set(newUid, readSource(bytes).studyInstanceUid);
  }
  assert.equal(films.size, 8);
  // This worker pauses after writing a job's audit row and before storing its SR and SC: it is
  // killed there, the worst moment (a retry must neither add a second row nor lose the results). It is the only
  // worker, so it starts while the batch is queued: whichever is first, it takes the batch's first job.
  const [batch, doomed] = await Promise.all([
    cxr(['enqueue', '--orthanc-all', '--priority', 'normal', '--json']),
    startWorker({ CXR_WORKER_PAUSE_AFTER_AUDIT_MS: '60000' }, ['--concurrency', '1']),
  ]);
  assert.equal(batch.code, 0, batch.stderr);
  assert.equal((JSON.parse(batch.stdout) as Record<string, number>).queued, 4, batch.stderr);
  await waitFor(async () => (await auditRows()).total === 5, 60_000, 'the first audit row of the second batch');
  doomed.child.kill('SIGKILL');
  assert.equal(await doomed.exited, null, 'killed, not exited');
  assert.equal((await queueDepth(queue!)).active, 1, 'its job is still marked running');
  assert.equal((await findInstances(stack!, { Modality: 'SR' })).length, 4, 'its SR was not stored');

  const rescuer = await startWorker();
  await waitFor(drained(8), 120_000, 'the second batch, the killed job included');
  await stop(rescuer);
  assert.match(rescuer.log(), /stopped answering; queued again/, 'the killed job was found stalled and retried');
  await assertOneResultEach(stack!, films);
  await assertOneAuditRowEach(films);

  // Rerun: the whole archive offered again, nothing is queued, nothing is added.
  const rerun = await cxr(['enqueue', '--orthanc-all', '--json']);
  assert.equal(rerun.code, 0, rerun.stderr);
  const r = JSON.parse(rerun.stdout) as Record<string, number>;
  assert.deepEqual({ queued: r.queued, alreadyDone: r.alreadyDone }, { queued: 0, alreadyDone: 8 });
  await assertOneResultEach(stack!, films);
  await assertOneAuditRowEach(films);
});
