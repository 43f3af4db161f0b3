// The queue's pieces on their own: the job schema, result keys and job ids, the Redis URL rules,
// and (on a real Redis from scripts/stack.sh) that one film queued twice is one job, a finished
// job is found instead of redone, and held uploads respect their cap.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  AGE_OVER_BOUND,
  AGE_UNDER_BOUND,
  canonicalJobId,
  emptyCounts,
  countOutcome,
  enqueue,
  jobIdFor,
  JOB_ID_PATTERN,
  type JobData,
  letGoOfFailed,
  loadRedisUrl,
  openQueue,
  otherFailuresOf,
  parseJobData,
  queueApi,
  queueDepth,
  redactRedisUrl,
  redisConnection,
  refusedReason,
  refusedReasonParts,
  resultKeyOf,
  UploadStore,
  type JobQueue,
} from '../src/queue';
import { filmKeyOf } from '../src/queue/job';
import { CLI, DICOM_DIR, DICOM_FILE, XRAY_JPEG } from './serve-fixtures';
import { type Stack, stackUnavailable, startStack, stopStack } from './stack-fixture';

const MODEL = 'a'.repeat(64);
const job = (over: Partial<JobData> = {}): JobData => ({
  source: { kind: 'file', path: '/films/a.dcm' },
  resultKey: '1.2.840.1',
  model: { sha256: MODEL },
  operatingPoint: 'balanced',
  heatmap: false,
  requestedBy: null,
  ...over,
});

test('job schema: accepts the three sources, refuses what a worker cannot use, naming the field', () => {
  assert.deepEqual(parseJobData(job()), job());
  const orthanc = job({ source: { kind: 'orthanc', instanceId: '0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d' } });
  assert.deepEqual(parseJobData(orthanc), orthanc);
  const upload = job({
    source: { kind: 'upload', sha256: 'b'.repeat(64), name: 'x.png' },
    resultKey: `sha256:${'b'.repeat(64)}`,
  });
  assert.deepEqual(parseJobData(upload), upload);
  assert.throws(() => parseJobData({ ...job(), source: { kind: 'url', url: 'http://x' } }), /source/);
  assert.throws(() => parseJobData(job({ resultKey: 'sha256:xyz' })), /resultKey: a SOP Instance UID or sha256/);
  assert.throws(() => parseJobData(job({ model: { sha256: 'nope' } })), /model\.sha256/);
  assert.throws(() => parseJobData({ ...job(), extra: 1 }), /malformed job data/);
  assert.throws(() => parseJobData(job({ source: { kind: 'orthanc', instanceId: '../../system' } })), /instanceId/);
  // A stated age travels with the job; the result key says whether it is over the bound, and must agree.
  const adult = job({ resultKey: `1.2.840.1${AGE_OVER_BOUND}`, patientAge: 34 });
  assert.deepEqual(parseJobData(adult), adult);
  const child = job({ patientAge: 3.5 });
  assert.deepEqual(parseJobData(child), child);
  assert.throws(() => parseJobData(job({ patientAge: 34 })), /resultKey: ends in \+age-over-10 exactly when/);
  // An infant's age has its own suffix (the answer differs from one without an age), and must agree too.
  const infant = job({ resultKey: `1.2.840.1${AGE_UNDER_BOUND}`, patientAge: 0.5 });
  assert.deepEqual(parseJobData(infant), infant);
  assert.equal(AGE_UNDER_BOUND, '+age-under-1');
  assert.throws(
    () => parseJobData(job({ patientAge: 0.5 })),
    /resultKey: .*in \+age-under-1 exactly when it is under 1/,
  );
  assert.throws(() => parseJobData(job({ resultKey: `1.2.840.1${AGE_UNDER_BOUND}` })), /resultKey: ends in/);
  assert.throws(() => parseJobData(job({ resultKey: `1.2.840.1${AGE_UNDER_BOUND}`, patientAge: 34 })), /ends in/);
  assert.throws(() => parseJobData(job({ resultKey: `1.2.840.1${AGE_OVER_BOUND}`, patientAge: 0.5 })), /ends in/);
  assert.deepEqual(parseJobData(job({ patientAge: 1 })), job({ patientAge: 1 }), 'the youngest training age');
  assert.throws(() => parseJobData(job({ resultKey: `1.2.840.1${AGE_OVER_BOUND}` })), /resultKey: ends in/);
  assert.throws(() => parseJobData(job({ patientAge: 131 })), /patientAge: a number of years from 0 to 130/);
  assert.throws(() => parseJobData(job({ resultKey: `${AGE_OVER_BOUND}`, patientAge: 34 })), /resultKey: a SOP/);
});

