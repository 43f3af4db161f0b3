// POST/GET /api/v1/jobs on the stack's Redis, as a hospital integrator found them. POST /jobs refused an 11th
// film with 413 TOO_MANY_PARTS "send one image per request" although up to 32 are documented (the app's
// multipart limit of 10 parts, meant for POST /predictions, bound it); a film larger than the whole budget for
// uploads waiting for workers (--job-uploads-mb) got 503 BUSY "retry later" on an empty queue, for ever; and the
// status URL of a job queued for another model (before an upgrade) answered "no job ... (kept for 7 days)".
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type JobQueue, jobIdFor, queueApi, queueDepth } from '../src/queue';
import { buildApp } from '../src/serve/app';
import { type AuditStore, openAuditStore } from '../src/serve/audit';
import type { Predictor } from '../src/predict/predictor';
import { startQueueStack, stopQueueStack } from './queue-stack';
import { gradientFilm } from './serve-fixtures';
import { type Stack, stackUnavailable } from './stack-fixture';

const skip = stackUnavailable();
let stack: Stack | undefined;
let dir = '';
let predictor: Predictor;
let audit: AuditStore;
let queue: JobQueue;
let film: Buffer;
const apps: FastifyInstance[] = [];

before(async () => {
  if (skip) return;
  ({ dir, predictor, stack, queue } = await startQueueStack('jobs-upload-limits', ['redis']));
  audit = await openAuditStore(path.join(dir, 'audit.db'));
  film = await gradientFilm();
});
after(async () => {
  for (const a of apps) await a.close();
  await audit?.close();
  await stopQueueStack({ queue, predictor, stack, dir });
});

/** A listening app whose /jobs routes use the real queue (queue/api.ts) with `uploadCapBytes`. */
async function serve(uploadCapBytes?: number): Promise<string> {
  const model = { sha256: predictor.model.sha256, defaultOperatingPoint: 'balanced' };
  const app = await buildApp({ predictor, audit, jobs: queueApi({ queue, model, orthanc: null, uploadCapBytes }) });
  apps.push(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}

/** `n` films, each its own (the PNG with a different trailing byte pair: a new sha256, the same picture). */
function films(n: number, from = 0): FormData {
  const form = new FormData();
  for (let i = from; i < from + n; i++) {
    const bytes = Buffer.concat([film, Buffer.from([i & 0xff, i >> 8])]);
    form.append('image', new Blob([new Uint8Array(bytes)]), `film-${i}.png`);
  }
  return form;
}

/** Each test from an empty Redis: the uploads' byte count outlives the queue's jobs. */
async function emptyRedis(): Promise<void> {
  // BullMQ's client is a proxy over the ioredis one, which has every command.
  await ((await queue.client) as unknown as { flushdb(): Promise<unknown> }).flushdb();
}

interface Problem {
  code: string;
  detail: string;
}

test('POST /jobs takes up to 32 films in one request; the 33rd is refused by name, and nothing is queued', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const url = await serve();
  await emptyRedis();
  const ok = await fetch(`${url}/api/v1/jobs?heatmap=false`, { method: 'POST', body: films(32) });
  const body = (await ok.json()) as { jobs: { status: string; file: string }[] };
  assert.equal(ok.status, 202, JSON.stringify(body));
  assert.equal(body.jobs.length, 32);
  assert.ok(
    body.jobs.every((j) => j.status === 'queued'),
    JSON.stringify(body.jobs.map((j) => j.status)),
  );
  assert.equal((await queueDepth(queue)).waiting, 32);

  const over = await fetch(`${url}/api/v1/jobs?heatmap=false`, { method: 'POST', body: films(33, 100) });
  const problem = (await over.json()) as Problem;
  assert.equal(over.status, 413, JSON.stringify(problem));
  assert.equal(problem.code, 'TOO_MANY_FILES');
  assert.match(problem.detail, /^at most 32 films per request/);
  assert.doesNotMatch(problem.detail, /one image per request/, 'not the advice of POST /predictions');
  assert.equal((await queueDepth(queue)).waiting, 32, 'none of the 33 was queued');

  // Films sent as plain fields (no filename), more of them than the form fields allowed: said as such.
  const plain = new FormData();
  for (let i = 0; i < 12; i++) plain.append('image', `film-${i}`);
  const fields = await fetch(`${url}/api/v1/jobs`, { method: 'POST', body: plain });
  const asFields = (await fields.json()) as Problem;
  assert.equal(fields.status, 400, JSON.stringify(asFields));
  assert.equal(asFields.code, 'NO_FILE');
  assert.match(asFields.detail, /is a plain form field, not a file/);

  // POST /predictions keeps its one-film advice.
  const two = await fetch(`${url}/api/v1/predictions?heatmap=false`, { method: 'POST', body: films(2) });
  assert.equal(two.status, 400);
  assert.equal(((await two.json()) as Problem).code, 'TOO_MANY_FILES');
});

