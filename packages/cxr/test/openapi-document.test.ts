// The OpenAPI document says what the server does, for client generators as much as for people: every
// operation has a stable operationId, lists the problems any request can get before its route runs (403
// HOST_NOT_ALLOWED, 405, 408, 417, 431, 500, 503 while shutting down) besides its own, and its path
// templates are OpenAPI 3.0's (the model files' wildcard is a named parameter, `{path}`, that holds
// slashes). The answers the server really gives for those statuses, over a socket, have the status, media
// type and schema the document lists.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type AuditStore, openAuditStore } from '../src/serve/audit';
import { buildApp } from '../src/serve/app';
import type { ServePredictor } from '../src/serve/predictor_port';
import { loadPredictor, makeTinyModel, tempDir } from './serve-fixtures';

interface Schema {
  $ref?: string;
  type?: string | string[];
  format?: string;
  minimum?: number;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean;
}
interface Response {
  description: string;
  headers?: Record<string, unknown>;
  content?: Record<string, { schema: Schema }>;
}
interface Operation {
  operationId?: string;
  parameters?: { in: string; name: string; required?: boolean }[];
  responses: Record<string, Response>;
}
interface Doc {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

let dir: string;
let predictor: ServePredictor;
let audit: AuditStore;
let app: FastifyInstance;
let port: number;
let doc: Doc;

before(async () => {
  dir = tempDir('openapi-document');
  // An ensemble of two members, so that its files' paths hold a slash (m1/model.json).
  const model = path.join(dir, 'model');
  for (const m of ['m1', 'm2']) await makeTinyModel(path.join(model, m));
  const meta = JSON.parse(fs.readFileSync(path.join(model, 'm1', 'cxr.json'), 'utf8'));
  fs.writeFileSync(path.join(model, 'cxr.json'), JSON.stringify({ ...meta, members: ['m1', 'm2'] }));
  predictor = await loadPredictor(model);
  audit = await openAuditStore(path.join(dir, 'audit.db'));
  app = await buildApp({ predictor, audit, uploadIdleMs: 300 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as net.AddressInfo).port;
  doc = (await app.inject('/api/v1/openapi.json')).json() as Doc;
});

after(async () => {
  await app?.close();
  await audit?.close();
  predictor?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function operations(): { method: string; route: string; op: Operation }[] {
  return Object.entries(doc.paths).flatMap(([route, item]) =>
    Object.entries(item).map(([method, op]) => ({ method: method.toUpperCase(), route, op })),
  );
}

test('every operation has its own stable operationId', () => {
  const ids = Object.fromEntries(operations().map(({ method, route, op }) => [`${method} ${route}`, op.operationId]));
  // Generated clients name their functions after these: a change breaks them, so each is pinned here.
  assert.deepEqual(ids, {
    'POST /api/v1/predictions': 'createPrediction',
    'GET /api/v1/predictions': 'listPredictions',
    'GET /api/v1/predictions/{id}': 'getPrediction',
    'GET /api/v1/predictions/{id}/heatmap.png': 'getPredictionHeatmap',
    'GET /api/v1/predictions/{id}/thumbnail.png': 'getPredictionThumbnail',
    'POST /api/v1/jobs': 'createJobs',
    'GET /api/v1/jobs/{id}': 'getJob',
    'GET /api/v1/model': 'getModel',
    'GET /api/v1/model/files/{path}': 'getModelFile',
    'GET /api/v1/token': 'getToken',
    'GET /api/v1/health': 'getHealth',
  });
  const all = Object.values(ids);
  assert.equal(new Set(all).size, all.length, 'operationIds are unique');
});

test('every operation lists the problems any request can get, each a Problem', () => {
  const ops = operations();
  assert.ok(ops.length >= 10, `${ops.length} operations`);
  for (const { method, route, op } of ops) {
    const where = `${method} ${route}`;
    for (const status of ['403', '405', '408', '417', '431', '500', '503'])
      assert.ok(op.responses[status], `${where} lists ${status} (has ${Object.keys(op.responses)})`);
    // Every error answer, the route's own included, is application/problem+json with the Problem schema.
    for (const [status, r] of Object.entries(op.responses).filter(([s]) => Number(s) >= 400)) {
      assert.equal(
        r.content?.['application/problem+json']?.schema.$ref,
        '#/components/schemas/Problem',
        `${where} ${status}: ${JSON.stringify(r)}`,
      );
    }
    assert.match(op.responses['403'].description, /HOST_NOT_ALLOWED/, where);
    assert.ok(op.responses['405'].headers?.Allow, `${where}: 405 names its Allow header`);
    assert.match(op.responses['503'].description, /shutting down/i, where);
    assert.ok(op.responses['503'].headers?.['Retry-After'], `${where}: 503 names Retry-After`);
    // Only a request with a body meets the origin check and the body watch.
    const body = method === 'POST';
    assert.equal(/CROSS_ORIGIN/.test(op.responses['403'].description), body, `${where} 403`);
    assert.equal(/BODY_TIMEOUT/.test(op.responses['408'].description), body, `${where} 408`);
  }
  // The public probe too, and its own 503 body still beside the problem.
  const health = doc.paths['/api/v1/health'].get.responses;
  assert.ok(health['503'].content?.['application/json'], 'the degraded health body');
  assert.ok(!health['401'], 'health needs no token');
});

test("path templates are OpenAPI 3.0's: every {name} a required path parameter, none named '*'", async () => {
  for (const { method, route, op } of operations()) {
    const where = `${method} ${route}`;
    assert.ok(!route.includes('*'), where);
    const names = [...route.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]);
    for (const n of names) assert.match(n, /^[A-Za-z_]\w*$/, where);
    const params = (op.parameters ?? []).filter((p) => p.in === 'path');
    assert.deepEqual(params.map((p) => p.name).sort(), [...names].sort(), where);
    assert.ok(
      params.every((p) => p.required),
      where,
    );
  }
  // The model's files are reached through the template as documented, slashes and all, as sent or encoded.
  const files = doc.paths['/api/v1/model/files/{path}'].get;
  assert.match(JSON.stringify(files.parameters), /may hold slashes/);
  const listed = (await app.inject('/api/v1/model')).json().files.members as string[];
  assert.deepEqual(listed, ['/api/v1/model/files/m1/model.json', '/api/v1/model/files/m2/model.json']);
  for (const url of listed) {
    const rel = url.slice('/api/v1/model/files/'.length);
    const asSent = await app.inject('/api/v1/model/files/{path}'.replace('{path}', rel));
    const encoded = await app.inject('/api/v1/model/files/{path}'.replace('{path}', encodeURIComponent(rel)));
    assert.equal(asSent.statusCode, 200, `${rel}: ${asSent.body.slice(0, 200)}`);
    assert.equal(encoded.statusCode, 200, `${encodeURIComponent(rel)}: ${encoded.body.slice(0, 200)}`);
    assert.equal(encoded.body, asSent.body);
  }
});

/** Where `value` does not fit `schema` (the document's own, $refs resolved): none when it fits. */
function misfits(schema: Schema, value: unknown, at = 'body'): string[] {
  const s = schema.$ref ? doc.components.schemas[schema.$ref.replace('#/components/schemas/', '')] : schema;
  assert.ok(s, `unresolved ${schema.$ref}`);
  const types = [s.type ?? []].flat();
  const typeOf = (v: unknown) =>
    v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v;
  const t = typeOf(value);
  if (types.length && !types.includes(t) && !(t === 'integer' && types.includes('number')))
    return [`${at}: ${t}, not ${types.join(' or ')}`];
  const out: string[] = [];
  if (s.format === 'uri' && typeof value === 'string' && !URL.canParse(value)) out.push(`${at}: not a URI`);
  if (s.minimum !== undefined && typeof value === 'number' && value < s.minimum) out.push(`${at} < ${s.minimum}`);
  if (t === 'object') {
    const o = value as Record<string, unknown>;
    for (const k of s.required ?? []) if (!(k in o)) out.push(`${at}.${k} missing`);
    for (const [k, v] of Object.entries(o)) {
      const p = s.properties?.[k];
      if (p) out.push(...misfits(p, v, `${at}.${k}`));
      else if (s.additionalProperties === false) out.push(`${at}.${k} is not in the schema`);
    }
  }
  return out;
}

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends `head` (and `body`) over a socket of its own and reads the answer until the server closes it. */
function raw(head: string, body = ''): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(head + body));
    const got: Buffer[] = [];
    sock.on('data', (b: Buffer) => got.push(b));
    sock.on('error', reject);
    sock.on('close', () => {
      const text = Buffer.concat(got).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const [statusLine, ...fields] = text.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const f of fields) headers[f.slice(0, f.indexOf(':')).toLowerCase()] = f.slice(f.indexOf(':') + 1).trim();
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: text.slice(end + 4) });
    });
  });
}