test('result key: the SOP Instance UID of a DICOM file, else sha256 of the bytes; job ids are URL-safe', () => {
  const dicom = fs.readFileSync(DICOM_FILE);
  assert.equal(resultKeyOf(dicom), '1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819');
  // A data set without preamble and DICM is keyed by its UID too: the same film as its Part-10 copy.
  const bare = fs.readFileSync(path.join(DICOM_DIR, 'CR-MONO1-10-chest_nometa.dcm'));
  const part10 = fs.readFileSync(path.join(DICOM_DIR, 'gdcm-CR-MONO1-10-chest.dcm'));
  assert.equal(resultKeyOf(bare), '1.2.392.200036.9125.0.19950720112207');
  assert.equal(resultKeyOf(bare), resultKeyOf(part10));
  const jpeg = fs.readFileSync(XRAY_JPEG);
  assert.match(resultKeyOf(jpeg), /^sha256:[0-9a-f]{64}$/);
  const a = jobIdFor(resultKeyOf(jpeg), MODEL, 'balanced');
  assert.ok(!a.includes(':'), 'BullMQ refuses : in ids');
  assert.match(a, new RegExp(JOB_ID_PATTERN));
  assert.match(jobIdFor(resultKeyOf(dicom), MODEL, 'high-sensitivity'), new RegExp(JOB_ID_PATTERN));
  assert.notEqual(a, jobIdFor(resultKeyOf(jpeg), MODEL, 'high-sensitivity'), 'the operating point is part of the id');
  assert.notEqual(a, jobIdFor(resultKeyOf(jpeg), 'c'.repeat(64), 'balanced'), 'so is the model');
  // A stated age over the bound is a different result; an age within it answers as no age does.
  assert.equal(resultKeyOf(jpeg, 34), `${resultKeyOf(jpeg)}+age-over-10`);
  assert.equal(resultKeyOf(jpeg, 10), resultKeyOf(jpeg));
  assert.equal(resultKeyOf(jpeg, 3.5), resultKeyOf(jpeg));
  assert.equal(resultKeyOf(dicom, 10.5), '1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819+age-over-10');
  // An age under 1 is a third result; 1 itself answers as no age does.
  assert.equal(resultKeyOf(jpeg, 0.5), `${resultKeyOf(jpeg)}+age-under-1`);
  assert.equal(resultKeyOf(jpeg, 0), `${resultKeyOf(jpeg)}+age-under-1`);
  assert.equal(resultKeyOf(jpeg, 1), resultKeyOf(jpeg));
  assert.equal(resultKeyOf(dicom, 0.2), '1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819+age-under-1');
  assert.equal(filmKeyOf(resultKeyOf(jpeg, 0.5)), resultKeyOf(jpeg));
  assert.equal(filmKeyOf(resultKeyOf(jpeg, 34)), resultKeyOf(jpeg));
  const infantId = jobIdFor(resultKeyOf(jpeg, 0.5), MODEL, 'balanced');
  assert.notEqual(infantId, a);
  assert.notEqual(infantId, jobIdFor(resultKeyOf(jpeg, 34), MODEL, 'balanced'));
  assert.match(infantId, new RegExp(JOB_ID_PATTERN));
  assert.equal(canonicalJobId(infantId.toUpperCase().replace('~BALANCED', '~balanced')), infantId);
  assert.equal(canonicalJobId(infantId.replace('+age-under-1', '+age-under-2')), null);
  const aged = jobIdFor(resultKeyOf(jpeg, 34), MODEL, 'balanced');
  assert.notEqual(aged, a);
  assert.match(aged, new RegExp(JOB_ID_PATTERN));
  assert.match(jobIdFor(resultKeyOf(dicom, 34), MODEL, 'balanced'), new RegExp(JOB_ID_PATTERN));
  assert.doesNotMatch(`${a}+age-over-10`, new RegExp(JOB_ID_PATTERN), 'the suffix belongs to the film part');
  // An Orthanc job stores the results in the PACS, which a file or upload job of the film does not: its own id,
  // so that a finished file job cannot stand for results the PACS lacks. Clients send it back like any other.
  const uid = resultKeyOf(dicom);
  const pacs = jobIdFor(uid, MODEL, 'balanced', 'orthanc');
  assert.equal(pacs, `orthanc-${jobIdFor(uid, MODEL, 'balanced', 'file')}`);
  assert.equal(jobIdFor(uid, MODEL, 'balanced', 'upload'), jobIdFor(uid, MODEL, 'balanced', 'file'));
  assert.equal(canonicalJobId(pacs.toUpperCase().replace('~BALANCED', '~balanced')), pacs);
  assert.equal(canonicalJobId(`orthanc-sha256-${'a'.repeat(64)}~${MODEL}~balanced`), null, 'Orthanc films have UIDs');
});

