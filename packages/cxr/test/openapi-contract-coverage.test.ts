// The OpenAPI document against the server as a whole: the request bodies the document accepts are the ones the
// server takes, the routes the server answers and the document's paths are compared both ways, every default or
// example the document gives satisfies its own schema, and a server started from the command line with named
// tokens serves a document whose security says so. openapi-contract.test.ts asks each operation in turn.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import {
  AUTH,
  ajv,
  conforms,
  contractSetUp,
  ctx,
  type Doc,
  form,
  type Json,
  TOKEN,
  toJsonSchema,
} from './openapi-contract-fixtures';
import { spawnServer } from './serve-fixtures';

contractSetUp('openapi-contract-coverage');

test('request bodies: what the document accepts the server takes, and what it refuses the document does', async () => {
  const bodySchema = (url: string, media: string) => {
    const rb = ctx.doc.paths[url].post as unknown as { requestBody: { content: Record<string, { schema: Json }> } };
    return ajv.compile(toJsonSchema(rb.requestBody.content[media].schema) as Json);
  };
  const id = '0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d';
  const jsonBodies: Json[] = [
    { orthancInstances: [id] },
    { orthancInstances: [id.toUpperCase()] },
    { orthancInstances: ['x'] },
    { orthancInstances: [`${id}-0a1b2c3d`] },
    { orthancInstances: [id.replace('a', 'g')] },
    { orthancInstances: [] },
    { orthancInstances: Array(1001).fill(id) },
    { orthancInstances: [id], more: 1 },
  ];
  const jobsJson = bodySchema('/api/v1/jobs', 'application/json');
  for (const body of jsonBodies) {
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/api/v1/jobs',
      headers: { ...AUTH, 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    });
    const shown = JSON.stringify(body).slice(0, 120);
    assert.equal(jobsJson(body), res.statusCode === 202, `${shown}: the document and the server (${res.body}) agree`);
  }
  // A form is an object of its fields to the schema: a file is a binary string.
  const forms: [string, Buffer | string][][] = [
    [['image', ctx.film]],
    [
      ['image', ctx.film],
      ['note', 'x'],
    ],
    [['note', 'x']],
  ];
  for (const [url, ok] of [
    ['/api/v1/predictions', 200],
    ['/api/v1/jobs', 202],
  ] as const) {
    const check = bodySchema(url, 'multipart/form-data');
    for (const fields of forms) {
      const f = form(fields);
      const res = await ctx.app.inject({ method: 'POST', url, headers: { ...AUTH, ...f.headers }, payload: f.body });
      const asObject = Object.fromEntries(
        fields.map(([n]) => [n, url.endsWith('jobs') && n === 'image' ? ['f'] : 'f']),
      );
      const names = fields.map(([n]) => n).join(', ');
      assert.equal(check(asObject), res.statusCode === ok, `${url} with ${names}: the document and the server agree`);
    }
  }
});

/** Every route the server answers, as METHOD and fastify URL, read from its route tree. */
function answeredRoutes(server: FastifyInstance): string[] {
  const out: string[] = [];
  const stack: { depth: number; url: string }[] = [];
  for (const line of server.printRoutes().split('\n')) {
    const m = /^([\s│├└─]*)(\S.*?) \(([A-Z, ]+)\)$/.exec(line) ?? /^([\s│├└─]*)(\S.*)$/.exec(line);
    if (!m) continue;
    const depth = m[1].length;
    while (stack.length && stack[stack.length - 1].depth >= depth) stack.pop();
    const url = (stack[stack.length - 1]?.url ?? '') + m[2];
    stack.push({ depth, url });
    for (const method of (m[3] ?? '').split(', ').filter(Boolean)) out.push(`${method} ${url}`);
  }
  return out;
}

test('every route the server answers is documented, and every documented route is answered', () => {
  const documented = Object.entries(ctx.doc.paths).flatMap(([p, item]) =>
    Object.keys(item).map((m) => `${m.toUpperCase()} ${p.replace(/\{path\}/, '*').replace(/\{(\w+)\}/g, ':$1')}`),
  );
  for (const route of documented) {
    const [method, url] = route.split(' ');
    assert.ok(ctx.app.hasRoute({ method, url }), `${route} is documented but not answered`);
  }
  // Outside the clinical API (docs/api.md): the page (`/`, or its built files: `/*`), /metrics, and the document
  // itself. HEAD is GET's: the document says so once rather than list it (api-consistency.test.ts).
  const undocumented = new Set(['GET /', 'GET /*', 'GET /metrics', 'GET /api/v1/openapi.json']);
  const answered = answeredRoutes(ctx.app).filter((r) => !r.startsWith('HEAD '));
  assert.ok(answered.includes('GET /api/v1/model/files/*'), `the route tree was read: ${answered}`);
  assert.deepEqual(
    answered.filter((r) => !undocumented.has(r) && !documented.includes(r)),
    [],
    'routes answered but not in the document',
  );
});

test("the document's defaults and examples satisfy their own schemas", () => {
  let seen = 0;
  const walk = (s: unknown, where: string): void => {
    if (!s || typeof s !== 'object') return;
    const o = s as Json;
    if (typeof o.type === 'string' || o.$ref !== undefined) {
      for (const k of ['default', 'example'] as const) {
        if (o[k] === undefined) continue;
        seen++;
        const check = ajv.compile(toJsonSchema({ ...o, default: undefined }) as Json);
        assert.ok(
          check(o[k]),
          `${where}: ${k} ${JSON.stringify(o[k])} fails its schema: ${ajv.errorsText(check.errors)}`,
        );
      }
    }
    for (const [k, v] of Object.entries(o)) walk(v, `${where}/${k}`);
  };
  walk(ctx.doc, '#');
  assert.ok(seen > 0, 'the document gives defaults (heatmap, page, limit)');
});

test('cxr serve with CXR_API_TOKENS, over HTTP: the document it serves says what its answers are', async () => {
  const server = await spawnServer(['--model', path.join(ctx.dir, 'model'), '--db', path.join(ctx.dir, 'served.db')], {
    CXR_API_TOKENS: `ward:${TOKEN}`,
  });
  try {
    const served = (await (await fetch(`${server.url}/api/v1/openapi.json`)).json()) as Doc & { security: unknown };
    assert.deepEqual(served.security, [{ bearer: [] }], 'a token is required, and the document says so');
    const answer = async (url: string, headers: Record<string, string> = {}) => {
      const r = await fetch(`${server.url}${url}`, { headers });
      const body = await r.text();
      const headerObj = Object.fromEntries(r.headers.entries());
      return { statusCode: r.status, headers: headerObj, body, json: () => JSON.parse(body) } as LightMyRequestResponse;
    };
    conforms('GET', '/api/v1/model', await answer('/api/v1/model'), 401);
    conforms('GET', '/api/v1/model', await answer('/api/v1/model', { authorization: 'Bearer wrong-token-x' }), 401);
    conforms('GET', '/api/v1/model', await answer('/api/v1/model', AUTH), 200);
    conforms('GET', '/api/v1/health', await answer('/api/v1/health'), 200);
    conforms('GET', '/api/v1/predictions', await answer('/api/v1/predictions', AUTH), 200);
  } finally {
    await server.stop();
  }
});
