// HTTP as a client expects it of the v1 API: a known path asked with another method is 405 with
// Allow (not 404), prediction ids are UUIDs and so case-insensitive, the history's label filter
// matches findings only (a 'cannot-assess' answer has none) while its verdict filter lists each
// status, and a token given in code is held to CXR_API_TOKEN's rule.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import type { AuditRecord } from '../src/predict/prediction_schema';
import { openAuditStore } from '../src/serve/audit';
import { buildApp } from '../src/serve/app';
import { QUEUE_SCRAPE_WAIT_MS, ServeMetrics } from '../src/serve/metrics';
import { startServer } from '../src/serve/server';
import { silentLogger } from '../src/log';
import { auditRecord, serverParts } from './serve-fixtures';

let app: FastifyInstance;

const parts = serverParts('serve-http-rules', {
  ready: async ({ predictor, audit }) => {
    app = await buildApp({ predictor, audit });
  },
  closing: () => app?.close(),
});

const record = (i: number, over: Partial<AuditRecord>) => auditRecord(i, over);

test('a known path asked with another method is 405 with Allow, as a problem; an unknown path stays 404', async () => {
  const cases: [string, string, string][] = [
    ['DELETE', '/api/v1/predictions', 'GET, HEAD, POST'],
    ['PUT', '/api/v1/predictions/0b6f3c7e-0000-4000-8000-000000000001', 'GET, HEAD'],
    ['POST', '/api/v1/predictions/0b6f3c7e-0000-4000-8000-000000000001/heatmap.png', 'GET, HEAD'],
    ['PUT', '/api/v1/health', 'GET, HEAD'],
    ['OPTIONS', '/api/v1/model', 'GET, HEAD'],
    ['POST', '/api/v1/model/files/model.json', 'GET, HEAD'],
    ['GET', '/api/v1/jobs', 'POST'],
    ['POST', '/metrics', 'GET, HEAD'],
  ];
  for (const [method, url, allow] of cases) {
    const res = await app.inject({ method: method as 'GET', url: `${url}?x=1` });
    assert.equal(res.statusCode, 405, `${method} ${url}: ${res.body}`);
    assert.equal(res.headers.allow, allow, `${method} ${url}`);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    const p = res.json();
    assert.equal(p.code, 'METHOD_NOT_ALLOWED');
    assert.equal(p.title, 'Method Not Allowed');
    assert.equal(p.type, 'urn:cxr:problem:method-not-allowed');
    assert.equal(p.detail, `${method} is not allowed on ${url}; use ${allow}`);
  }
  for (const url of ['/api/v1/nothing', '/api/v1/predictions/x/y/z', '/nothing']) {
    const res = await app.inject({ method: 'DELETE', url });
    assert.equal(res.statusCode, 404, url);
    assert.equal(res.headers.allow, undefined, url);
  }
  assert.equal((await app.inject({ method: 'HEAD', url: '/api/v1/health' })).statusCode, 200);
});

test('prediction ids are matched case-insensitively, as UUIDs are, in the urn:uuid: form too', async () => {
  const r = record(1, { hasHeatmap: true, hasThumbnail: true });
  await parts.audit.insert(r, { heatmapPng: Buffer.from('heat'), thumbnailPng: Buffer.from('thumb') });
  for (const id of [r.id.toUpperCase(), `urn:uuid:${r.id.toUpperCase()}`, `URN:UUID:${r.id}`]) {
    const one = await app.inject(`/api/v1/predictions/${id}`);
    assert.equal(one.statusCode, 200, `${id}: ${one.body}`);
    assert.equal(one.json().id, r.id, 'answered with the id as logged');
    assert.equal(one.json().heatmapUrl, `/api/v1/predictions/${r.id}/heatmap.png`);
    for (const [which, bytes] of [
      ['heatmap', 'heat'],
      ['thumbnail', 'thumb'],
    ]) {
      const img = await app.inject(`/api/v1/predictions/${id}/${which}.png`);
      assert.equal(img.statusCode, 200, `${id} ${which}`);
      assert.equal(img.body, bytes);
    }
  }
  const missing = await app.inject('/api/v1/predictions/0B6F3C7E-0000-4000-8000-0000000000FF');
  assert.equal(missing.statusCode, 404);
  assert.match(missing.json().detail, /no prediction with id 0b6f3c7e-0000-4000-8000-0000000000ff/);
  assert.equal((await app.inject('/api/v1/predictions/not-a-uuid')).statusCode, 400);
});