/** A prediction as a worker stores it in its job result (POST /predictions' shape). */
const storedPrediction = (status = 'assessed') => ({
  id: '0b6f2a8e-8a0c-4c3e-9a55-3f5e2a0f6a11',
  createdAt: '2025-01-02T03:04:05.000Z',
  model: { name: 'm', version: '1', sha256: MODEL },
  requestedBy: null,
  resultKey: '1.2.840.1',
  probability: 0.9,
  logit: 2.2,
  label: 'PNEUMONIA',
  operatingPoint: 'balanced',
  threshold: 0.5,
  warnings: ['image is blank'],
  ood: null,
  input: { kind: 'dicom', width: 8, height: 8, sha256: 'b'.repeat(64), bytes: 1000 },
  timings: { decodeMs: 1, inferMs: 2, totalMs: 3 },
  heatmapUrl: null,
  thumbnailUrl: null,
  verdict: { status, reasons: [] },
});

/** The API's answer for one completed job whose stored result is `returnvalue`, and what it logged. */
async function statusOf(returnvalue: unknown) {
  // As BullMQ keeps a job: its data (who queued it), and the queue's Redis, where the offers of its film are kept.
  const job = { getState: async () => 'completed', returnvalue, data: { requestedBy: null } };
  const redis = { smembers: async () => [] };
  const queue = { getJob: async () => job, client: Promise.resolve(redis) } as unknown as JobQueue;
  const logged: string[] = [];
  const log = (line: string) => logged.push(line);
  const api = queueApi({ queue, model: { sha256: MODEL, defaultOperatingPoint: 'balanced' }, orthanc: null, log });
  return { state: await api.status('x'), logged };
}

test('a job result stored before the label rule reads as every answer does: no label when cannot-assess', async () => {
  for (const [status, label] of [
    ['cannot-assess', null],
    ['outside-population', 'PNEUMONIA'],
    ['assessed', 'PNEUMONIA'],
  ] as const) {
    const { state } = await statusOf({
      outcome: 'predicted',
      resultKey: '1.2.840.1',
      prediction: storedPrediction(status),
    });
    assert.equal(state?.prediction?.label, label, status);
  }
});

