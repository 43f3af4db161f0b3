// POST /api/v1/jobs with Orthanc ids on a slow PACS, on the stack's Orthanc (behind a proxy that holds each
// request) and Redis. The request is answered 503 at its bound; its lookups used to go on in the background and
// queue the films after the client had been told to try again (then a retry, or a different choice, found jobs
// it did not expect). Now the bound cuts the lookups off, and nothing is queued after the answer; the same when
// the client goes away before its answer.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../src/log';
import { type JobQueue, queueApi, queueDepth } from '../src/queue';
import { buildApp } from '../src/serve/app';
import { type AuditStore, openAuditStore } from '../src/serve/audit';
import { boundedJobs } from '../src/serve/jobs_bound';
import type { Predictor } from '../src/predict/predictor';
import { type OrthancProxy, startOrthancProxy } from './orthanc-proxy';
import { orthancClient, startQueueStack, stopQueueStack } from './queue-stack';
import { DICOM_DIR, DICOM_FILE } from './serve-fixtures';
import { orthanc, type Stack, stackUnavailable } from './stack-fixture';

const skip = stackUnavailable();
/** Each PACS request is held this long: a film's lookup (tags, then its SR and SC) takes two of them or more. */
const DELAY_MS = 400;
/** POST /jobs' bound in these tests: past the first requests of the lookups, well before their end. */
const BOUND_MS = 600;
let stack: Stack | undefined;
let proxy: OrthancProxy | undefined;
let dir = '';
let predictor: Predictor;
let audit: AuditStore;
let queue: JobQueue;
const ids: string[] = [];
const apps: FastifyInstance[] = [];

before(async () => {
  if (skip) return;
  ({ dir, predictor, stack, queue } = await startQueueStack('jobs-abort', ['orthanc', 'redis']));
  audit = await openAuditStore(path.join(dir, 'audit.db'));
  for (const f of [DICOM_FILE, path.join(DICOM_DIR, 'gdcm-CR-MONO1-10-chest.dcm')]) {
    const res = await orthanc(stack, '/instances', { method: 'POST', body: new Uint8Array(fs.readFileSync(f)) });
    assert.equal(res.status, 200);
    ids.push(((await res.json()) as { ID: string }).ID);
  }
  proxy = await startOrthancProxy(stack.env.CXR_ORTHANC_URL, { delayMs: DELAY_MS });
});
after(async () => {
  for (const app of apps) await app.close();
  await proxy?.close();
  await audit?.close();
  await stopQueueStack({ queue, predictor, stack, dir });
});

