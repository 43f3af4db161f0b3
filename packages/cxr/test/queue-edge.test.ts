// The queue's edges, on a real Redis (scripts/stack.sh): POST /api/v1/jobs refuses a file the decoder
// would not read before anything is queued (a DICOM data set without preamble is still taken), as
// `cxr enqueue` does; GET /api/v1/jobs/:id takes its hex digests in either case; and an upload held by
// a version before the per-job holder sets (no set beside it) stays until no job that can still run
// names it, so the second of two jobs for one film no longer fails with "no longer held".
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { modelIdentity } from '../src/models/io';
import { Predictor } from '../src/predict/predictor';
import { silentLogger } from '../src/log';
import {
  enqueueUpload,
  type JobQueue,
  type JobResult,
  type JobSpec,
  openQueue,
  queueApi,
  queueDepth,
  resultKeyOf,
  startWorker,
  UploadStore,
} from '../src/queue';
import { sha256Of } from '../src/hash';
import { openAuditStore } from '../src/serve/audit';
import { type RunningServer, startServer } from '../src/serve/server';
import {
  CLI,
  DICOM_DIR,
  DICOM_FILE,
  gradientFilm,
  loadPredictor,
  makeTinyModel,
  tempDir,
  XRAY_JPEG,
} from './serve-fixtures';
import { type Stack, stackUnavailable, startStack, stopStack } from './stack-fixture';

const skip = stackUnavailable();
let stack: Stack | undefined;
let dir = '';
let modelDir = '';
let model = '';
let server: RunningServer | undefined;
let queue: JobQueue | undefined;
/** For what the queue's own client does not offer: writing an upload as an older version did, emptying Redis. */
let redis: Redis | undefined;
const BARE_DICOM = path.join(DICOM_DIR, 'CR-MONO1-10-chest_nometa.dcm');

