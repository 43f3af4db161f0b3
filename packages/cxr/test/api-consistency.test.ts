// One rule for every operation, as the OpenAPI document says it, so that an integrator validating against the
// document is never surprised: HEAD answered on every GET operation (and said so, not listed as operations);
// a query parameter an operation does not list refused, naming it; an Accept header that takes none of the
// operation's types answered 406; since/until taken exactly as the document's pattern says; and 404 listed
// only on the operations whose path names something that may not exist.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  AUTH,
  ajv,
  ask,
  contractSetUp,
  ctx,
  JOB_ID,
  type Json,
  toJsonSchema,
  upload,
} from './openapi-contract-fixtures';

contractSetUp('api-consistency');

const NO_SUCH_ID = '00000000-0000-4000-8000-000000000000';

/** Every operation of the document with a URL that reaches it and what it answers (with its body, for a POST). */
async function everyOperation(): Promise<{ method: 'GET' | 'POST'; url: string; ok: number; body?: Json }[]> {
  const p = await ask('POST', '/api/v1/predictions', 200, upload(ctx.film));
  ctx.first = p; // the fake queue's finished job answers with it
  const model = await ask('GET', '/api/v1/model', 200);
  const [file] = (model.files as { members: string[] }).members;
  const ops = [
    { method: 'POST' as const, url: '/api/v1/predictions', ok: 200, body: upload(ctx.film) },
    { method: 'GET' as const, url: '/api/v1/predictions', ok: 200 },
    { method: 'GET' as const, url: `/api/v1/predictions/${p.id}`, ok: 200 },
    { method: 'GET' as const, url: `/api/v1/predictions/${p.id}/heatmap.png`, ok: 200 },
    { method: 'GET' as const, url: `/api/v1/predictions/${p.id}/thumbnail.png`, ok: 200 },
    { method: 'POST' as const, url: '/api/v1/jobs', ok: 202, body: upload(ctx.film) },
    { method: 'GET' as const, url: `/api/v1/jobs/${encodeURIComponent(JOB_ID)}`, ok: 200 },
    { method: 'GET' as const, url: '/api/v1/model', ok: 200 },
    { method: 'GET' as const, url: file, ok: 200 },
    { method: 'GET' as const, url: '/api/v1/token', ok: 200 },
    { method: 'GET' as const, url: '/api/v1/health', ok: 200 },
  ];
  const documented = Object.values(ctx.doc.paths).flatMap((item) => Object.keys(item)).length;
  assert.equal(ops.length, documented, 'one request for each operation the document lists');
  return ops;
}

test('HEAD: every GET operation answers it as its GET, without the body, as the document says', async () => {
  assert.match(ctx.doc.info.description, /Every GET operation also answers HEAD/);
  assert.ok(
    Object.values(ctx.doc.paths).every((item) => !('head' in item)),
    'HEAD is said once, not listed as operations',
  );
  for (const { method, url } of await everyOperation()) {
    if (method !== 'GET') continue;
    const get = await ctx.app.inject({ method: 'GET', url, headers: AUTH });
    const head = await ctx.app.inject({ method: 'HEAD', url, headers: AUTH });
    assert.equal(head.statusCode, get.statusCode, `HEAD ${url}`);
    assert.equal(head.headers['content-type'], get.headers['content-type'], `HEAD ${url}`);
    assert.equal(head.body, '', `HEAD ${url} has no body`);
  }
});

test('a query parameter an operation does not list is refused on every operation, naming it', async () => {
  for (const { method, url, body } of await everyOperation()) {
    // GET /health alone ignores its query (a monitor's cache-buster): serve-route-refusals.test.ts.
    if (url.endsWith('/health')) continue;
    const sep = url.includes('?') ? '&' : '?';
    const refused = await ask(method, `${url}${sep}colour=red`, 400, body);
    assert.equal(refused.code, 'INVALID_REQUEST', url);
    assert.match(String(refused.detail), /unknown query parameter 'colour'/, url);
  }
  // The page's own requests (web/client api.ts, history_view.ts) are still taken.
  const since = new Date('2026-01-01T00:00:00').toISOString();
  const until = new Date('2999-01-01T23:59:59.999').toISOString();
  const page = 'page=1&limit=20&label=NORMAL&verdict=assessed&operatingPoint=balanced&hasWarnings=false';
  await ask('GET', `/api/v1/predictions?${page}&since=${since}&until=${until}`, 200);
  await ask('POST', '/api/v1/predictions?operatingPoint=balanced&heatmap=false&patientAge=3.5', 200, upload(ctx.film));
});

