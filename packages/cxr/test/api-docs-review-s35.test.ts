// Review (session 35) of the HTTP API against docs/api.md and its OpenAPI document, on a tiny model:
// - every /api/v1 answer says Vary: Accept (docs/api.md, "Accept"), the ones answered outside the API's scope too:
//   a URL the router cannot take, and a path the page's file handler refuses first (`//`, `..`, a name too long);
// - 503 NO_QUEUE says Retry-After: 300, a configuration to fix, not the 1 s that had clients ask every second;
// - GET /jobs/{id}'s documented 503 names QUEUE_UNAVAILABLE, which it answers while Redis is away;
// - POST /jobs reads a JSON body whatever the case of its media type, and one over the JSON limit is a 413 naming
//   that limit (not the upload limit and its maxUploadBytes);
// - GET /health's documented 400 does not say it refuses an unknown query parameter (it ignores its query);
// - POST /predictions answers any body that is not multipart 415 NOT_MULTIPART, whatever the JSON parser found.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { queueApi } from '../src/queue/api';
import { buildApp } from '../src/serve/app';
import { HttpError } from '../src/serve/http_error';
import { idleJobs, serverParts } from './serve-fixtures';

const TOKEN = 'api-review-s35-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const JOB_ID = `sha256:${'b'.repeat(64)}~${'a'.repeat(64)}~balanced`;

let app: FastifyInstance | undefined;
let bare: FastifyInstance | undefined;
/** A server whose queue takes Orthanc ids but whose GET /jobs/{id} finds Redis away. */
let redisAway: FastifyInstance | undefined;

const parts = serverParts('api-review-s35', {
  ready: async ({ predictor, audit, dir }) => {
    // A page folder of its own, so that its file handler (routes/web.ts) is there as under `cxr serve`.
    const webDir = path.join(dir, 'web');
    fs.mkdirSync(webDir);
    fs.writeFileSync(path.join(webDir, 'index.html'), '<!doctype html><title>cxr</title>');
    app = await buildApp({ predictor, audit, apiToken: TOKEN, requestLog: false, webDir });
    bare = await buildApp({ predictor, audit, requestLog: false, webDir });
    const away = () => Promise.reject(new HttpError(503, 'QUEUE_UNAVAILABLE', 'the job queue (Redis) does not answer'));
    redisAway = await buildApp({
      predictor,
      audit,
      requestLog: false,
      webDir,
      jobs: idleJobs({
        modelSha256: 'a'.repeat(64),
        status: away,
        submitOrthancAll: async (ids) => ids.map((i) => ({ id: `orthanc-${i}`, status: 'queued' as const })),
      }),
    });
  },
  closing: async () => {
    await app?.close();
    await bare?.close();
    await redisAway?.close();
  },
});

test('Vary: Accept on /api/v1 answers given outside the API scope (bad escape, //, dot file, long name)', async () => {
  assert.ok(parts.dir);
  const cases: [string, number][] = [
    ['/api/v1/predictions/%zz', 400],
    ['/api/v1//health', 404],
    ['/api/v1/.hidden', 403],
    [`/api/v1/${'a'.repeat(300)}`, 404],
  ];
  for (const [url, status] of cases) {
    const res = await app!.inject({ url, headers: AUTH });
    assert.equal(res.statusCode, status, `${url}: ${res.body}`);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/, url);
    assert.equal(res.headers.vary, 'Accept', `${url} (${status}) says Vary: Accept`);
  }
  // Not added to the page's own answers, and not twice where the scope adds it too.
  assert.equal((await app!.inject({ url: '/%zz' })).headers.vary, undefined, 'outside /api/v1: none');
  assert.equal((await app!.inject({ url: '/api/v1/nothing', headers: AUTH })).headers.vary, 'Accept');
});

test('503 NO_QUEUE says Retry-After: 300 (a server without a queue has none until restarted)', async () => {
  for (const [method, url] of [
    ['POST', '/api/v1/jobs'],
    ['GET', `/api/v1/jobs/${encodeURIComponent(JOB_ID)}`],
  ] as const) {
    const res = await bare!.inject({ method, url, headers: { 'content-type': 'application/json' }, payload: '{}' });
    assert.equal(res.statusCode, 503, res.body);
    assert.equal(res.json().code, 'NO_QUEUE');
    assert.equal(res.headers['retry-after'], '300', `${method} ${url}`);
  }
});

