// Hospital IT, third walk (the first two: integrator-s37.test.ts, integrator2-s37.test.ts), on the services of
// scripts/stack.sh.
//
// POST /jobs naming an Orthanc instance whose report and heat map the sync had stored answered `queued`, where
// `cxr enqueue --orthanc-all` said "already done" for the same film (the worker then found the results and predicted
// nothing). It now answers `already-done` with a reason saying so; the job is still there to follow.
//
// Modality RG (a film digitised from a plate) was read by `cxr predict` without a warning, but the sync and the
// backfill skipped it (`modality RG is not CR, DX or DR`): the PACS's rule and the image check's differed. One list
// now (explain/image_checks.ts FILM_MODALITIES): RG is taken from the PACS; RF and PX, which the check let through
// and the PACS skipped, are warned about as no plain film.
//
// A lateral view named by a request was queued ("its report says why it cannot be assessed"), but the worker ran it
// through the sync's rule and skipped it: the job completed with no prediction. It is now predicted.
//
// A worker and a server on different audit logs: the job's result named a prediction id that GET /predictions/ID on
// the server answered 404 "no prediction with id ...". On a server with a job queue the 404 now says why that may be.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { FILM_MODALITIES, imageChecks } from '../src/explain/image_checks';
import { classifyInstance, type OrthancClient, processInstance, storedResults } from '../src/pacs';
import {
  enqueueInstance,
  type JobQueue,
  type JobSpec,
  queueApi,
  queueDepth,
  startWorker,
  UploadStore,
} from '../src/queue';
import { RESULTS_IN_PACS_REASON } from '../src/queue/api';
import type { Predictor } from '../src/predict/predictor';
import { buildApp } from '../src/serve/app';
import { type AuditStore, openAuditStore } from '../src/serve/audit';
import { numberedFilm } from './numbered-film';
import { orthancClient, startQueueStack, stopQueueStack } from './queue-stack';
import { type Stack, stackUnavailable, storeInstance } from './stack-fixture';

test('one modality rule: what the PACS takes is what every prediction reads without a MODALITY warning', () => {
  const film = (modality: string) => ({
    Modality: modality,
    BodyPartExamined: 'CHEST',
    ViewPosition: 'PA',
    SOPInstanceUID: '2.25.31',
    StudyInstanceUID: '2.25.32',
  });
  const pixels = new Uint8Array(64 * 64).fill(128);
  const warned = (modality: string) => imageChecks({ pixels, size: 64, modality }).some((c) => c.code === 'MODALITY');
  for (const m of ['CR', 'DX', 'DR', 'RG', 'RF', 'PX', 'MG', 'XA', 'IO', 'CT', 'MR', 'SR', 'OT', 'US']) {
    const taken = classifyInstance(film(m)).accept;
    assert.equal(taken, !warned(m), `${m}: the PACS ${taken ? 'takes' : 'skips'} it, the check agrees`);
  }
  // A film digitised from a plate is a plain film: read by both.
  assert.ok(FILM_MODALITIES.includes('RG'));
  assert.deepEqual(classifyInstance(film('RG')), { accept: true });
  const skipped = classifyInstance(film('RF')) as { reason: string };
  assert.equal(skipped.reason, 'modality RF is not CR, DX, DR or RG');
  // Fluoroscopy is an X-ray image: the warning does not call it "not a radiograph".
  const message = imageChecks({ pixels, size: 64, modality: 'RF' }).find((c) => c.code === 'MODALITY')?.message;
  assert.equal(message, 'DICOM modality (0008,0060) RF: not a plain film (modality CR, DX, DR or RG)');
});

const skip = stackUnavailable();
let stack: Stack | undefined;
let dir = '';
let predictor: Predictor;
let queue: JobQueue;
let client: OrthancClient;
let spec: JobSpec;
/** The workers' audit log; the server's is another (a misconfiguration the 404 must explain). */
let workerAudit: AuditStore;
let serverAudit: AuditStore;
let app: FastifyInstance | undefined;

before(async () => {
  if (skip) return;
  ({ dir, predictor, stack, queue } = await startQueueStack('integrator-s38', ['orthanc', 'redis']));
  client = orthancClient(stack);
  workerAudit = await openAuditStore(path.join(dir, 'worker.db'));
  serverAudit = await openAuditStore(path.join(dir, 'server.db'));
  spec = {
    modelSha256: predictor.model.sha256,
    operatingPoint: predictor.model.meta.defaultOperatingPoint,
    heatmap: false,
    requestedBy: null,
    priority: 'normal',
  };
});
after(async () => {
  await app?.close();
  await workerAudit?.close();
  await serverAudit?.close();
  await stopQueueStack({ queue, predictor, stack, dir });
});