test('Accept: 406 where it takes none of the operation’s types; */*, a browser’s and the types work', async () => {
  const browser = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';
  const ops = await everyOperation();
  const count = async () => (await ask('GET', '/api/v1/predictions', 200)).total as number;
  const before = await count();
  for (const { method, url, ok, body } of ops) {
    const auth = !url.endsWith('/health');
    // The request with this Accept: a POST with a film of its own each time.
    const asking = (accept: string) => {
      const f = body ? upload(ctx.film) : { headers: {} };
      return { ...f, auth, headers: { ...f.headers, accept } };
    };
    // Problems alone: the client could take an error but not the success it asked for.
    const refusedAccepts = ['text/csv', 'text/csv, application/json;q=0', 'application/*;q=0, text/*'];
    for (const accept of [...refusedAccepts, 'application/problem+json']) {
      const refused = await ask(method, url, 406, asking(accept));
      assert.equal(refused.code, 'NOT_ACCEPTABLE', `${method} ${url} Accept: ${accept}`);
    }
    for (const accept of ['*/*', browser, 'application/problem+json, */*;q=0.1'])
      await ask(method, url, ok, asking(accept));
  }
  // A refused POST /predictions made no prediction: it is refused before the upload is read.
  assert.equal((await count()) - before, 3, 'only the three accepted uploads were predicted');
  // Those that answer other types take their own.
  const image = ops.find((o) => o.url.endsWith('heatmap.png'))?.url as string;
  await ask('GET', image, 200, { headers: { accept: 'image/png' } });
  await ask('GET', image, 200, { headers: { accept: 'image/*' } });
  await ask('GET', image, 406, { headers: { accept: 'application/json' } });
  await ask('GET', '/api/v1/model', 200, { headers: { accept: 'application/json' } });
  // Outside the API, the metrics and the page keep their own types.
  const metrics = await ctx.app.inject({ url: '/metrics', headers: { ...AUTH, accept: 'text/plain' } });
  assert.equal(metrics.statusCode, 200, metrics.body.slice(0, 200));
});

test('since and until: the server takes what the document’s schema says, a real calendar day each', async () => {
  const op = ctx.doc.paths['/api/v1/predictions'].get;
  for (const name of ['since', 'until']) {
    const param = op.parameters?.find((p) => p.in === 'query' && p.name === name);
    assert.ok(param, name);
    const documented = ajv.compile(toJsonSchema(param.schema) as Json);
    const values = [
      '2026-11-01',
      '2026-11-01T08:00:00Z',
      '2026-11-01t08:00:00z',
      '2026-11-01 09:00+01:00',
      '2026-11-01T09:00+0100',
      '2026-11-01T09:00:00.123456+01',
      '2026-11-01T08:00',
      '2026-11-01T08:00:00',
      '2026-11-01T23:59:60Z',
      '2026-11-01T24:00:00Z',
      '2026-11-01T08:60:00Z',
      '2026-11-01T08:00:00+24:00',
      '2026-11-01T08:00:00+01:60',
      '2026-13-01',
      '2026-00-10',
      '2026-11-00',
      '2026-11-1',
      '26-11-01',
      '2026-11-01T08Z',
      '2026-11-01T08:00:00.Z',
      '2026-11-01T08:00:00+1',
      '2026-11-01Z',
      ' 2026-11-01',
      'yesterday',
    ];
    for (const v of values) {
      const res = await ctx.app.inject({
        url: `/api/v1/predictions?${name}=${encodeURIComponent(v)}`,
        headers: AUTH,
      });
      const where = `${name}=${JSON.stringify(v)}: the server answered ${res.statusCode} ${res.body.slice(0, 200)}`;
      assert.equal(
        documented(v),
        res.statusCode === 200,
        `${where}; the document ${documented(v) ? 'takes' : 'refuses'} it`,
      );
    }
    // What no schema can say, the description does: a day its month does not have is refused.
    assert.match(String((param as { description?: string }).description), /2026-02-30/);
    assert.ok(documented('2026-02-30'));
    const feb30 = await ask('GET', `/api/v1/predictions?${name}=2026-02-30`, 400);
    assert.match(String(feb30.detail), new RegExp(`'${name}' is not a real date`));
  }
});

test('404 is listed only on operations whose path names something that may not exist; each gives it', async () => {
  const listing = Object.values(ctx.doc.paths)
    .flatMap((item) => Object.values(item))
    .filter((op) => op.responses['404'])
    .map((op) => op.operationId)
    .sort();
  assert.deepEqual(listing, [
    'getJob',
    'getModelFile',
    'getPrediction',
    'getPredictionHeatmap',
    'getPredictionThumbnail',
  ]);
  await ask('GET', `/api/v1/predictions/${NO_SUCH_ID}`, 404);
  await ask('GET', `/api/v1/predictions/${NO_SUCH_ID}/heatmap.png`, 404);
  await ask('GET', `/api/v1/predictions/${NO_SUCH_ID}/thumbnail.png`, 404);
  await ask('GET', '/api/v1/model/files/cxr.json', 404);
  await ask('GET', `/api/v1/jobs/${encodeURIComponent(JOB_ID.replace('~balanced', '~screening'))}`, 404);
});
