// The Accept header read as RFC 9110 says (§12.5.1, §12.4.2): a client that takes only problem documents
// (application/problem+json) cannot take an operation's success, so it is answered 406 rather than a JSON or
// PNG body it said it cannot take; and an element whose weight is not a qvalue (`q=`, `q=abc`, `q=1.5`) is
// malformed and passed over, as an element that is not type/subtype is, never read as q=0 ("not this") or q=1.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { accepts, mediaRanges, preference } from '../src/serve/accept';
import { buildApp } from '../src/serve/app';
import { auditRecord, serverParts } from './serve-fixtures';

let app: FastifyInstance;
let id = '';

serverParts('serve-accept-rules', {
  ready: async ({ predictor, audit }) => {
    const r = auditRecord(1, { hasHeatmap: true, hasThumbnail: true });
    await audit.insert(r, { heatmapPng: Buffer.from('heat'), thumbnailPng: Buffer.from('thumb') });
    id = r.id;
    app = await buildApp({ predictor, audit, requestLog: false });
  },
  closing: () => app?.close(),
});

const get = (url: string, accept: string) => app.inject({ url, headers: { accept } });

test('Accept: application/problem+json alone is 406 on JSON and PNG operations; with the type it works', async () => {
  const json = ['/api/v1/model', '/api/v1/health', '/api/v1/predictions', `/api/v1/predictions/${id}`];
  const png = [`/api/v1/predictions/${id}/heatmap.png`, `/api/v1/predictions/${id}/thumbnail.png`];
  for (const url of [...json, ...png]) {
    for (const accept of ['application/problem+json', 'application/problem+json;q=1, text/csv']) {
      const res = await get(url, accept);
      assert.equal(res.statusCode, 406, `${url} Accept: ${accept}: ${res.body.slice(0, 200)}`);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/, url);
      assert.equal(res.json().code, 'NOT_ACCEPTABLE', url);
      assert.equal(res.headers.vary, 'Accept', url);
    }
    for (const accept of ['*/*', 'application/problem+json, */*;q=0.1']) {
      const res = await get(url, accept);
      assert.equal(res.statusCode, 200, `${url} Accept: ${accept}: ${res.body.slice(0, 200)}`);
    }
  }
  for (const url of json) {
    const res = await get(url, 'application/json, application/problem+json');
    assert.equal(res.statusCode, 200, `${url}: ${res.body.slice(0, 200)}`);
    assert.match(String(res.headers['content-type']), /^application\/json/, url);
  }
  for (const url of png) {
    const res = await get(url, 'image/png, application/problem+json');
    assert.equal(res.statusCode, 200, url);
    assert.equal(res.headers['content-type'], 'image/png', url);
    // A missing image is still answered with the problem the client takes.
    const missing = url.replace(id, '00000000-0000-4000-8000-000000000000');
    assert.equal((await get(missing, 'image/png, application/problem+json')).statusCode, 404, missing);
  }
});

test('a q that is not an RFC 9110 qvalue makes its element malformed: passed over, not q=0 nor q=1', () => {
  for (const q of ['', 'abc', '1.5', '2', '-1', '0.1234', '1.001', '.5', '0x1', 'Infinity', '1e0', '0.5x']) {
    assert.deepEqual(mediaRanges(`application/json;q=${q}`), [], `q=${q}`);
    assert.deepEqual(
      mediaRanges(`text/csv, application/json;q=${q}`).map((r) => `${r.type}/${r.subtype}`),
      ['text/csv'],
      `q=${q}`,
    );
  }
  for (const [q, want] of [
    ['0', 0],
    ['0.', 0],
    ['0.8', 0.8],
    ['0.125', 0.125],
    ['1', 1],
    ['1.000', 1],
    [' 0.5 ', 0.5],
  ] as const) {
    assert.deepEqual(mediaRanges(`application/json;Q=${q}`), [{ type: 'application', subtype: 'json', q: want }]);
  }
  // Passed over: the rest of the header decides, as for an element that is not type/subtype.
  assert.equal(preference('application/json;q=', 'application/json'), 1, 'a header left empty takes anything');
  assert.equal(accepts('text/csv, application/json;q=', 'application/json'), false, 'only text/csv is left');
  assert.equal(accepts('*/*;q=0.5, application/json;q=abc', 'application/json'), true, 'not a q=0 exclusion');
  assert.equal(preference('*/*;q=0.5, application/json;q=1.5', 'application/json'), 0.5, 'not a q above 1');
});

test('over HTTP: a malformed q neither refuses nor takes its type', async () => {
  // Read as q=0 before: "application/json;q=" excluded JSON, so the header excluded everything it named.
  assert.equal((await get('/api/v1/model', 'application/json;q=')).statusCode, 200);
  assert.equal((await get('/api/v1/model', '*/*;q=0.5, application/json;q=')).statusCode, 200);
  // Read as q=1 before: "q=abc" took the type it named.
  assert.equal((await get('/api/v1/model', 'text/csv, application/json;q=abc')).statusCode, 406);
  assert.equal((await get('/api/v1/model', 'text/csv, application/json;q=1.5')).statusCode, 406);
  assert.equal((await get(`/api/v1/predictions/${id}/heatmap.png`, 'text/csv, image/png;q=2')).statusCode, 406);
  assert.equal((await get('/api/v1/model', 'text/csv, application/json;q=0.001')).statusCode, 200);
});