/** A request's head; `Connection: close` so that the server closes the socket after its answer. */
const request = (method: string, url: string, headers: Record<string, string | number> = {}) =>
  `${method} ${url} HTTP/1.1\r\n` +
  Object.entries({ Host: `127.0.0.1:${port}`, Connection: 'close', ...headers })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('') +
  '\r\n';

test('the answers of those statuses are the documented ones: status, media type, Problem schema', async () => {
  const multipart = 'multipart/form-data; boundary=b';
  const cases: { op: [string, string]; code: string; answer: () => Promise<RawAnswer> }[] = [
    {
      op: ['get', '/api/v1/health'],
      code: 'HOST_NOT_ALLOWED',
      answer: () => raw(request('GET', '/api/v1/health', { Host: 'pacs-viewer.hospital.lan' })),
    },
    {
      op: ['post', '/api/v1/predictions'],
      code: 'CROSS_ORIGIN',
      answer: () =>
        raw(
          request('POST', '/api/v1/predictions', {
            Origin: 'http://elsewhere.example',
            'Content-Type': multipart,
            'Content-Length': 0,
          }),
        ),
    },
    {
      op: ['get', '/api/v1/predictions'],
      code: 'METHOD_NOT_ALLOWED',
      answer: () => raw(request('DELETE', '/api/v1/predictions')),
    },
    {
      op: ['post', '/api/v1/predictions'],
      code: 'EXPECTATION_FAILED',
      answer: () =>
        raw(request('POST', '/api/v1/predictions', { Expect: 'foo', 'Content-Type': multipart, 'Content-Length': 0 })),
    },
    {
      op: ['get', '/api/v1/model'],
      code: 'HEADERS_TOO_LARGE',
      answer: () => raw(request('GET', '/api/v1/model', { 'X-Big': 'a'.repeat(20_000) })),
    },
    {
      // A body that stops arriving (the app waits 300 ms here, 10 s by default).
      op: ['post', '/api/v1/predictions'],
      code: 'BODY_TIMEOUT',
      answer: () =>
        raw(
          request('POST', '/api/v1/predictions?heatmap=false', { 'Content-Type': multipart, 'Content-Length': 1000 }),
          '--b\r\n',
        ),
    },
  ];
  for (const { op, code, answer } of cases) {
    const a = await answer();
    const where = `${op[0].toUpperCase()} ${op[1]} ${code}: ${a.status} ${a.body.slice(0, 300)}`;
    const documented = doc.paths[op[1]][op[0]].responses[String(a.status)];
    assert.ok(documented, `${where}: status not in the document`);
    const media = a.headers['content-type']?.split(';')[0];
    const schema = documented.content?.[media]?.schema;
    assert.ok(schema, `${where}: ${media} not documented for it`);
    const body = JSON.parse(a.body);
    assert.equal(body.code, code, where);
    assert.equal(body.status, a.status, where);
    assert.deepEqual(misfits(schema, body), [], where);
    // The check can fail: a field the Problem does not declare, or one it requires missing.
    assert.notDeepEqual(misfits(schema, { ...body, extra: 1 }), [], where);
    assert.notDeepEqual(misfits(schema, { ...body, code: undefined }), [], where);
  }
});
