// Two different files with one SOP Instance UID, on a real Redis. A security tester uploaded film A (alice) and
// then film F (bob, other bytes, the same UID) to POST /jobs: bob got `already-done` with A's result (A's input
// sha256, requestedBy alice), although F's own prediction differs. A job id and an audit row found by the UID
// alone answered another film. Now a file or upload job is named by its bytes, and a row found by the UID answers
// only the film it was made from (queue/film_rows.ts); the same film sent again is still not predicted twice.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Predictor } from '../src/predict/predictor';
import {
  enqueueFile,
  type JobContext,
  type JobData,
  jobIdFor,
  jobIdOf,
  type JobQueue,
  type JobResult,
  openQueue,
  processJob,
  queueApi,
  type QueueApi,
  resultKeyOf,
  startWorker,
  UploadStore,
} from '../src/queue';
import { sha256Of } from '../src/hash';
import { type AuditStore, openAuditStore } from '../src/serve/audit';
import { DICOM_SAMPLES, needsData } from './shared-data';
import { type Stack, stackUnavailable } from './stack-fixture';
import { jobContext, startQueueStack, stopQueueStack } from './queue-stack';

const FILM_A = path.join(DICOM_SAMPLES, 'siim_1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm');
const FILM_F = path.join(DICOM_SAMPLES, 'siim_Fake_MONOHR1.dcm');
const skip = stackUnavailable() ?? needsData(FILM_A, FILM_F);
let stack: Stack | undefined;
let dir = '';
let predictor: Predictor;
let queue: JobQueue;

before(async () => {
  if (skip) return;
  ({ dir, predictor, stack, queue } = await startQueueStack('queue-uid-collision', ['redis']));
});
after(() => stopQueueStack({ queue, predictor, stack, dir }));

/** The two films: different bytes, one SOP Instance UID. */
function films() {
  const a = fs.readFileSync(FILM_A);
  const f = fs.readFileSync(FILM_F);
  assert.equal(resultKeyOf(a), resultKeyOf(f), 'the shared data holds two films with one UID');
  assert.notEqual(sha256Of(a), sha256Of(f));
  return { a, f, uid: resultKeyOf(a) };
}

const ctx = (store: AuditStore, over: Partial<JobContext> = {}): JobContext =>
  jobContext({ predictor, queue }, store, over);

