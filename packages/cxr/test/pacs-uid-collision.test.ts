// A film in the PACS and an uploaded film of other bytes with the same SOP Instance UID, on the stack's Orthanc
// and Redis. A security tester stored film A in Orthanc, had bob upload film F (same UID) as a job, then had alice
// ask for A by its Orthanc id: her job answered "predicted" with F's audit row (F's sha256, requestedBy bob) beside
// A's verdict, the SR written into the PACS had A's probability, and the audit log had only F's row: the prediction
// that went into the patient's study was never audited. `cxr orthanc sync` did the same (insertOnce by UID).
// A row found by the UID now answers only the film of its bytes (queue/film_rows.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { OrthancClient } from '../src/pacs';
import type { Predictor } from '../src/predict/predictor';
import { type JobContext, type JobData, jobIdOf, type JobQueue, processJob, resultKeyOf } from '../src/queue';
import { sha256Of } from '../src/hash';
import { type AuditStore, openAuditStore } from '../src/serve/audit';
import { CLI } from './serve-fixtures';
import { DICOM_SAMPLES, needsData } from './shared-data';
import { orthanc, type Stack, stackUnavailable } from './stack-fixture';
import { jobContext, orthancClient, startQueueStack, stopQueueStack } from './queue-stack';

const FILM_A = path.join(DICOM_SAMPLES, 'siim_1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm');
const FILM_F = path.join(DICOM_SAMPLES, 'siim_Fake_MONOHR1.dcm');
const skip = stackUnavailable() ?? needsData(FILM_A, FILM_F);
let stack: Stack | undefined;
let dir = '';
let modelDir = '';
let predictor: Predictor;
let queue: JobQueue;
let client: OrthancClient;

before(async () => {
  if (skip) return;
  ({ dir, modelDir, predictor, stack, queue } = await startQueueStack('pacs-uid-collision', ['orthanc', 'redis']));
  client = orthancClient(stack);
});
after(() => stopQueueStack({ queue, predictor, stack, dir }));

const ctx = (store: AuditStore): JobContext => jobContext({ predictor, queue }, store, { orthanc: client });

const job = (source: JobData['source'], resultKey: string, requestedBy: string): JobData => ({
  source,
  resultKey,
  model: { sha256: predictor.model.sha256 },
  operatingPoint: 'balanced',
  heatmap: true,
  requestedBy,
});

/** Bob's upload job of `bytes`, its film held as POST /jobs holds it, run by a worker. */
async function bobUploads(store: AuditStore, bytes: Buffer) {
  const c = ctx(store);
  const data = job({ kind: 'upload', sha256: sha256Of(bytes), name: 'f.dcm' }, resultKeyOf(bytes), 'bob');
  await c.uploads.put(sha256Of(bytes), bytes, jobIdOf(data));
  const r = await processJob(c, data);
  assert.equal(r.outcome, 'predicted');
  assert.equal(r.prediction?.input.sha256, sha256Of(bytes));
  return r.prediction!;
}

/** Every instance in Orthanc but `keep` (the results cxr stored), deleted. */
async function deleteAllBut(keep: string): Promise<void> {
  const ids = (await (await orthanc(stack!, '/instances')).json()) as string[];
  for (const id of ids.filter((i) => i !== keep)) {
    assert.equal((await orthanc(stack!, `/instances/${id}`, { method: 'DELETE' })).status, 200);
  }
}

/** Film A in the PACS (alone: results stored by an earlier test deleted), F, their UID, and A's own answer. */
async function films() {
  const a = fs.readFileSync(FILM_A);
  const f = fs.readFileSync(FILM_F);
  const uid = resultKeyOf(a);
  assert.equal(resultKeyOf(f), uid, 'the shared data holds two films with one UID');
  const res = await orthanc(stack!, '/instances', { method: 'POST', body: new Uint8Array(a) });
  assert.equal(res.status, 200);
  const instance = ((await res.json()) as { ID: string }).ID;
  await deleteAllBut(instance);
  const mine = await predictor.predict(a, { operatingPoint: 'balanced', heatmap: false });
  return { a, f, uid, instance, mine };
}

test('cxr orthanc sync audits the film it predicted, though an upload of other bytes holds its UID', {
  skip: skip || false,
  timeout: 240_000,
}, async () => {
  const { a, f, uid, mine } = await films();
  const syncDb = path.join(dir, 'sync.db');
  const syncStore = await openAuditStore(syncDb);
  await bobUploads(syncStore, f);
  await syncStore.close();
  const sync = spawnSync(
    process.execPath,
    [CLI, 'orthanc', 'sync', '--once', '--since-start', '--state', path.join(dir, 's.json'), '--json'],
    { env: { ...process.env, ...stack!.env, CXR_MODEL: modelDir, CXR_DB: syncDb }, encoding: 'utf8', timeout: 120_000 },
  );
  assert.equal(sync.status, 0, sync.stderr);
  assert.equal(JSON.parse(sync.stdout).processed, 1, sync.stdout);
  const synced = await openAuditStore(syncDb);
  try {
    assert.equal(await synced.count(), 2, 'the film whose results went into the PACS is audited');
    const row = await synced.findByResultKey(`sha256:${sha256Of(a)}`, predictor.model.sha256, 'balanced');
    assert.equal(row?.input.sha256, sha256Of(a));
    assert.equal(row?.probability, mine.probability);
    assert.equal((await synced.findByResultKey(uid, predictor.model.sha256, 'balanced'))?.requestedBy, 'bob');
  } finally {
    await synced.close();
  }
});

test("a worker's Orthanc job answers and audits the PACS film itself, not an upload's row of its UID", {
  skip: skip || false,
  timeout: 240_000,
}, async () => {
  // POST /jobs naming the instance, the audit log holding bob's row of F under the UID.
  const { a, f, uid, instance, mine } = await films();
  const store = await openAuditStore(path.join(dir, 'jobs.db'));
  try {
    const fRow = await bobUploads(store, f);
    const alice = await processJob(ctx(store), job({ kind: 'orthanc', instanceId: instance }, uid, 'alice'));
    assert.equal(alice.outcome, 'predicted');
    const p = alice.prediction!;
    assert.notEqual(p.id, fRow.id, "not bob's row");
    assert.equal(p.input.sha256, sha256Of(a), "A's bytes");
    assert.equal(p.requestedBy, 'alice');
    assert.equal(p.probability, mine.probability, "A's own probability, as the SR in the PACS has it");
    assert.deepEqual(
      await store.get(p.id),
      await store.findByResultKey(`sha256:${sha256Of(a)}`, p.model.sha256, 'balanced'),
    );
    assert.equal(await store.count(), 2);

    // Asked again once its results are in the PACS: done, answered with A's row.
    const again = await processJob(ctx(store), job({ kind: 'orthanc', instanceId: instance }, uid, 'alice'));
    assert.equal(again.outcome, 'already-done');
    assert.equal(again.prediction?.id, p.id);
    assert.equal(await store.count(), 2);
  } finally {
    await store.close();
  }
});