/** The app with its job queue looking films up through the slow proxy, and POST /jobs bound at `boundMs`. */
async function app(boundMs: number, logger?: Logger): Promise<FastifyInstance> {
  const client = orthancClient(stack!, proxy!.url);
  const model = { sha256: predictor.model.sha256, defaultOperatingPoint: 'balanced' };
  const jobs = boundedJobs(queueApi({ queue, model, orthanc: client }), boundMs, boundMs);
  const a = await buildApp({ predictor, audit, jobs, ...(logger ? { logger } : {}) });
  apps.push(a);
  return a;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const body = () => JSON.stringify({ orthancInstances: ids });

/** Each test starts from an empty queue: a film left queued by one does not hide what the next queues. */
async function emptyQueue(): Promise<{ waiting: number; active: number; completed: number; failed: number }> {
  await queue.obliterate({ force: true });
  const d = await queueDepth(queue);
  assert.deepEqual(d, { waiting: 0, active: 0, completed: 0, failed: 0 });
  return d;
}

/** Waits until no request has reached the PACS for a while (every lookup the server still makes is done). */
async function pacsQuiet(): Promise<void> {
  for (;;) {
    const last = proxy!.seen.at(-1)?.at ?? 0;
    if (Date.now() - last > 3 * DELAY_MS) return;
    await sleep(DELAY_MS);
  }
}

test('past its bound POST /jobs answers 503 as before, the lookups stop, and nothing is queued after it', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const bounded = await app(BOUND_MS);
  const depth0 = await emptyQueue();
  const seen0 = proxy!.seen.length;
  const t0 = Date.now();
  const res = await bounded.inject({
    method: 'POST',
    url: '/api/v1/jobs',
    headers: { 'content-type': 'application/json' },
    payload: body(),
  });
  const answeredAt = Date.now();
  // The 503's contract: the code, the words and Retry-After are those of every bounded answer.
  assert.equal(res.statusCode, 503, res.body);
  assert.equal(res.headers['retry-after'], '1');
  assert.equal(res.json().code, 'QUEUE_UNAVAILABLE');
  assert.equal(
    res.json().detail,
    `the PACS (Orthanc) or the job queue (Redis) did not answer within ${BOUND_MS / 1000} s; retry later`,
  );
  assert.ok(answeredAt - t0 < BOUND_MS + 2_000, `answered after ${answeredAt - t0} ms`);
  assert.ok(proxy!.seen.length > seen0, 'the lookups had started');

  await pacsQuiet();
  const late = proxy!.seen.slice(seen0).filter((r) => r.at > answeredAt + DELAY_MS / 2);
  assert.deepEqual(late, [], 'no lookup reached the PACS after the answer');
  assert.deepEqual(await queueDepth(queue), depth0, 'nothing queued after the 503');

  // The same request with time enough queues both films: the 503 above did not queue them only by luck.
  const roomy = await app(60_000);
  const ok = await roomy.inject({
    method: 'POST',
    url: '/api/v1/jobs',
    headers: { 'content-type': 'application/json' },
    payload: body(),
  });
  assert.equal(ok.statusCode, 202, ok.body);
  const jobs = (ok.json() as { jobs: { id: string; status: string }[] }).jobs;
  assert.deepEqual(
    jobs.map((j) => j.status),
    ['queued', 'queued'],
  );
  for (const j of jobs) await queue.remove(j.id);
});

test('a client that goes away before its answer: the lookups stop and nothing is queued', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  let log = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      log += chunk.toString();
      done();
    },
  });
  const server = await app(60_000, createLogger({ destination: sink }));
  await server.listen({ host: '127.0.0.1', port: 0 });
  const { port } = server.server.address() as { port: number };
  const depth0 = await emptyQueue();
  const seen0 = proxy!.seen.length;
  const gone = new AbortController();
  const posting = fetch(`http://127.0.0.1:${port}/api/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body(),
    signal: gone.signal,
  }).catch((e: unknown) => e);
  await sleep(BOUND_MS);
  assert.ok(proxy!.seen.length > seen0, 'the lookups had started');
  gone.abort();
  const closedAt = Date.now();
  assert.ok((await posting) instanceof Error);
  await pacsQuiet();
  const late = proxy!.seen.slice(seen0).filter((r) => r.at > closedAt + DELAY_MS / 2);
  assert.deepEqual(late, [], 'no lookup reached the PACS after the client left');
  assert.deepEqual(await queueDepth(queue), depth0, 'nothing queued for the client that left');
  // The client's doing (nginx's 499), not a failure of the server (a 500 and its error in the log).
  assert.match(log, /incoming request/, 'the log was written to');
  assert.doesNotMatch(log, /"level":"(error|fatal)"/, log);
});

test('submitOrthancAll with a signal aborted already asks the PACS nothing and queues nothing', {
  skip: skip ?? false,
  timeout: 60_000,
}, async () => {
  const client = orthancClient(stack!, proxy!.url);
  const api = queueApi({
    queue,
    model: { sha256: predictor.model.sha256, defaultOperatingPoint: 'balanced' },
    orthanc: client,
  });
  const seen0 = proxy!.seen.length;
  const depth0 = await emptyQueue();
  const stop = new AbortController();
  const why = new Error('answered already');
  stop.abort(why);
  const r = await api.submitOrthancAll(ids, { heatmap: false, requestedBy: null }, stop.signal).catch((e) => e);
  assert.equal(r, why, "the signal's reason, not a PACS failure");
  assert.equal(proxy!.seen.length, seen0);
  assert.deepEqual(await queueDepth(queue), depth0);
});