test("GET /jobs/{id}: QUEUE_UNAVAILABLE is among the document's 503 causes, as the server answers it", async () => {
  const res = await redisAway!.inject({ url: `/api/v1/jobs/${encodeURIComponent(JOB_ID)}` });
  assert.equal(res.statusCode, 503, res.body);
  assert.equal(res.json().code, 'QUEUE_UNAVAILABLE');
  const doc = (await redisAway!.inject({ url: '/api/v1/openapi.json' })).json();
  const described = doc.paths['/api/v1/jobs/{id}'].get.responses['503'].description as string;
  assert.match(described, /QUEUE_UNAVAILABLE/, described);
  assert.match(described, /NO_QUEUE/, described);
});

test('POST /jobs takes JSON whatever the case of its media type (RFC 9110: Application/JSON is JSON)', async () => {
  const ids = JSON.stringify({ orthancInstances: ['0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d'] });
  for (const type of ['application/json', 'Application/JSON', 'APPLICATION/json; charset=utf-8']) {
    const res = await redisAway!.inject({
      method: 'POST',
      url: '/api/v1/jobs',
      headers: { 'content-type': type },
      payload: ids,
    });
    assert.equal(res.statusCode, 202, `${type}: ${res.body}`);
    assert.equal(res.json().jobs.length, 1, type);
  }
});

test('a JSON body over the body limit is 413 TOO_LARGE naming that limit, not the upload limit', async () => {
  const ids = Array.from({ length: 30_000 }, () => '0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d');
  const payload = JSON.stringify({ orthancInstances: ids }); // 1.4 MB: over the 1 MiB a JSON body may have
  const res = await redisAway!.inject({
    method: 'POST',
    url: '/api/v1/jobs',
    headers: { 'content-type': 'application/json' },
    payload,
  });
  assert.equal(res.statusCode, 413, res.body);
  const p = res.json();
  assert.equal(p.code, 'TOO_LARGE');
  // docs/api.md: maxUploadBytes is for a file over the upload limit; a whole request over its limit has none.
  assert.equal(p.maxUploadBytes, undefined, res.body);
  assert.doesNotMatch(p.detail, /32 MB/, 'the 32 MB upload limit is not what refused it');
  assert.match(p.detail, /1,048,576 bytes/, p.detail);
});

test("GET /health's documented 400 does not say it refuses an unknown query parameter, which it ignores", async () => {
  const res = await app!.inject({ url: '/api/v1/health?_=1700000000' });
  assert.equal(res.statusCode, 200, res.body);
  const doc = (await app!.inject({ url: '/api/v1/openapi.json' })).json();
  const health = doc.paths['/api/v1/health'].get.responses['400'].description as string;
  assert.doesNotMatch(health, /every operation refuses them/, health);
  assert.match(health, /query is ignored/, health);
});

test('POST /predictions: a body not multipart is 415 NOT_MULTIPART whatever its parser found in it', async () => {
  const cases: [string, string][] = [
    ['application/json', '{}'],
    ['application/json', '{"image": '], // not JSON: was 400 "the JSON body cannot be read"
    ['application/json', `"${'x'.repeat(1_100_000)}"`], // over the JSON limit: was 413 "over the 32 MB limit"
    ['text/plain', 'x'.repeat(1_100_000)],
  ];
  for (const [type, payload] of cases) {
    const res = await app!.inject({
      method: 'POST',
      url: '/api/v1/predictions',
      headers: { ...AUTH, 'content-type': type },
      payload,
    });
    assert.equal(res.statusCode, 415, `${type} of ${payload.length} bytes: ${res.body.slice(0, 200)}`);
    assert.equal(res.json().code, 'NOT_MULTIPART');
    assert.match(res.json().detail, new RegExp(`got ${type}`));
  }
});

test('503 NO_PACS says Retry-After: 300 as well (a server without Orthanc has none until restarted)', async () => {
  // The queue is never reached: the refusal comes before any lookup or Redis call.
  const api = queueApi({
    queue: {} as never,
    model: { sha256: 'ab'.repeat(32), defaultOperatingPoint: 'balanced' },
    orthanc: null,
  });
  const e = await api.submitOrthancAll(['0123abcd'], { heatmap: false, requestedBy: null }).catch((x: unknown) => x);
  assert.ok(e instanceof HttpError, String(e));
  assert.equal(e.code, 'NO_PACS');
  assert.equal(e.retryAfterS, 300);
});
