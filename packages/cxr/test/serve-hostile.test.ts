// Requests built to hurt the server rather than use it: a JSON body carrying __proto__ or constructor keys
// (POST /jobs, the one route that takes JSON) neither pollutes prototypes nor passes the body's schema with the
// key stripped; a path segment of any length is refused fast, as a problem, never scanned or answered 500; and
// a client that dribbles its headers (slowloris) is answered 408 and cut off within the headers' bound.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/serve/app';
import { idleJobs, serverParts } from './serve-fixtures';

let app: FastifyInstance;
let url = '';
const queued: string[] = [];

/** A queue that takes every id offered: what reaches it got past the route's checks. */
const jobs = idleJobs({
  submitUpload: async () => ({ id: 'job-upload', status: 'queued' }),
  submitOrthancAll: async (ids) => {
    queued.push(...ids);
    return ids.map(() => ({ id: null, status: 'skipped' as const }));
  },
});

serverParts('serve-hostile', {
  ready: async ({ predictor, audit }) => {
    app = await buildApp({ predictor, audit, jobs, requestLog: false, headersTimeoutMs: 600 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}`;
  },
  closing: () => app?.close(),
});

const ID = '0a1b2c3d-4e5f6a7b-8c9d0e1f-2a3b4c5d-6e7f8a9b';

test('a JSON body with __proto__ or constructor keys: 400, nothing queued, no prototype touched', async () => {
  const post = (body: string) =>
    app.inject({ method: 'POST', url: '/api/v1/jobs', headers: { 'content-type': 'application/json' }, body });
  assert.equal((await post(`{"orthancInstances":["${ID}"]}`)).statusCode, 202, 'the plain body is taken');
  queued.length = 0;
  const ids = `"orthancInstances":["${ID}"]`;
  for (const body of [
    `{${ids},"__proto__":{"polluted":"yes"}}`,
    `{"__proto__":{"orthancInstances":["${ID}"]}}`,
    `{${ids},"constructor":{"prototype":{"polluted":"yes"}}}`,
    `{"orthancInstances":[{"__proto__":{"polluted":"yes"}}]}`,
    `{${ids},"nested":{"__proto__":{"polluted":"yes"}}}`,
  ]) {
    const res = await post(body);
    assert.equal(res.statusCode, 400, `${body}: ${res.body}`);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    assert.equal(res.json().code, 'INVALID_REQUEST', body);
  }
  assert.deepEqual(queued, [], 'nothing got past the checks');
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal((Object.prototype as Record<string, unknown>).orthancInstances, undefined);
  // The multipart uploads' field names (@fastify/multipart refuses these itself): 400 as well.
  for (const [url, field] of [
    ['/api/v1/predictions', '__proto__'],
    ['/api/v1/jobs', 'constructor'],
  ]) {
    const b = 'hostile';
    const payload = `--${b}\r\nContent-Disposition: form-data; name="${field}"\r\n\r\n{"polluted":1}\r\n--${b}--\r\n`;
    const headers = { 'content-type': `multipart/form-data; boundary=${b}` };
    const res = await app.inject({ method: 'POST', url, payload, headers });
    assert.equal(res.statusCode, 400, `${url} ${field}: ${res.body}`);
    assert.match(res.json().detail, /prototype property is not allowed/, url);
  }
  assert.deepEqual(queued, []);
  // The query too: a name like these is an unknown parameter, refused as any other.
  for (const q of ['__proto__=1', '__proto__[polluted]=1', 'constructor=1']) {
    const res = await app.inject(`/api/v1/predictions?${q}`);
    assert.equal(res.statusCode, 400, `${q}: ${res.body}`);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  }
});

test('a path segment of any length is refused fast, as a problem (400, 404 or 431), never 500', async () => {
  for (const n of [301, 5_000, 15_000, 100_000]) {
    const long = 'a'.repeat(n);
    for (const p of [
      `/api/v1/predictions/${long}`,
      `/api/v1/jobs/${long}`,
      `/api/v1/predictions/${long}/heatmap.png`,
    ]) {
      // The fastest of up to three: a server that scans the path is slow every time, a test process
      // descheduled for a moment (a loaded machine) only once.
      let ms = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 3 && ms >= 1000; i++) {
        const t0 = performance.now();
        const res = await fetch(url + p);
        const body = (await res.json()) as { code: string };
        ms = Math.min(ms, performance.now() - t0);
        assert.ok([400, 404, 431].includes(res.status), `${n}: ${res.status} ${body.code}`);
        assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
      }
      assert.ok(ms < 1000, `${p.slice(0, 40)}… (${n}) took ${ms.toFixed(0)} ms`);
    }
  }
});

test('headers dribbled a byte at a time (slowloris): 408 and the connection closed within the bound', async () => {
  const { port } = new URL(url);
  for (const start of ['GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ', '']) {
    const socket = net.connect(Number(port), '127.0.0.1');
    await new Promise<void>((resolve) => socket.on('connect', () => resolve()));
    const t0 = performance.now();
    let answer = '';
    socket.on('data', (d) => {
      answer += d;
    });
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => {});
    if (start) socket.write(start);
    // A byte every 100 ms, never the blank line that ends the headers; nothing at all for the silent client.
    const drip = setInterval(() => start && !socket.destroyed && socket.write('a'), 100);
    const cut = await Promise.race([closed.then(() => true), new Promise((r) => setTimeout(() => r(false), 5_000))]);
    clearInterval(drip);
    socket.destroy();
    const ms = performance.now() - t0;
    assert.equal(cut, true, `${start ? 'a dribbling' : 'a silent'} client still connected after 5 s`);
    assert.ok(ms < 2_500, `cut after ${ms.toFixed(0)} ms`);
    if (start) {
      assert.match(answer, /^HTTP\/1\.1 408 /, answer.slice(0, 200));
      assert.match(answer, /"code":"TIMEOUT"/);
    }
  }
  // The bound is a server setting: the default, 20 s, where the server is created.
  assert.equal(app.server.headersTimeout, 600);
  assert.equal(app.server.requestTimeout, 120_000);
  assert.equal(app.server.keepAliveTimeout, 72_000);
});