test('a job result this server cannot read is answered as such, naming the field, never passed on', async () => {
  const good = { outcome: 'reused', resultKey: '1.2.840.1', prediction: storedPrediction() };
  const { timings: _older, ...withoutTimings } = storedPrediction();
  for (const [what, value, why] of [
    ['an older worker without a field', { ...good, prediction: withoutTimings }, /prediction\.timings: /],
    ['an outcome this server does not know', { ...good, outcome: 'done' }, /outcome: /],
    ['no result of cxr', 'done', /\(top\): /],
  ] as const) {
    const { state, logged } = await statusOf(value);
    assert.equal(state?.status, 'completed', what);
    assert.equal(state?.outcome, null, what);
    assert.equal(state?.prediction, null, what);
    assert.match(state?.error ?? '', /the job finished, but the result it stored does not match what this server/);
    assert.match(state?.error ?? '', why, what);
    assert.match(state?.error ?? '', /another version of cxr.*audit log \(GET \/api\/v1\/predictions\)/, what);
    assert.equal(logged.length, 1, what);
    assert.match(logged[0], /^GET \/jobs\/x: malformed job result: /, what);
  }
  // Fields a newer worker adds are no reason to refuse the rest.
  const newer = await statusOf({ ...good, queuedBy: 'v9', prediction: { ...storedPrediction(), findings: [] } });
  assert.equal(newer.state?.outcome, 'reused');
  assert.equal(newer.state?.prediction?.probability, 0.9);
  assert.equal(newer.state?.error, null);
  assert.deepEqual(newer.logged, []);
  // A finished job that stored no result has none to show, as before.
  const none = await statusOf(null);
  assert.deepEqual([none.state?.outcome, none.state?.prediction, none.state?.error], [null, null, null]);
});

test("a refused job's failure keeps its code before its words; any other failure has none", () => {
  const words = 'x.jpeg: the JPEG stops inside its scan\n(at byte 600)';
  assert.deepEqual(refusedReasonParts(refusedReason('TRUNCATED', words)), { code: 'TRUNCATED', message: words });
  for (const other of ['attempts ran out: ECONNREFUSED', '[note] words', '[] x', 'x [CORRUPT] y', ''])
    assert.deepEqual(refusedReasonParts(other), { code: null, message: other }, other);
});

test('Redis URL: environment, config file, or flag (warned about when it holds a password)', () => {
  assert.throws(() => loadRedisUrl({ env: {} }), /no job queue configured: set CXR_REDIS_URL/);
  assert.throws(() => loadRedisUrl({ env: { CXR_REDIS_URL: 'http://x' } }), /redis:\/\//);
  assert.equal(
    loadRedisUrl({ env: { CXR_REDIS_URL: 'redis://:pw@127.0.0.1:6380/2' } }),
    'redis://:pw@127.0.0.1:6380/2',
  );
  const warnings: string[] = [];
  loadRedisUrl({ url: 'redis://:pw@h:1/0', env: {}, warn: (l) => warnings.push(l) });
  assert.match(warnings[0], /process list/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-redis-'));
  const file = path.join(dir, 'redis.json');
  fs.writeFileSync(file, JSON.stringify({ url: 'redis://:pw@h:1/0' }), { mode: 0o644 });
  const w2: string[] = [];
  assert.equal(loadRedisUrl({ configFile: file, env: {}, warn: (l) => w2.push(l) }), 'redis://:pw@h:1/0');
  assert.match(w2[0], /chmod 600/);
  fs.writeFileSync(file, JSON.stringify({ url: 'redis://h', password: 'x' }));
  assert.throws(() => loadRedisUrl({ configFile: file, env: {} }), /Unrecognized key/i);
  fs.rmSync(dir, { recursive: true });
  assert.deepEqual(redisConnection('redis://:p%40ss@10.0.0.1:6390/3'), {
    host: '10.0.0.1',
    port: 6390,
    username: undefined,
    password: 'p@ss',
    db: 3,
    tls: undefined,
    maxRetriesPerRequest: null,
  });
  // A producer (cxr enqueue, the sync, the API) gives up on a call while Redis is away instead of waiting.
  assert.equal(
    (redisConnection('redis://h:1/0', 'producer') as { maxRetriesPerRequest: unknown }).maxRetriesPerRequest,
    2,
  );
  // Passwords are shown as every other credential cxr prints.
  assert.equal(redactRedisUrl('redis://:p%40ss@10.0.0.1:6390/3'), 'redis://:*****@10.0.0.1:6390/3');
  assert.equal(redactRedisUrl('redis://10.0.0.1:6390/3'), 'redis://10.0.0.1:6390/3');
});

test('cxr enqueue / cxr worker: usage errors and a missing queue are said plainly, before any work', () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CXR_REDIS_URL: '' } });
  const none = cli('enqueue');
  assert.equal(none.status, 1);
  assert.match(none.stderr, /name files or folders, or --orthanc-all/);
  const both = cli('enqueue', 'x.png', '--orthanc-all');
  assert.match(both.stderr, /not both/);
  const noRedis = cli('enqueue', 'x.png');
  assert.equal(noRedis.status, 1);
  assert.match(noRedis.stderr, /no job queue configured: set CXR_REDIS_URL/);
  const worker = cli('worker');
  assert.equal(worker.status, 1);
  assert.match(worker.stderr, /no job queue configured/);
  assert.match(cli('enqueue', 'x.png', '--priority', 'urgent').stderr, /Allowed choices are low, normal/);
  assert.match(cli('enqueue', 'x.png', '--patient-age', 'ten').stderr, /a number of years from 0 to 130/);
  const pacsAge = cli('enqueue', '--orthanc-all', '--patient-age', '34');
  assert.equal(pacsAge.status, 1);
  assert.match(pacsAge.stderr, /a stated patient age is not taken for films in the PACS: .*PatientAge is read/);
});

