// Orthanc jobs on the stack's Orthanc and Redis. QA (as hospital IT) queued an archive's DICOM files with
// `cxr enqueue /archive`, let a worker finish, then sent the same films to Orthanc: `cxr enqueue
// --orthanc-all` and `cxr orthanc sync --queue` answered alreadyDone and the studies got no SR and no
// Secondary Capture (file and Orthanc jobs shared one job id, and a finished job counted as done); the same
// after an admin deleted a Secondary Capture. POST /api/v1/jobs with an unknown instance id answered 500
// with the ids before it queued; a worker failed an Orthanc job at once for a bug (`isDicom is not a
// function`), and retried a refused login three times without a word; `cxr worker` with a wrong Orthanc
// password started and took jobs; the sync hung without a word while Redis was down, and SIGTERM did not
// stop it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UnrecoverableError } from 'bullmq';
import { OrthancClient, storedResults } from '../src/pacs';
import { InputError } from '../src/predict/errors';
import { Predictor } from '../src/predict/predictor';
import {
  DEFAULT_RETRY,
  enqueue,
  enqueueFile,
  enqueueInstance,
  jobIdFor,
  jobIdOf,
  type JobData,
  type JobQueue,
  type JobSpec,
  processJob,
  queueApi,
  queueDepth,
  retryDelayMs,
  startWorker,
  syncHandler,
  UploadStore,
} from '../src/queue';
import { readSource } from '../src/dicom_out';
import { sha256Of } from '../src/hash';
import { type AuditStore, openAuditStore } from '../src/serve/audit';
import { HttpError } from '../src/serve/http_error';
import { jobContext, orthancClient, startQueueStack, stopQueueStack } from './queue-stack';
import { CLI, DICOM_DIR, DICOM_FILE, spawnServer } from './serve-fixtures';
import { orthanc, type Stack, stackCmd, stackUnavailable } from './stack-fixture';

const skip = stackUnavailable();
const FILM2 = path.join(DICOM_DIR, 'gdcm-CR-MONO1-10-chest.dcm');
let stack: Stack | undefined;
let dir = '';
let modelDir = '';
let predictor: Predictor;
let store: AuditStore;
let queue: JobQueue;
let client: OrthancClient;
let spec: JobSpec;
const children: ChildProcess[] = [];

before(async () => {
  if (skip) return;
  ({ dir, modelDir, predictor, stack, queue } = await startQueueStack('queue-pacs-redo', ['orthanc', 'redis']));
  store = await openAuditStore(path.join(dir, 'audit.db'));
  client = orthancClient(stack);
  spec = {
    modelSha256: predictor.model.sha256,
    operatingPoint: 'balanced',
    heatmap: false,
    requestedBy: null,
    priority: 'normal',
  };
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await store?.close();
  await stopQueueStack({ queue, predictor, stack, dir });
});

