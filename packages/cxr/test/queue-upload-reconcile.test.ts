// A `cxr serve` killed (kill -9) between holding a POST /api/v1/jobs upload in Redis and queueing its job left
// the film held for a job that never existed, its bytes counted against --job-uploads-mb for good: each such
// crash shrank the budget until /jobs answered 503 BUSY for ever. The crash is made here as it happens, by
// holding a film through the store the API uses and never queueing its job, on a real Redis (scripts/stack.sh).
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { Redis } from 'ioredis';
import {
  enqueue,
  type JobData,
  jobIdFor,
  jobIdOf,
  type JobQueue,
  openQueue,
  queueApi,
  UploadStore,
} from '../src/queue';
import { resultKeyOf } from '../src/queue/job';
import { dataFor, type JobSpec } from '../src/queue/sources';
import { XRAY_JPEG } from './serve-fixtures';
import { type Stack, stackUnavailable, startStack, stopStack } from './stack-fixture';
import { sha256Of } from '../src/hash';

const skip = stackUnavailable();
let stack: Stack | undefined;
let queue: JobQueue | undefined;
/** For what the store does not offer: emptying Redis between tests, writing a holder as an older version did. */
let redis: Redis | undefined;

const MODEL = '7'.repeat(64);
/**
 * Short, for the test: the servers' is a minute (uploads.ts ORPHAN_GRACE_MS). Long enough that what must happen
 * within it (a BUSY, a fresh holder kept) still does on a loaded machine that deschedules the test for a while.
 */
const GRACE_MS = 4_000;
const spec: JobSpec = {
  modelSha256: MODEL,
  operatingPoint: 'balanced',
  heatmap: false,
  requestedBy: null,
  priority: 'normal',
};

before(() => {
  if (skip) return;
  stack = startStack('queue-upload-reconcile', ['redis']);
  queue = openQueue(stack.env.CXR_REDIS_URL, MODEL);
  redis = new Redis(stack.env.CXR_REDIS_URL);
});
beforeEach(async () => {
  await redis?.flushdb();
});
after(async () => {
  await queue?.close();
  redis?.disconnect();
  stopStack(stack);
});

/** A film of about `extra` bytes: a real JPEG with random bytes after it, as a scanner's padding. */
const film = (extra: number) => Buffer.concat([fs.readFileSync(XRAY_JPEG), randomBytes(extra)]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The job an upload of `bytes` to this model makes (POST /jobs's), at `operatingPoint`. */
function uploadJob(bytes: Buffer, operatingPoint = 'balanced'): JobData {
  const source = { kind: 'upload' as const, sha256: sha256Of(bytes), name: 'film.jpg' };
  return dataFor({ ...spec, operatingPoint }, source, resultKeyOf(bytes));
}

/** What POST /jobs does before it queues: the film held for its job (the crash comes after). */
async function holdOnly(store: UploadStore, bytes: Buffer, job = uploadJob(bytes)): Promise<void> {
  assert.equal(await store.put(sha256Of(bytes), bytes, jobIdOf(job)), 'stored');
}

test('an upload whose server died before queueing its job is let go past the grace: the budget takes films again', {
  skip: skip ?? false,
  timeout: 60_000,
}, async () => {
  const cap = 40_000_000;
  const api = queueApi({
    queue: queue!,
    model: { sha256: MODEL, defaultOperatingPoint: 'balanced' },
    orthanc: null,
    uploadCapBytes: cap,
    orphanGraceMs: GRACE_MS,
  });
  const store = new UploadStore(queue!, cap);
  const crashed = film(25_000_000);
  const other = film(20_000_000); // made before the hold: its 20 MB of random bytes take a while
  const opts = { heatmap: false, requestedBy: null };
  await holdOnly(store, crashed);

  // At once, it may be another server's upload whose job is being queued right now: the budget is full.
  await assert.rejects(api.submitUpload(other, 'other.jpg', opts), { statusCode: 503, code: 'BUSY' });
  assert.ok(await store.get(sha256Of(crashed)), 'held within the grace');

  await sleep(GRACE_MS + 300);
  const r = await api.submitUpload(other, 'other.jpg', opts);
  assert.equal(r.status, 'queued', 'the crashed upload no longer takes the room');
  assert.equal(await store.get(sha256Of(crashed)), null, 'its film is gone');
  assert.equal(await store.totalBytes(), other.length, 'only the queued film is counted');
  assert.ok(await store.get(sha256Of(other)), 'the new film is held for its job');
});

test('only holders with no job that can run go: a queued job, another model and a fresh holder keep theirs', {
  skip: skip ?? false,
  timeout: 60_000,
}, async () => {
  const store = new UploadStore(queue!, 1e9, GRACE_MS);
  // One film, wanted at two operating points: one job queued, the other's server died before queueing it.
  const shared = film(1000);
  const queued = uploadJob(shared);
  const lost = uploadJob(shared, 'high-sensitivity');
  await holdOnly(store, shared, lost);
  assert.equal(await store.put(sha256Of(shared), shared, jobIdOf(queued)), 'already-there');
  await enqueue(queue!, queued);
  // Held for another model's job: that model's servers know its queue, this one does not.
  const foreign = film(1000);
  const foreignId = jobIdFor(resultKeyOf(foreign), 'e'.repeat(64), 'balanced', 'upload');
  assert.equal(await store.put(sha256Of(foreign), foreign, foreignId), 'stored');
  await sleep(GRACE_MS + 300);
  // Held just now, its job not queued yet: another server between the two steps.
  const fresh = film(1000);
  await holdOnly(store, fresh);

  assert.deepEqual(await store.releaseOrphans(), { holders: 1, droppedBytes: 0 }, 'the lost job only');
  assert.ok(await store.get(sha256Of(fresh)), 'a holder younger than the grace stays');
  assert.ok(await store.get(sha256Of(foreign)), "another model's holder stays");
  // Before the fix the lost job held the shared film for good, after its queued job was done with it.
  assert.equal(await store.release(sha256Of(shared), jobIdOf(queued)), 'dropped');
  assert.equal(await store.totalBytes(), fresh.length + foreign.length);
});

test('a holder from before the stamps goes one grace after a sweep first sees it', {
  skip: skip ?? false,
  timeout: 60_000,
}, async () => {
  const store = new UploadStore(queue!, 1e9, GRACE_MS);
  const old = film(1000);
  const job = uploadJob(old);
  await holdOnly(store, old, job);
  // As the version before the stamps held it, years ago for all it says.
  await redis!.hdel(`cxr:upload:${sha256Of(old)}`, `since:${jobIdOf(job)}`);
  assert.deepEqual(await store.releaseOrphans(), { holders: 0, droppedBytes: 0 }, 'its age is not known yet');
  await sleep(GRACE_MS + 300);
  assert.deepEqual(await store.releaseOrphans(), { holders: 1, droppedBytes: old.length });
  assert.equal(await store.get(sha256Of(old)), null);
  assert.equal(await store.totalBytes(), 0);
});