test('a film larger than the whole job-upload budget is 413 naming the budget and its flag, not 503 for ever', {
  skip: skip ?? false,
  timeout: 60_000,
}, async () => {
  // The budget below one film: on an empty queue it can never fit, whatever the client waits.
  const cap = film.length - 100;
  const url = await serve(cap);
  await emptyRedis();
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`${url}/api/v1/jobs?heatmap=false`, { method: 'POST', body: films(1) });
    const problem = (await res.json()) as Problem;
    assert.equal(res.status, 413, JSON.stringify(problem));
    assert.equal(res.headers.get('retry-after'), null, 'nothing to retry');
    assert.equal(problem.code, 'TOO_LARGE');
    assert.match(problem.detail, /larger than this server's whole budget for uploaded films waiting for a worker/);
    assert.match(problem.detail, /--job-uploads-mb/);
  }
  assert.deepEqual(await queueDepth(queue), { waiting: 0, active: 0, completed: 0, failed: 0 });

  // The film that fits the budget goes in; a store full of other films is still a 503 to retry.
  const roomy = await serve(film.length + 10);
  const first = await fetch(`${roomy}/api/v1/jobs?heatmap=false`, { method: 'POST', body: films(1, 1) });
  assert.equal(first.status, 202, await first.text());
  const full = await fetch(`${roomy}/api/v1/jobs?heatmap=false`, { method: 'POST', body: films(1, 2) });
  assert.equal(full.status, 503, await full.clone().text());
  assert.equal(((await full.json()) as Problem).code, 'BUSY');
});

test("GET /jobs/{id} of another model's job says whose it is, still 404; an unknown job of this model as before", {
  skip: skip ?? false,
  timeout: 60_000,
}, async () => {
  const url = await serve();
  const other = 'ab'.repeat(32);
  const id = jobIdFor(`sha256:${'0'.repeat(64)}`, other, 'balanced');
  const res = await fetch(`${url}/api/v1/jobs/${encodeURIComponent(id)}`);
  const problem = (await res.json()) as Problem;
  assert.equal(res.status, 404, JSON.stringify(problem));
  assert.equal(problem.code, 'NOT_FOUND');
  assert.match(problem.detail, /belongs to model abababababab…, which this server does not serve/);
  assert.match(problem.detail, new RegExp(`it serves ${predictor.model.sha256.slice(0, 12)}…`));
  assert.match(problem.detail, /ask a server running that model/);
  assert.doesNotMatch(problem.detail, /kept for 7 days/);

  const mine = jobIdFor(`sha256:${'0'.repeat(64)}`, predictor.model.sha256, 'balanced');
  const gone = await fetch(`${url}/api/v1/jobs/${encodeURIComponent(mine)}`);
  assert.equal(gone.status, 404);
  assert.match(((await gone.json()) as Problem).detail, /^no job .* \(finished jobs are kept for 7 days\)$/);
});