before(async () => {
  if (skip) return;
  dir = tempDir('queue-edge');
  modelDir = await makeTinyModel(path.join(dir, 'model'));
  model = modelIdentity(modelDir).sha256;
  stack = startStack('queue-edge', ['redis']);
  const redisUrl = stack.env.CXR_REDIS_URL;
  redis = new Redis(redisUrl);
  server = await startServer({
    host: '127.0.0.1',
    port: 0,
    dbPath: path.join(dir, 'audit.db'),
    loadPredictor: () => loadPredictor(modelDir),
    log: silentLogger(),
    openJobs: (p) => {
      queue = openQueue(redisUrl, p.model.sha256);
      return queueApi({
        queue,
        model: { sha256: p.model.sha256, defaultOperatingPoint: p.model.meta.defaultOperatingPoint },
        orthanc: null,
      });
    },
  });
});
after(async () => {
  await server?.close();
  redis?.disconnect();
  stopStack(stack);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function films(...files: [string, Buffer][]): FormData {
  const form = new FormData();
  for (const [name, bytes] of files) form.append('image', new Blob([new Uint8Array(bytes)]), name);
  return form;
}

const post = (form: FormData) => fetch(`${server!.url}/api/v1/jobs?heatmap=false`, { method: 'POST', body: form });

test('POST /api/v1/jobs refuses what is not a JPEG, PNG or DICOM at once, and queues nothing of that request', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const text = Buffer.from('PatientName,Finding\nDOE^JANE,pneumonia\n');
  const jpeg = fs.readFileSync(XRAY_JPEG);
  for (const [name, bytes] of [
    ['notes.txt', text],
    ['film.jpg', Buffer.from('<html>not a film</html>')],
    ['anim.gif', Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;')],
  ] as [string, Buffer][]) {
    const res = await post(films(['first.jpg', jpeg], [name, bytes]));
    assert.equal(res.status, 415, name);
    assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
    const body = (await res.json()) as { code: string; detail: string };
    assert.equal(body.code, 'UNSUPPORTED_FORMAT');
    // As POST /predictions says it: a format it knows by name is named (data/decode.ts unsupportedFormat).
    const why =
      name === 'anim.gif' ? 'GIF is not supported (JPEG, PNG or DICOM expected)' : 'not a JPEG, PNG or DICOM image';
    assert.equal(body.detail, `${name}: ${why} (nothing in this request was queued)`);
  }
  assert.equal((await queueDepth(queue!)).waiting, 0, 'not even the good film before it');
  assert.equal(await new UploadStore(queue!, 0).totalBytes(), 0, 'no bytes held');

  // What the decoder reads is taken: a DICOM data set without preamble and "DICM" too.
  const res = await post(
    films(
      ['bare.dcm', fs.readFileSync(BARE_DICOM)],
      ['part10.dcm', fs.readFileSync(DICOM_FILE)],
      ['film.jpeg', jpeg],
      ['film.png', await gradientFilm()],
    ),
  );
  assert.equal(res.status, 202, await res.clone().text());
  const { jobs } = (await res.json()) as { jobs: { id: string; status: string }[] };
  assert.deepEqual(
    jobs.map((j) => j.status),
    ['queued', 'queued', 'queued', 'queued'],
  );

  // Its hex digests in upper case name the same job (hex is case-insensitive); the operating point keeps its case.
  const id = jobs[2].id;
  assert.match(id, /^sha256-[0-9a-f]{64}~[0-9a-f]{64}~balanced$/);
  const upper = id.replace(/^sha256-([0-9a-f]+)~([0-9a-f]+)~/, (_, f: string, m: string) => {
    return `SHA256-${f.toUpperCase()}~${m.toUpperCase()}~`;
  });
  const got = await fetch(`${server!.url}/api/v1/jobs/${encodeURIComponent(upper)}`);
  assert.equal(got.status, 200, await got.clone().text());
  assert.deepEqual(((await got.json()) as { id: string; status: string }).id, id);
  const mixed = id.replace(/~([0-9a-f]{64})~/, (_, m: string) => `~${m.slice(0, 32)}${m.slice(32).toUpperCase()}~`);
  assert.equal((await fetch(`${server!.url}/api/v1/jobs/${encodeURIComponent(mixed)}`)).status, 200);
  const otherPoint = await fetch(
    `${server!.url}/api/v1/jobs/${encodeURIComponent(id.replace(/balanced$/, 'BALANCED'))}`,
  );
  assert.equal(otherPoint.status, 404);
  const notHex = await fetch(`${server!.url}/api/v1/jobs/${encodeURIComponent(id.replace(/^sha256-./, 'sha256-g'))}`);
  assert.equal(notHex.status, 400);
});

/** An upload as the versions before holder sets held it: the film and the total, no set, no 'tracked'. */
async function holdAsLegacy(bytes: Buffer): Promise<string> {
  const sha = sha256Of(bytes);
  await redis!.hset(`cxr:upload:${sha}`, 'data', bytes.toString('base64'), 'size', String(bytes.length));
  await redis!.incrby('cxr:upload-bytes', bytes.length);
  return sha;
}

function spec(operatingPoint: string): JobSpec {
  return { modelSha256: model, operatingPoint, heatmap: false, requestedBy: 'legacy', priority: 'normal' };
}

/** A film held as an older version held it, and two jobs of this version's queue that name it. */
async function legacyPair() {
  await redis!.flushdb();
  const film = fs.readFileSync(XRAY_JPEG);
  const sha = await holdAsLegacy(film);
  const upload = { sha256: sha, name: 'film.jpeg', resultKey: resultKeyOf(film) };
  const a = await enqueueUpload(queue!, spec('balanced'), upload);
  const b = await enqueueUpload(queue!, spec('screening'), upload);
  return { film, sha, a, b, store: new UploadStore(queue!, 1024 ** 3) };
}

test('a legacy upload (no holder set) stays while another job that can still run names it', {
  skip: skip ?? false,
  timeout: 60_000,
}, async () => {
  const { film, sha, a, b, store } = await legacyPair();
  assert.equal(await store.release(sha, a.id), 'still-held', 'job b still waits for it');
  assert.deepEqual(await store.get(sha), film);
  await (await queue!.getJob(a.id))!.remove();
  // This version queues the film for a third job: its holder set now names that job.
  assert.equal(await store.put(sha, film, 'job-c'), 'already-there');
  await (await queue!.getJob(b.id))!.remove();
  assert.equal(await store.release(sha, b.id), 'still-held', 'job-c holds it');
  assert.equal(await store.release(sha, 'job-c'), 'dropped', 'no job names it any more');
  assert.equal(await store.get(sha), null);
  assert.equal(await store.totalBytes(), 0, 'its bytes left the total');
});

test('two jobs of a legacy upload that let go at once drop it once, and never both keep it', {
  skip: skip ?? false,
  timeout: 60_000,
}, async () => {
  const { sha, a, b, store } = await legacyPair();
  // Both jobs are still in the queue while they let go (a worker releases from inside the job), so each
  // one's search finds the other: only one release may convert the film, and the other drops it.
  const outcomes = await Promise.all([store.release(sha, a.id), store.release(sha, b.id)]);
  assert.deepEqual(outcomes.sort(), ['dropped', 'still-held']);
  assert.equal(await store.get(sha), null);
  assert.equal(await store.totalBytes(), 0, 'its bytes left the total');
});

test('two jobs queued by an older version for one film both complete on a worker of this one', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  await redis!.flushdb();
  const predictor = await Predictor.load(modelDir);
  const film = fs.readFileSync(XRAY_JPEG);
  const sha = await holdAsLegacy(film);
  const upload = { sha256: sha, name: 'film.jpeg', resultKey: resultKeyOf(film) };
  const ids = [
    (await enqueueUpload(queue!, spec('balanced'), upload)).id,
    (await enqueueUpload(queue!, spec('screening'), upload)).id,
  ];
  const uploads = new UploadStore(queue!, 0);
  const audit = await openAuditStore(path.join(dir, 'worker.db'));
  const lines: string[] = [];
  const worker = await startWorker(
    { predictor, store: audit, uploads, orthanc: null, storeImages: false, log: (l) => lines.push(l) },
    { redisUrl: stack!.env.CXR_REDIS_URL, concurrency: 1 },
  );
  try {
    const end = Date.now() + 90_000;
    const states = async () => Promise.all(ids.map(async (id) => (await queue!.getJob(id))!.getState()));
    while (!(await states()).every((s) => s === 'completed' || s === 'failed') && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const id of ids) {
      const job = (await queue!.getJob(id))!;
      assert.equal(await job.getState(), 'completed', `${id}: ${job.failedReason}\n${lines.join('\n')}`);
      assert.equal((job.returnvalue as JobResult).outcome, 'predicted');
    }
    assert.equal(await uploads.get(sha), null, 'let go once the last job was done');
    assert.equal(await uploads.totalBytes(), 0);
  } finally {
    await worker.close();
    await audit.close();
    predictor.dispose();
  }
});

test("a bare DICOM queued by an older version under its bytes' sha256 still completes", {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  await redis!.flushdb();
  const predictor = await Predictor.load(modelDir);
  const film = fs.readFileSync(BARE_DICOM);
  const sha = await holdAsLegacy(film);
  // Keyed by its UID now; older versions keyed a data set without preamble by its bytes.
  assert.notEqual(resultKeyOf(film), `sha256:${sha}`);
  const id = (await enqueueUpload(queue!, spec('balanced'), { sha256: sha, name: 'film', resultKey: `sha256:${sha}` }))
    .id;
  const audit = await openAuditStore(path.join(dir, 'worker-bare.db'));
  const lines: string[] = [];
  const worker = await startWorker(
    {
      predictor,
      store: audit,
      uploads: new UploadStore(queue!, 0),
      orthanc: null,
      storeImages: false,
      log: (l) => lines.push(l),
    },
    { redisUrl: stack!.env.CXR_REDIS_URL, concurrency: 1 },
  );
  try {
    const end = Date.now() + 90_000;
    let state = await (await queue!.getJob(id))!.getState();
    while (state !== 'completed' && state !== 'failed' && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
      state = await (await queue!.getJob(id))!.getState();
    }
    const job = (await queue!.getJob(id))!;
    assert.equal(state, 'completed', `${job.failedReason}\n${lines.join('\n')}`);
    assert.equal((job.returnvalue as JobResult).outcome, 'predicted');
  } finally {
    await worker.close();
    await audit.close();
    predictor.dispose();
  }
});

test('cxr enqueue refuses a file that is not a JPEG, PNG or DICOM, queues the rest, and exits 2', {
  skip: skip ?? false,
  timeout: 60_000,
}, async () => {
  await redis!.flushdb();
  const notes = path.join(dir, 'notes.txt');
  fs.writeFileSync(notes, 'PatientName,Finding\nDOE^JANE,pneumonia\n');
  const r = spawnSync(process.execPath, [CLI, 'enqueue', notes, BARE_DICOM, XRAY_JPEG, '--json'], {
    encoding: 'utf8',
    env: { ...process.env, CXR_REDIS_URL: stack!.env.CXR_REDIS_URL, CXR_MODEL: modelDir },
  });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /not queued: .*notes\.txt: not a JPEG, PNG or DICOM image \(UNSUPPORTED_FORMAT\)/);
  const out = JSON.parse(r.stdout) as { queued: number; notFilms: number };
  assert.deepEqual({ queued: out.queued, notFilms: out.notFilms }, { queued: 2, notFilms: 1 });
});