/** The job's result once a worker finished it. */
async function finished(id: string): Promise<JobResult> {
  const end = Date.now() + 90_000;
  for (;;) {
    const job = (await queue.getJob(id))!;
    const state = await job.getState();
    // Read the job again once it is done: the read above may predate its result (BullMQ moves a job to
    // completed and stores its return value in one step, but our first read could come before that step).
    if (state === 'completed') return (await queue.getJob(id))!.returnvalue as JobResult;
    assert.ok(state !== 'failed' && Date.now() < end, `${id}: ${state} ${job.failedReason ?? ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** POST /jobs of one film, as `who`. */
async function submit(api: QueueApi, bytes: Buffer, who: string): Promise<{ id: string; status: string }> {
  const s = await api.submitUpload(bytes, `${who}.dcm`, { heatmap: false, requestedBy: who });
  assert.ok(s.id);
  return { id: s.id, status: s.status };
}

test('POST /jobs: a film with the UID of another is predicted and audited on its own; each is done once', {
  skip: skip || false,
  timeout: 180_000,
}, async () => {
  await queue.obliterate({ force: true });
  const { a, f, uid } = films();
  const store = await openAuditStore(path.join(dir, 'uploads.db'));
  // The server's queue, as cxr serve opens it (the API closes it).
  const api = queueApi({
    queue: openQueue(stack!.env.CXR_REDIS_URL, predictor.model.sha256),
    model: { sha256: predictor.model.sha256, defaultOperatingPoint: 'balanced' },
    orthanc: null,
  });
  const worker = await startWorker(ctx(store), { redisUrl: stack!.env.CXR_REDIS_URL, concurrency: 1 });
  try {
    const alice = await submit(api, a, 'alice');
    // The job data in Redis (kept for days) names the film by its hash, not by the uploaded file's name.
    const source = (await queue.getJob(alice.id))!.data.source;
    assert.deepEqual(source, { kind: 'upload', sha256: sha256Of(a), name: '' });
    const ra = await finished(alice.id);
    assert.equal(ra.outcome, 'predicted');
    assert.equal(ra.prediction?.input.sha256, sha256Of(a));

    const bob = await submit(api, f, 'bob');
    assert.equal(bob.status, 'queued', "another film's finished job does not answer for this one");
    assert.notEqual(bob.id, alice.id);
    const rf = await finished(bob.id);
    assert.equal(rf.outcome, 'predicted', JSON.stringify(rf));
    const pf = rf.prediction!;
    assert.equal(pf.input.sha256, sha256Of(f), "F's answer is of F's bytes");
    assert.equal(pf.requestedBy, 'bob');
    assert.notEqual(pf.id, ra.prediction?.id);
    const own = await predictor.predict(f, { operatingPoint: 'balanced', heatmap: false });
    assert.equal(pf.probability, own.probability, "F's own prediction");

    // Both audited: A under its UID (as before), F under its bytes.
    assert.equal(await store.count(), 2);
    const rowA = await store.findByResultKey(uid, predictor.model.sha256, 'balanced');
    assert.equal(rowA?.input.sha256, sha256Of(a));
    assert.equal(rowA?.requestedBy, 'alice');
    const rowF = await store.findByResultKey(`sha256:${sha256Of(f)}`, predictor.model.sha256, 'balanced');
    assert.equal(rowF?.id, pf.id);

    // The same film again is its finished job...
    assert.deepEqual(await submit(api, a, 'carol'), { ...alice, status: 'already-done' });
    assert.deepEqual(await submit(api, f, 'carol'), { ...bob, status: 'already-done' });
    // ...and once the jobs are gone (removed after KEEP_COMPLETED_S), its audit row: never predicted twice.
    await queue.remove(alice.id);
    await queue.remove(bob.id);
    for (const [bytes, row] of [
      [a, rowA],
      [f, rowF],
    ] as const) {
      const again = await finished((await submit(api, bytes, 'carol')).id);
      assert.equal(again.outcome, 'reused');
      assert.equal(again.prediction?.id, row?.id);
    }
    assert.equal(await store.count(), 2);
    assert.equal(await new UploadStore(queue, 1).totalBytes(), 0, 'every upload let go');
  } finally {
    await worker.close();
    await api.close();
    await store.close();
  }
});

test('file jobs (cxr enqueue): the film read is checked against the row of its UID', {
  skip: skip || false,
  timeout: 120_000,
}, async () => {
  const { uid } = films();
  const store = await openAuditStore(path.join(dir, 'files.db'));
  const fileJob = (file: string): JobData => ({
    source: { kind: 'file', path: file },
    resultKey: uid,
    model: { sha256: predictor.model.sha256 },
    operatingPoint: 'balanced',
    heatmap: false,
    requestedBy: null,
  });
  try {
    // Queued as two jobs (each named by its bytes), not the second found as the first's.
    await queue.obliterate({ force: true });
    const run = {
      modelSha256: predictor.model.sha256,
      operatingPoint: 'balanced',
      heatmap: false,
      requestedBy: null,
      priority: 'normal' as const,
    };
    assert.equal(await enqueueFile(queue, run, FILM_A), 'queued');
    assert.equal(await enqueueFile(queue, run, FILM_F), 'queued');
    assert.equal(await enqueueFile(queue, run, FILM_F), 'already-queued');
    const ra = await processJob(ctx(store), fileJob(FILM_A));
    const rf = await processJob(ctx(store), fileJob(FILM_F));
    assert.equal(rf.outcome, 'predicted');
    assert.equal(rf.prediction?.input.sha256, sha256Of(fs.readFileSync(FILM_F)));
    assert.notEqual(rf.prediction?.id, ra.prediction?.id);
    assert.equal((await processJob(ctx(store), fileJob(FILM_F))).prediction?.id, rf.prediction?.id, 'F once');
    assert.equal((await processJob(ctx(store), fileJob(FILM_A))).prediction?.id, ra.prediction?.id, 'A once');
    assert.equal(await store.count(), 2);
  } finally {
    await store.close();
  }
});

test('an upload job queued under its UID (before this change) completes and lets go of its film', {
  skip: skip || false,
  timeout: 120_000,
}, async () => {
  await queue.obliterate({ force: true });
  const { a, uid } = films();
  const store = await openAuditStore(path.join(dir, 'legacy.db'));
  const uploads = new UploadStore(queue, 1024 ** 3);
  const data: JobData = {
    source: { kind: 'upload', sha256: sha256Of(a), name: 'a.dcm' },
    resultKey: uid,
    model: { sha256: predictor.model.sha256 },
    operatingPoint: 'balanced',
    heatmap: false,
    requestedBy: 'alice',
  };
  const legacyId = jobIdFor(uid, predictor.model.sha256, 'balanced', 'upload');
  assert.equal(await uploads.put(sha256Of(a), a, legacyId), 'stored');
  await queue.add('predict', data, { jobId: legacyId });
  const worker = await startWorker(ctx(store), { redisUrl: stack!.env.CXR_REDIS_URL, concurrency: 1 });
  try {
    assert.equal((await finished(legacyId)).outcome, 'predicted');
    assert.equal(await uploads.get(sha256Of(a)), null, 'let go under the id it was held for');
    assert.equal(await uploads.totalBytes(), 0);
  } finally {
    await worker.close();
    await store.close();
  }
});

test("bytes held under an upload's digest that are not that film are refused, not predicted under its key", {
  skip: skip || false,
  timeout: 120_000,
}, async () => {
  await queue.obliterate({ force: true });
  const { a, f, uid } = films();
  const store = await openAuditStore(path.join(dir, 'held-other.db'));
  try {
    const data: JobData = {
      source: { kind: 'upload', sha256: sha256Of(a), name: '' },
      resultKey: uid,
      model: { sha256: predictor.model.sha256 },
      operatingPoint: 'balanced',
      heatmap: false,
      requestedBy: null,
    };
    // Another program wrote F where A's upload is kept (the store does not check what it is given).
    const uploads = new UploadStore(queue, 1024 ** 3);
    assert.equal(await uploads.put(sha256Of(a), f, jobIdOf(data)), 'stored');
    const e = await processJob(ctx(store, { uploads }), data, jobIdOf(data)).catch((x: unknown) => x);
    assert.ok(e instanceof Error && /the held upload is not the film queued/.test(e.message), String(e));
    assert.equal(await store.count(), 0, 'nothing audited');
  } finally {
    await store.close();
  }
});