const skip = stackUnavailable();
let stack: Stack | undefined;
let queue: JobQueue | undefined;
before(() => {
  if (!skip) stack = startStack('queue-unit', ['redis']);
});
after(async () => {
  await queue?.close();
  stopStack(stack);
});

test('enqueue on Redis: the same film twice is one job; a finished one is done, a failed one requeued', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  queue = openQueue(stack!.env.CXR_REDIS_URL, MODEL);
  const counts = emptyCounts();
  const first = await enqueue(queue, job(), 'low');
  countOutcome(counts, first.outcome);
  countOutcome(counts, (await enqueue(queue, job({ source: { kind: 'file', path: '/elsewhere/same.dcm' } }))).outcome);
  countOutcome(counts, (await enqueue(queue, job({ operatingPoint: 'high-sensitivity' }))).outcome);
  assert.deepEqual(counts, { queued: 2, alreadyQueued: 1, alreadyDone: 0, requeued: 0 });
  assert.equal(first.id, jobIdFor('1.2.840.1', MODEL, 'balanced'));
  assert.deepEqual(await queueDepth(queue), { waiting: 2, active: 0, completed: 0, failed: 0 });
  const stored = await queue.getJob(first.id);
  assert.equal(stored!.opts.priority, 100, 'low priority: behind normal jobs');

  // Finish one and fail the other, as a worker would.
  const { Worker } = await import('bullmq');
  let n = 0;
  const worker = new Worker(
    queue.name,
    async (j) => {
      if (j.data.operatingPoint === 'high-sensitivity') {
        // As the worker counts failures that are neither an outage nor the film's (retry.ts countOtherFailure).
        await j.updateProgress({ otherFailures: 2 });
        throw new (await import('bullmq')).UnrecoverableError('bad film');
      }
      n++;
      return { ok: true };
    },
    { connection: redisConnection(stack!.env.CXR_REDIS_URL) },
  );
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    const d = await queueDepth(queue);
    if (d.completed === 1 && d.failed === 1) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await worker.close();
  assert.equal(n, 1);
  assert.equal((await enqueue(queue, job())).outcome, 'already-done', 'a finished job is found, not redone');
  assert.equal((await enqueue(queue, job({ operatingPoint: 'high-sensitivity' }))).outcome, 'requeued');
  assert.deepEqual(await queueDepth(queue), { waiting: 1, active: 0, completed: 1, failed: 0 });
  // Queued again with a fresh count: its earlier other failures do not cut the new run's 3 tries short.
  const again = await queue.getJob(jobIdFor('1.2.840.1', MODEL, 'high-sensitivity'));
  assert.equal(otherFailuresOf(again!), null, JSON.stringify(again!.progress));
});