test("history: label matches findings only ('cannot-assess' has none), verdict lists each status", async () => {
  const fresh = await openAuditStore(path.join(parts.dir, 'history.db'));
  const api = await buildApp({ predictor: parts.predictor, audit: fresh });
  try {
    const cannot = { status: 'cannot-assess' as const, reasons: [{ code: 'BLANK' as const, message: 'blank' }] };
    await fresh.insert(record(1, { verdict: { status: 'assessed', reasons: [] } }), null);
    await fresh.insert(record(2, { verdict: cannot, warnings: ['blank'] }), null);
    await fresh.insert(record(3, { verdict: { status: 'outside-population', reasons: [] } }), null);
    await fresh.insert(record(4, { label: 'NORMAL', verdict: cannot, warnings: ['blank'] }), null);
    await fresh.insert(record(5, { warnings: ['low contrast'] }), null); // logged before verdicts: read as not assessed
    await fresh.insert(record(6, { label: 'NORMAL' }), null); // logged before verdicts, no warnings: assessed
    const ids = async (query: string) => {
      const res = await api.inject(`/api/v1/predictions?${query}`);
      assert.equal(res.statusCode, 200, `${query}: ${res.body}`);
      return (res.json().items as { id: string }[]).map((p) => Number(p.id.slice(-2)));
    };
    assert.deepEqual(await ids('label=PNEUMONIA'), [3, 1]);
    assert.deepEqual(await ids('label=NORMAL'), [6]);
    assert.deepEqual(await ids('verdict=cannot-assess'), [5, 4, 2]);
    assert.deepEqual(await ids('verdict=assessed'), [6, 1]);
    assert.deepEqual(await ids('verdict=outside-population'), [3]);
    assert.deepEqual(await ids('label=PNEUMONIA&verdict=assessed'), [1]);
    assert.deepEqual(await ids('label=NORMAL&verdict=cannot-assess'), []);
    const bad = await api.inject('/api/v1/predictions?verdict=maybe');
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().detail, /'verdict' must be one of: assessed, cannot-assess, outside-population/);
    const doc = (await api.inject('/api/v1/openapi.json')).json();
    const params = doc.paths['/api/v1/predictions'].get.parameters as { name: string; description?: string }[];
    assert.match(params.find((p) => p.name === 'label')?.description ?? '', /cannot-assess/);
    assert.ok(params.some((p) => p.name === 'verdict'));
  } finally {
    await api.close();
    await fresh.close();
  }
});

test("a token given in code meets CXR_API_TOKEN's rule (8-512 characters), before the model loads", async () => {
  for (const apiToken of ['short', '', 'has a space in it', 'x'.repeat(513)]) {
    await assert.rejects(
      buildApp({ predictor: parts.predictor, audit: parts.audit, apiToken }),
      /^ApiTokenError: apiToken must be 8-512 printable/,
    );
  }
  await assert.rejects(
    buildApp({ predictor: parts.predictor, audit: parts.audit, tokens: [{ name: 'ops', token: 'abc' }] }),
    /tokens: the token of 'ops' must be 8-512 printable characters/,
  );
  await assert.rejects(
    buildApp({
      predictor: parts.predictor,
      audit: parts.audit,
      apiToken: 'same-token-1',
      tokens: [{ name: 'default', token: 'other-token' }],
    }),
    /token name 'default' appears twice/,
  );
  let loaded = false;
  await assert.rejects(
    startServer({
      host: '127.0.0.1',
      port: 0,
      dbPath: path.join(parts.dir, 'never.db'),
      apiToken: 'short',
      log: silentLogger(),
      loadPredictor: async () => {
        loaded = true;
        return parts.predictor;
      },
    }),
    /apiToken must be 8-512/,
  );
  assert.equal(loaded, false, 'refused before the model is loaded');
  assert.equal(fs.existsSync(path.join(parts.dir, 'never.db')), false);
  const secured = await buildApp({ predictor: parts.predictor, audit: parts.audit, apiToken: 'long-enough' });
  try {
    assert.equal((await secured.inject('/api/v1/predictions')).statusCode, 401);
    const ok = await secured.inject({ url: '/api/v1/predictions', headers: { authorization: 'Bearer long-enough' } });
    assert.equal(ok.statusCode, 200);
  } finally {
    await secured.close();
  }
});

test('/metrics waits at most a second for a job queue that does not answer, and says it is unavailable', async () => {
  const metrics = new ServeMetrics({ defaultMetrics: false });
  let reads = 0;
  // What BullMQ does while Redis is away: the read neither answers nor fails.
  metrics.watchQueue(() => {
    reads++;
    return new Promise(() => {});
  });
  const scraped = await buildApp({ predictor: parts.predictor, audit: parts.audit, metrics });
  try {
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      const res = await scraped.inject('/metrics');
      const took = performance.now() - t0;
      assert.equal(res.statusCode, 200);
      assert.ok(took >= QUEUE_SCRAPE_WAIT_MS - 50 && took < QUEUE_SCRAPE_WAIT_MS + 2_500, `took ${took} ms`);
      // No sample (a gap in the graphs) rather than a number nobody has; the metric itself stays declared.
      assert.doesNotMatch(res.body, /^cxr_queue_(waiting|active|failed) /m);
      assert.match(res.body, /^# TYPE cxr_queue_waiting gauge$/m);
      assert.match(res.body, /^cxr_queue_available 0$/m);
    }
    assert.equal(reads, 1, 'one read for the gauges of a scrape, and a pending read is not repeated');
  } finally {
    await scraped.close();
  }
  const up = new ServeMetrics({ defaultMetrics: false });
  up.watchQueue(async () => ({ waiting: 3, active: 1, failed: 2 }));
  const text = await up.text();
  assert.match(text, /^cxr_queue_waiting 3$/m);
  assert.match(text, /^cxr_queue_active 1$/m);
  assert.match(text, /^cxr_queue_failed 2$/m);
  assert.match(text, /^cxr_queue_available 1$/m);
});