/** A small chest film of its own (UIDs from `n`), of this modality and ViewPosition. */
const film = (n: number, modality: string, view: string) =>
  numberedFilm(n, { uidRoot: 738000, pixel: (i, k) => (i % 256) ^ (k * 41), modality, view });

const store = (bytes: Buffer) => storeInstance(stack!, bytes);

/** Runs a worker on the workers' audit log until no job waits or runs; its log. */
async function drain(): Promise<string> {
  let log = '';
  const running = await startWorker(
    {
      predictor,
      store: workerAudit,
      uploads: new UploadStore(queue, 0),
      orthanc: client,
      storeImages: false,
      log: (l) => {
        log += `${l}\n`;
      },
    },
    { redisUrl: stack!.env.CXR_REDIS_URL, concurrency: 1 },
  );
  try {
    const end = Date.now() + 60_000;
    for (;;) {
      const d = await queueDepth(queue);
      if (d.waiting === 0 && d.active === 0) break;
      assert.ok(Date.now() < end, `the worker did not finish: ${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await running.close();
  }
  return log;
}

const api = () =>
  queueApi({
    queue,
    model: { sha256: predictor.model.sha256, defaultOperatingPoint: predictor.model.meta.defaultOperatingPoint },
    orthanc: client,
  });
const opts = { heatmap: false, requestedBy: null };

test('POST /jobs for a film the sync did: already-done, as the backfill says, and not predicted again', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const id = await store(film(1, 'DX', 'PA'));
  // The sync (not queued) predicts it and stores its report and heat map in the PACS.
  assert.equal(await processInstance(client, predictor, id), 'processed');
  const backfill = await enqueueInstance(queue, client, spec, id);
  assert.deepEqual(backfill, { outcome: 'already-done', id: null }, 'the backfill counts it done');
  const [answer] = await api().submitOrthancAll([id], opts);
  assert.equal(answer.status, 'already-done', JSON.stringify(answer));
  assert.equal(answer.reason, RESULTS_IN_PACS_REASON);
  assert.ok(answer.id, 'it still has a job to follow');
  await drain();
  const job = await api().status(answer.id);
  assert.equal(job?.status, 'completed', JSON.stringify(job));
  assert.equal(job?.outcome, 'already-done', 'the worker found the results');
  const ref = { studyInstanceUid: '2.25.738023', sopInstanceUid: '2.25.738018' };
  const results = await storedResults(client, ref, { sha256: spec.modelSha256 }, spec.operatingPoint);
  assert.equal(results.sr.length, 1, 'no second report');
});

test('a digitised film (RG) is taken by the backfill, as cxr predict reads it', {
  skip: skip ?? false,
  timeout: 60_000,
}, async () => {
  const id = await store(film(2, 'RG', 'PA'));
  const r = await enqueueInstance(queue, client, spec, id);
  assert.equal(r.outcome, 'queued', JSON.stringify(r));
  await drain();
  const job = await api().status(r.id!);
  assert.equal(job?.outcome, 'predicted', JSON.stringify(job));
});

test('a lateral named by a request is predicted; its prediction, on another audit log, is a 404 saying why', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const id = await store(film(3, 'DX', 'LL'));
  const jobs = api();
  const [answer] = await jobs.submitOrthancAll([id], opts);
  assert.equal(answer.status, 'queued', JSON.stringify(answer));
  await drain();
  const job = await jobs.status(answer.id!);
  assert.equal(job?.outcome, 'predicted', `the worker skipped the film a request named: ${JSON.stringify(job)}`);
  const prediction = job?.prediction as { id: string; verdict: { status: string } };
  assert.equal(prediction.verdict.status, 'cannot-assess');

  // The server reads another audit log than the worker wrote: the id the job names is unknown to it.
  app = await buildApp({ predictor, audit: serverAudit, jobs });
  const res = await app.inject({ method: 'GET', url: `/api/v1/predictions/${prediction.id}` });
  assert.equal(res.statusCode, 404, res.body);
  const detail = (res.json() as { detail: string }).detail;
  assert.ok(detail.includes(`no prediction with id ${prediction.id}`), detail);
  assert.ok(/written by the cxr worker/.test(detail) && /must share one/.test(detail), detail);
});