async function until(ok: () => boolean | Promise<boolean>, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out: ${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Uploads a film to Orthanc; its Orthanc id. */
async function upload(file: string): Promise<string> {
  const res = await orthanc(stack!, '/instances', { method: 'POST', body: new Uint8Array(fs.readFileSync(file)) });
  assert.equal(res.status, 200);
  return ((await res.json()) as { ID: string }).ID;
}

const ref = (file: string) => {
  const src = readSource(fs.readFileSync(file));
  return { studyInstanceUid: src.studyInstanceUid, sopInstanceUid: src.sopInstanceUid };
};
const stored = (file: string) => storedResults(client, ref(file), { sha256: spec.modelSha256 }, 'balanced');

/** Runs a worker (in this process) until no job waits or runs. */
async function drain(): Promise<string> {
  let log = '';
  const line = (l: string) => (log += `${l}\n`);
  const running = await startWorker(
    { predictor, store, uploads: new UploadStore(queue, 0), orthanc: client, storeImages: false, log: line },
    { redisUrl: stack!.env.CXR_REDIS_URL, concurrency: 1 },
  );
  try {
    await until(
      async () => {
        const d = await queueDepth(queue);
        return d.waiting === 0 && d.active === 0;
      },
      60_000,
      () => log,
    );
  } finally {
    await running.close();
  }
  assert.doesNotMatch(log, /failed/, log);
  return log;
}

test('a film done as a file, then sent to Orthanc, gets its SR and SC; so does one whose SC was deleted', {
  skip: skip ?? false,
  timeout: 180_000,
}, async () => {
  assert.equal(await enqueueFile(queue, spec, DICOM_FILE), 'queued');
  await drain();
  assert.equal(await enqueueFile(queue, spec, DICOM_FILE), 'already-done', 'files still deduplicate');

  const id = await upload(DICOM_FILE);
  const first = await enqueueInstance(queue, client, spec, id);
  assert.equal(first.outcome, 'queued', 'the finished file job does not stand for the results in the PACS');
  assert.match(first.id ?? '', /^orthanc-/);
  await drain();
  let s = await stored(DICOM_FILE);
  assert.ok(s.done && s.sr.length === 1 && s.sc.length === 1, JSON.stringify(s));
  assert.deepEqual(await enqueueInstance(queue, client, spec, id), { outcome: 'already-done', id: null });
  assert.equal(await syncHandler(queue, client, spec)(id), 'already-done');
  // The API follows the finished job, and queues nothing new.
  const model = { sha256: spec.modelSha256, defaultOperatingPoint: 'balanced' };
  const api = queueApi({ queue, model, orthanc: client });
  assert.deepEqual(await api.submitOrthanc(id, { heatmap: false, requestedBy: 'tok' }), {
    id: first.id,
    status: 'already-done',
  });

  // An admin deletes the heat map: the finished Orthanc job does not count as done, it is replaced.
  assert.equal((await orthanc(stack!, `/instances/${s.sc[0]}`, { method: 'DELETE' })).status, 200);
  assert.equal(await syncHandler(queue, client, spec)(id), 'processed');
  await drain();
  s = await stored(DICOM_FILE);
  assert.ok(s.done && s.sr.length === 1 && s.sc.length === 1, 'the SC is back, and one SR still');

  // Just after an upgrade: a job that an older cxr queued for the film under the shared id, not run yet, is
  // the film's job (it stores the results as well).
  assert.equal((await orthanc(stack!, `/instances/${s.sc[0]}`, { method: 'DELETE' })).status, 200);
  const legacyId = jobIdFor(ref(DICOM_FILE).sopInstanceUid, spec.modelSha256, 'balanced');
  await queue.remove(legacyId);
  await queue.remove(first.id!);
  const data: JobData = {
    source: { kind: 'orthanc', instanceId: id },
    resultKey: ref(DICOM_FILE).sopInstanceUid,
    model: { sha256: spec.modelSha256 },
    operatingPoint: 'balanced',
    heatmap: true,
    requestedBy: null,
  };
  await queue.add('predict', data, { jobId: legacyId });
  assert.deepEqual(await enqueueInstance(queue, client, spec, id), { id: legacyId, outcome: 'already-queued' });
  await drain();
  assert.ok((await stored(DICOM_FILE)).done);
  assert.equal((await enqueue(queue, { ...data, source: { kind: 'file', path: DICOM_FILE } })).outcome, 'already-done');

  // A file job for the film still waiting makes an audit row, not the SR and SC: it is not the film's Orthanc job.
  await queue.remove(legacyId);
  // The finished file job above has an id of its own (its bytes'): taken out too, so that one is queued again.
  await queue.remove(
    jobIdOf({ ...data, source: { kind: 'file', path: DICOM_FILE } }, sha256Of(fs.readFileSync(DICOM_FILE))),
  );
  assert.equal(await enqueueFile(queue, spec, DICOM_FILE), 'queued');
  s = await stored(DICOM_FILE);
  assert.equal((await orthanc(stack!, `/instances/${s.sc[0]}`, { method: 'DELETE' })).status, 200);
  assert.deepEqual(await enqueueInstance(queue, client, spec, id), { id: first.id, outcome: 'queued' });
  await drain();
  assert.ok((await stored(DICOM_FILE)).done, 'the SC is back');
});

test('POST /jobs with Orthanc ids: an unknown id is 422 and queues none; Orthanc away or refusing is 503', {
  skip: skip ?? false,
  timeout: 60_000,
}, async () => {
  const id2 = await upload(FILM2);
  const unknown = '00000000-00000000-00000000-00000000-00000000';
  const model = { sha256: spec.modelSha256, defaultOperatingPoint: 'balanced' };
  const opts = { heatmap: false, requestedBy: 'tok' };
  const api = queueApi({ queue, model, orthanc: client });
  const depth0 = await queueDepth(queue);
  const refused = await api.submitOrthancAll([id2, unknown], opts).catch((e: unknown) => e);
  assert.ok(refused instanceof HttpError, String(refused));
  assert.equal(refused.statusCode, 422);
  assert.equal(refused.code, 'UNKNOWN_INSTANCE');
  assert.match(refused.message, new RegExp(`no instance ${unknown}: nothing in this request was queued`));
  assert.deepEqual(await queueDepth(queue), depth0, 'the known id before it was not queued');
  const one = await api.submitOrthanc(unknown, opts).catch((e: unknown) => e);
  assert.ok(one instanceof HttpError && one.statusCode === 422, String(one));

  const logged: string[] = [];
  const away = queueApi({
    queue,
    model,
    orthanc: new OrthancClient({ url: 'http://127.0.0.1:1' }),
    log: (l) => logged.push(l),
  });
  const down = await away.submitOrthancAll([id2], opts).catch((e: unknown) => e);
  assert.ok(down instanceof HttpError && down.statusCode === 503 && down.code === 'PACS_UNAVAILABLE', String(down));
  assert.match(down.message, /does not answer; nothing in this request was queued, retry later/);
  assert.match(logged.join('\n'), /unreachable/, 'the server log has the cause');
  const wrong = new OrthancClient({ url: stack!.env.CXR_ORTHANC_URL, user: 'cxr', password: 'wrong' });
  const denied = await queueApi({ queue, model, orthanc: wrong })
    .submitOrthancAll([id2], opts)
    .catch((e: unknown) => e);
  assert.ok(denied instanceof HttpError && denied.statusCode === 503, String(denied));
  assert.match(denied.message, /refuses this server's login.*CXR_ORTHANC_PASSWORD/);
  assert.equal(denied.retryAfterS, 300, 'a login to fix: clients are not asked to retry every second');
  assert.deepEqual(await queueDepth(queue), depth0);

  const ok = await api.submitOrthancAll([id2], opts);
  assert.equal(ok[0].status, 'queued');
  await queue.remove(ok[0].id!);

  // Over HTTP: POST /jobs answers the 422 with nothing queued, not a 500 after queueing the first id.
  const server = await spawnServer(['--model', modelDir, '--db', path.join(dir, 'http-audit.db')], {
    ...(stack!.env as Record<string, string>),
  });
  try {
    const res = await fetch(`${server.url}/api/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ orthancInstances: [id2, unknown] }),
    });
    const body = (await res.json()) as { code: string; detail: string };
    assert.equal(res.status, 422, JSON.stringify(body));
    assert.equal(body.code, 'UNKNOWN_INSTANCE');
    assert.deepEqual(await queueDepth(queue), depth0, 'nothing queued by the refused request');
  } finally {
    await server.stop();
  }
});

test("an Orthanc job: a bug is retried as 'other', an unreadable film and a refused login fail at once", {
  skip: skip ?? false,
  timeout: 60_000,
}, async () => {
  const id2 = await upload(FILM2);
  const data: JobData = {
    source: { kind: 'orthanc', instanceId: id2 },
    resultKey: ref(FILM2).sopInstanceUid,
    model: { sha256: spec.modelSha256 },
    operatingPoint: 'balanced',
    heatmap: true,
    requestedBy: null,
  };
  const ctx = (p: Predictor, c = client) =>
    jobContext({ predictor: p, queue }, store, { uploads: new UploadStore(queue, 0), orthanc: c });
  const throwing = (e: Error) => Object.create(predictor, { predict: { value: () => Promise.reject(e) } }) as Predictor;

  // A broken install (what QA saw during a rebuild): not the film's fault.
  const bug = await processJob(ctx(throwing(new TypeError('isDicom is not a function'))), data).catch((e) => e);
  assert.ok(bug instanceof Error && !(bug instanceof UnrecoverableError), String(bug));
  assert.match(bug.message, /isDicom is not a function/);
  assert.equal(retryDelayMs(DEFAULT_RETRY, 1, bug), 5_000, 'retried');
  assert.equal(retryDelayMs(DEFAULT_RETRY, 3, bug), -1, "after the 'other' attempts, failed");

  const corrupt = new InputError('CORRUPT', 'the pixel data is corrupt');
  const film = await processJob(ctx(throwing(corrupt)), data).catch((e) => e);
  assert.ok(film instanceof UnrecoverableError, String(film));

  const wrong = new OrthancClient({ url: stack!.env.CXR_ORTHANC_URL, user: 'cxr', password: 'pw-not-right' });
  const login = await processJob(ctx(predictor, wrong), data).catch((e) => e);
  assert.ok(login instanceof UnrecoverableError, String(login));
  assert.match(login.message, /Orthanc refused this worker's login .*HTTP 401.*CXR_ORTHANC_PASSWORD/);
  assert.ok(!login.message.includes('pw-not-right'), 'the password is not repeated');
});

test('cxr worker with a wrong Orthanc password exits 1 at start, saying so', {
  skip: skip ?? false,
  timeout: 60_000,
}, () => {
  const r = spawnSync(process.execPath, [CLI, 'worker', '--threads', '1', '--db', path.join(dir, 'w.db')], {
    encoding: 'utf8',
    timeout: 45_000,
    env: { ...process.env, ...stack!.env, CXR_MODEL: modelDir, CXR_ORTHANC_PASSWORD: 'not-the-password' },
  });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /Orthanc refused its login .*CXR_ORTHANC_PASSWORD/);
  assert.doesNotMatch(r.stderr, /consuming|not-the-password/);
});

test('cxr orthanc sync --queue with Redis gone says so within seconds, retries, and stops on one SIGTERM', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const child = spawn(
    process.execPath,
    [CLI, 'orthanc', 'sync', '--queue', '--interval', '1', '--state', path.join(dir, 'sync.json'), '--since-start'],
    { env: { ...process.env, ...stack!.env, CXR_MODEL: modelDir } },
  );
  children.push(child);
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  await until(
    () => /watching/.test(log),
    30_000,
    () => log,
  );
  assert.equal(stackCmd(stack!.dir, 'down', ['redis']).code, 0);
  // A film none of the tests before sent (siim_Fake_MONOHR1 is the same instance as DICOM_FILE).
  await upload(path.join(DICOM_DIR, 'WG04_RG1_JLSN.dcm'));
  await until(
    () =>
      /the job queue \(Redis at redis:\/\/:\*\*\*\*\*@127\.0\.0\.1:\d+\/0\) does not answer[^\n]*retrying in 1 s/.test(
        log,
      ),
    20_000,
    () => log,
  );
  const t0 = Date.now();
  child.kill('SIGTERM');
  assert.equal(await exited, 0, log);
  assert.ok(Date.now() - t0 < 15_000, `stopped after ${Date.now() - t0} ms:\n${log}`);
  assert.ok(!log.includes(new URL(stack!.env.CXR_REDIS_URL).password), 'the Redis password is hidden');
});