test('uploads held in Redis: stored once, capped, dropped when the last job that wants them is done', {
  skip: skip ?? false,
}, async () => {
  const store = new UploadStore(queue ?? openQueue(stack!.env.CXR_REDIS_URL, MODEL), 1000);
  const a = Buffer.alloc(600, 1);
  const [sa, sb] = ['a'.repeat(64), 'b'.repeat(64)];
  assert.equal(await store.put(sa, a, 'job-balanced'), 'stored');
  assert.equal(await store.put(sa, a, 'job-balanced'), 'already-there');
  // The same film for another job (another operating point): held once, by both.
  assert.equal(await store.put(sa, a, 'job-screening'), 'already-there');
  assert.equal(await store.put(sb, Buffer.alloc(600, 2), 'job-b'), 'over-cap');
  assert.equal(await store.totalBytes(), 600);
  assert.deepEqual(await store.get(sa), a);
  assert.equal(await store.release(sa, 'job-balanced'), 'still-held');
  assert.deepEqual(await store.get(sa), a, 'the screening job still finds its film');
  assert.equal(await store.release(sa, 'job-balanced'), 'still-held', 'a second release of one job changes nothing');
  assert.equal(await store.release(sa, 'job-screening'), 'dropped');
  assert.equal(await store.release(sa, 'job-screening'), 'not-there');
  assert.equal(await store.totalBytes(), 0);
  assert.equal(await store.get(sa), null);
  assert.equal(await store.put(sb, Buffer.alloc(600, 2), 'job-b'), 'stored', 'room again');
  assert.equal(await store.release(sb, 'job-b'), 'dropped');
});

test('a failed upload job lets go of its film once it will not run again; a retry keeps it', {
  skip: skip ?? false,
}, async () => {
  const store = new UploadStore(queue ?? openQueue(stack!.env.CXR_REDIS_URL, MODEL), 10_000);
  const sha = 'c'.repeat(64);
  const data = job({ source: { kind: 'upload', sha256: sha, name: 'film.png' }, resultKey: `sha256:${sha}` });
  const failed = (attemptsMade: number) => ({ id: 'job-up', data, attemptsMade, opts: { attempts: 3 } });
  assert.equal(await store.put(sha, Buffer.alloc(100, 3), 'job-up'), 'stored');
  const transient = new Error('the audit log did not answer');
  assert.equal(await letGoOfFailed(store, failed(1), transient), false, 'two attempts left');
  assert.ok(await store.get(sha), 'held for the retry');
  assert.equal(await letGoOfFailed(store, failed(3), transient), true, 'out of attempts');
  assert.equal(await store.get(sha), null);
  assert.equal(await store.totalBytes(), 0);
  // Unrecoverable at the first attempt: let go at once. A file job has no film to let go.
  assert.equal(await store.put(sha, Buffer.alloc(100, 3), 'job-up'), 'stored');
  const unrecoverable = Object.assign(new Error('not an image'), { name: 'UnrecoverableError' });
  assert.equal(await letGoOfFailed(store, failed(1), unrecoverable), true);
  assert.equal(await store.get(sha), null);
  assert.equal(await letGoOfFailed(store, { ...failed(3), data: job() }, transient), false);
  // A job queued before an upgrade whose key no longer parses (an infant's age stated before the lower bound
  // had its suffix): processJob refuses it unrecoverably, and its film is let go all the same.
  const older = { ...data, patientAge: 0.5 };
  assert.throws(() => parseJobData(older), /resultKey: ends in/);
  assert.equal(await store.put(sha, Buffer.alloc(100, 3), 'job-up'), 'stored');
  assert.equal(await letGoOfFailed(store, { ...failed(1), data: older }, unrecoverable), true);
  assert.equal(await store.get(sha), null, 'the film of a job whose data no longer parses is let go');
  assert.equal(await store.totalBytes(), 0);
  // A source that is itself unusable names no film: nothing to let go.
  const garbled = { ...older, source: { kind: 'upload', sha256: 'not-hex', name: 'x.png' } };
  assert.equal(await letGoOfFailed(store, { ...failed(1), data: garbled }, unrecoverable), false);
  assert.equal(await letGoOfFailed(store, { ...failed(1), data: 'not an object' }, unrecoverable), false);
});
