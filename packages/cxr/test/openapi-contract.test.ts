// The API as a client generated from its OpenAPI document sees it: every operation is asked for real, with
// answers that succeed and answers that fail (400, 401, 404, 405, 413, 415, 422, 503), and each answer's
// status, media type, headers and body must be ones the document lists for that operation, the body valid
// against the documented schema (Ajv, after OpenAPI 3.0's `nullable` is read as JSON Schema's null type).
// The routes the server answers and the document's paths are also compared, both ways, and every default or
// example the document gives must satisfy its own schema.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { type AuditStore, openAuditStore } from '../src/serve/audit';
import { AuditUnavailableError } from '../src/serve/audit_store';
import { buildApp } from '../src/serve/app';
import type { JobState, JobsPort, Submitted } from '../src/serve/routes/jobs';
import type { ServePredictor } from '../src/serve/predictor_port';
import {
  DICOM_FILE,
  gradientFilm,
  loadPredictor,
  makeTinyModel,
  spawnServer,
  tempDir,
  XRAY_JPEG,
} from './serve-fixtures';

type Json = Record<string, unknown>;
interface Operation {
  operationId: string;
  parameters?: { in: string; name: string; schema: Json }[];
  responses: Record<string, { headers?: Record<string, unknown>; content?: Record<string, { schema: Json }> }>;
}
interface Doc {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json> };
}

const TOKEN = 'contract-token-0123';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const MAX_UPLOAD = 256 * 1024;
const SHA = 'a'.repeat(64);
const JOB_ID = `sha256:${'b'.repeat(64)}~${SHA}~balanced`;

let dir: string;
let predictor: ServePredictor;
let audit: AuditStore;
let downAudit: AuditStore;
let down = false;
let app: FastifyInstance;
/** No job queue, and an audit log that stops answering once `down` is set (as a stopped database does). */
let bare: FastifyInstance;
let doc: Doc;
/** A chest film, assessed (its heat map made); and a gradient, which is not, for the 404 of a heat map none made. */
let film: Buffer;
let gradient: Buffer;
let first: Json = {};
let unassessed: Json = {};
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addFormat('binary', true);

/** OpenAPI 3.0's schema dialect as JSON Schema: `nullable` is a null type (and a null enum value). */
function toJsonSchema(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(toJsonSchema);
  if (!s || typeof s !== 'object') return s;
  const out: Json = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === '$ref') out[k] = `doc${v}`;
    else if (k === 'properties')
      out[k] = Object.fromEntries(Object.entries(v as Json).map(([n, p]) => [n, toJsonSchema(p)]));
    else if (k !== 'nullable' && k !== 'example') out[k] = toJsonSchema(v);
  }
  if ((s as Json).nullable === true) {
    if (typeof out.type === 'string') out.type = [out.type, 'null'];
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  }
  return out;
}

/** A fake queue: the routes' contract is under test here, not Redis (queue-*.test.ts test the real one). */
const jobs: JobsPort = {
  modelSha256: SHA,
  canonicalId: (id) => (/^sha256:[0-9a-f]{64}~[0-9a-f]{64}~\w+$/i.test(id) ? id.toLowerCase() : null),
  submitUpload: async (): Promise<Submitted> => ({ id: JOB_ID, status: 'queued' }),
  submitOrthanc: async (): Promise<Submitted> => ({ id: 'orthanc-x', status: 'queued' }),
  submitOrthancAll: async (ids) => ids.map((i) => ({ id: `orthanc-${i}~${SHA}~balanced`, status: 'queued' as const })),
  status: async (id): Promise<JobState | null> =>
    id === JOB_ID ? { id, status: 'completed', outcome: 'predicted', prediction: first, error: null } : null,
  depth: async () => ({ waiting: 0, active: 0, failed: 0 }),
};

before(async () => {
  dir = tempDir('openapi-contract');
  const model = await makeTinyModel(path.join(dir, 'model'));
  predictor = await loadPredictor(model);
  audit = await openAuditStore(path.join(dir, 'audit.db'));
  downAudit = await openAuditStore(path.join(dir, 'down.db'));
  const away = new AuditUnavailableError('test.db', 'does not answer: stopped');
  const outage = Object.create(downAudit) as AuditStore;
  for (const m of ['ping', 'list', 'get', 'image', 'count'] as const) {
    const real = downAudit[m].bind(downAudit) as (...a: unknown[]) => Promise<never>;
    (outage as unknown as Json)[m] = (...a: unknown[]) => (down ? Promise.reject(away) : real(...a));
  }
  app = await buildApp({ predictor, audit, apiToken: TOKEN, maxUploadBytes: MAX_UPLOAD, jobs });
  bare = await buildApp({ predictor, audit: outage });
  doc = (await app.inject('/api/v1/openapi.json')).json() as Doc;
  ajv.addSchema({ $id: 'doc', components: toJsonSchema(doc.components) as Json });
  film = fs.readFileSync(XRAY_JPEG);
  gradient = await gradientFilm();
});

after(async () => {
  await app?.close();
  await bare?.close();
  await audit?.close();
  await downAudit?.close();
  predictor?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** The document's operation for a request path (its template's `{x}` matching one segment, `{path}` the rest). */
function operationOf(method: string, url: string, status: number): { template: string; op: Operation } {
  const bare = url.split('?')[0];
  for (const [template, item] of Object.entries(doc.paths)) {
    const re = new RegExp(`^${template.replace(/\{path\}/, '.+').replace(/\{[^}]+\}/g, '[^/]+')}$`);
    // A 405 is a method the path lists no operation for: each of the path's operations documents it.
    const op = item[method.toLowerCase()] ?? (status === 405 ? Object.values(item)[0] : undefined);
    if (re.test(bare) && op) return { template, op };
  }
  throw new Error(`${method} ${bare}: no operation in the document`);
}

/** Asserts the answer is one the document lists for the operation; returns its JSON body ({} for a binary one). */
function conforms(method: string, url: string, res: LightMyRequestResponse, status: number): Json {
  const { template, op } = operationOf(method, url, status);
  const where = `${op.operationId} (${method} ${template}) answered ${res.statusCode}: ${res.body.slice(0, 300)}`;
  assert.equal(res.statusCode, status, where);
  const documented = op.responses[String(res.statusCode)] ?? op.responses.default;
  assert.ok(documented, `${where}: status not in the document`);
  for (const h of Object.keys(documented.headers ?? {}))
    assert.ok(res.headers[h.toLowerCase()] !== undefined, `${where}: documented header ${h} missing`);
  const media = String(res.headers['content-type'] ?? '').split(';')[0];
  const content = documented.content ?? {};
  assert.ok(media in content, `${where}: Content-Type ${media} not among ${Object.keys(content)}`);
  const schema = content[media].schema;
  if (schema.format === 'binary') return {};
  const body = res.json() as Json;
  const check = ajv.compile(toJsonSchema(schema) as Json);
  assert.ok(check(body), `${where}: ${ajv.errorsText(check.errors)}`);
  return body;
}

async function ask(
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  status: number,
  o: { body?: Buffer | string; headers?: Record<string, string>; auth?: boolean; on?: FastifyInstance } = {},
): Promise<Json> {
  const headers = { ...(o.auth === false ? {} : AUTH), ...o.headers };
  const res = await (o.on ?? app).inject({ method, url, headers, payload: o.body });
  return conforms(method, url, res, status);
}

function upload(content: Buffer) {
  return form([['image', content]]);
}

test('POST /predictions: a prediction, and each refusal, as documented', async () => {
  const u = upload(film);
  first = await ask('POST', '/api/v1/predictions', 200, u);
  // Its query honoured.
  const p = await ask('POST', '/api/v1/predictions?heatmap=false&operatingPoint=screening&patientAge=0.5', 200, u);
  assert.equal(p.heatmapUrl, null, 'heatmap=false makes none');
  assert.equal(p.operatingPoint, 'screening');
  assert.equal((p.verdict as { status: string }).status, 'outside-population', 'patientAge is read');
  await ask('POST', '/api/v1/predictions', 401, { ...u, auth: false });
  await ask('POST', '/api/v1/predictions?colour=red', 400, u);
  await ask('POST', '/api/v1/predictions?operatingPoint=strict', 400, u);
  await ask('POST', '/api/v1/predictions?patientAge=0x10', 400, u);
  await ask('POST', '/api/v1/predictions', 413, upload(Buffer.alloc(MAX_UPLOAD + 1, 1)));
  await ask('POST', '/api/v1/predictions', 415, { body: 'x', headers: { 'content-type': 'text/plain' } });
  await ask('POST', '/api/v1/predictions', 415, upload(Buffer.from('GIF89a not an image at all')));
  const broken = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(500, 7)]);
  await ask('POST', '/api/v1/predictions', 422, upload(broken));
  await ask('PUT', '/api/v1/predictions', 405, u);
  unassessed = await ask('POST', '/api/v1/predictions', 200, upload(gradient));
  const dicom = await ask('POST', '/api/v1/predictions', 200, upload(fs.readFileSync(DICOM_FILE)));
  assert.equal((dicom.input as Json).kind, 'dicom');
});

test('GET /predictions: pages, filters and refusals, as documented', async () => {
  const page = await ask('GET', '/api/v1/predictions?limit=1&page=1', 200);
  assert.equal((page.items as unknown[]).length, 1, 'limit is honoured');
  const q = 'label=PNEUMONIA&verdict=assessed&operatingPoint=balanced&hasWarnings=false';
  await ask('GET', `/api/v1/predictions?${q}&since=2026-01-01&until=2999-01-01T00:00:00Z`, 200);
  const items = async (q: string) => (await ask('GET', `/api/v1/predictions?${q}`, 200))?.items as Json[];
  const filters: [string, (r: Json) => boolean][] = [
    ['verdict=cannot-assess', (r) => (r.verdict as Json).status === 'cannot-assess'],
    ['verdict=outside-population', (r) => (r.verdict as Json).status === 'outside-population'],
    ['operatingPoint=screening', (r) => r.operatingPoint === 'screening'],
    [`label=${first.label}`, (r) => r.label === first.label],
    ['hasWarnings=true', (r) => (r.warnings as unknown[]).length > 0],
    ['hasWarnings=false', (r) => (r.warnings as unknown[]).length === 0],
  ];
  for (const [q, holds] of filters) {
    const found = await items(q);
    assert.ok(found.length > 0 && found.every(holds), `${q} is honoured: ${JSON.stringify(found)}`);
  }
  assert.equal((await items('since=2999-01-01')).length, 0, 'since is honoured');
  assert.equal((await items('until=2000-01-01')).length, 0, 'until is honoured');
  const [a] = await items('limit=1&page=1');
  const [b] = await items('limit=1&page=2');
  assert.notEqual(a.id, b.id, 'page is honoured');
  await ask('GET', '/api/v1/predictions', 401, { auth: false });
  await ask('GET', '/api/v1/predictions?limit=201', 400);
  await ask('GET', '/api/v1/predictions?sort=asc', 400);
  await ask('GET', '/api/v1/predictions?since=2026-02-01&until=2026-01-01', 400);
  await ask('GET', '/api/v1/predictions?since=2026-01-01T08:00', 400);
  await ask('DELETE', '/api/v1/predictions', 405);
});

test('one prediction, its heat map and thumbnail, as documented', async () => {
  const id = String(first.id);
  await ask('GET', `/api/v1/predictions/${id}`, 200);
  await ask('GET', `/api/v1/predictions/urn:uuid:${id.toUpperCase()}`, 200);
  await ask('GET', `/api/v1/predictions/${id}`, 401, { auth: false });
  await ask('GET', '/api/v1/predictions/not-a-uuid', 400);
  await ask('GET', '/api/v1/predictions/00000000-0000-4000-8000-000000000000', 404);
  for (const which of ['heatmap', 'thumbnail']) {
    await ask('GET', `/api/v1/predictions/${id}/${which}.png`, 200);
    await ask('GET', `/api/v1/predictions/${id}/${which}.png`, 401, { auth: false });
    await ask('GET', `/api/v1/predictions/00000000-0000-4000-8000-000000000000/${which}.png`, 404);
    await ask('GET', `/api/v1/predictions/nope/${which}.png`, 400);
  }
  if (unassessed.heatmapUrl === null) await ask('GET', `/api/v1/predictions/${unassessed.id}/heatmap.png`, 404);
});

test('the model and its files, as documented', async () => {
  const model = await ask('GET', '/api/v1/model', 200);
  await ask('GET', '/api/v1/model', 401, { auth: false });
  const [member] = (model.files as { members: string[] }).members;
  await ask('GET', member, 200);
  const manifest = JSON.parse((await app.inject({ url: member, headers: AUTH })).body);
  const shard = `${path.posix.dirname(member)}/${manifest.weightsManifest[0].paths[0]}`;
  await ask('GET', shard, 200);
  await ask('GET', '/api/v1/model/files/cxr.json', 404);
  await ask('GET', member, 401, { auth: false });
});

test('jobs: queued, looked up and refused, as documented', async () => {
  await ask('POST', '/api/v1/jobs', 202, upload(film));
  const json = { 'content-type': 'application/json' };
  const ids = JSON.stringify({ orthancInstances: ['0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d'] });
  await ask('POST', '/api/v1/jobs', 202, { body: ids, headers: json });
  await ask('POST', '/api/v1/jobs?patientAge=4', 400, { body: ids, headers: json });
  await ask('POST', '/api/v1/jobs', 400, { body: '{"orthancInstances": []}', headers: json });
  await ask('POST', '/api/v1/jobs', 400, { body: '{', headers: json });
  await ask('POST', '/api/v1/jobs', 415, { body: 'x', headers: { 'content-type': 'text/plain' } });
  await ask('POST', '/api/v1/jobs', 415, upload(Buffer.from('not a film')));
  await ask('POST', '/api/v1/jobs', 413, upload(Buffer.alloc(MAX_UPLOAD + 1, 1)));
  await ask('POST', '/api/v1/jobs', 401, { ...upload(film), auth: false });
  const job = await ask('GET', `/api/v1/jobs/${encodeURIComponent(JOB_ID)}`, 200);
  assert.equal((job.prediction as Json).id, first.id);
  await ask('GET', `/api/v1/jobs/${encodeURIComponent(JOB_ID.replace('~balanced', '~screening'))}`, 404);
  await ask('GET', '/api/v1/jobs/nope', 400);
  await ask('GET', `/api/v1/jobs/${encodeURIComponent(JOB_ID)}`, 401, { auth: false });
  await ask('POST', '/api/v1/jobs', 503, { ...upload(film), on: bare });
  await ask('GET', `/api/v1/jobs/${encodeURIComponent(JOB_ID)}`, 503, { on: bare });
  await ask('PUT', '/api/v1/jobs', 405);
  const jpegHead = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(64)]);
  const many = form(Array.from({ length: 33 }, () => ['image', jpegHead] as [string, Buffer]));
  await ask('POST', '/api/v1/jobs', 413, { body: many.body, headers: many.headers });
  // Films each within the byte limit, together over all the server holds in memory at once (4 of them here):
  // however long the client waits, they never fit, so the answer is 413, not a 503 that says to retry.
  const big = Buffer.concat([jpegHead, Buffer.alloc(MAX_UPLOAD - 1000)]);
  const heavy = form(Array.from({ length: 5 }, () => ['image', big] as [string, Buffer]));
  const refused = await ask('POST', '/api/v1/jobs', 413, { body: heavy.body, headers: heavy.headers });
  assert.match(String(refused.detail), /fewer films/);
});

/** A multipart body of `fields` (file parts when Buffers), as a browser's FormData sends it. */
function form(fields: [string, Buffer | string][]): { body: Buffer; headers: Record<string, string> } {
  const b = `----cxrcontract${Math.random().toString(16).slice(2)}`;
  const parts = fields.map(([name, v]) =>
    Buffer.concat([
      Buffer.from(
        typeof v === 'string'
          ? `--${b}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n`
          : `--${b}\r\nContent-Disposition: form-data; name="${name}"; filename="f.jpeg"\r\n` +
              'Content-Type: image/jpeg\r\n\r\n',
      ),
      Buffer.from(v),
      Buffer.from('\r\n'),
    ]),
  );
  return {
    body: Buffer.concat([...parts, Buffer.from(`--${b}--\r\n`)]),
    headers: { 'content-type': `multipart/form-data; boundary=${b}` },
  };
}

test('request bodies: what the document accepts the server takes, and what it refuses the document does', async () => {
  const bodySchema = (url: string, media: string) => {
    const rb = doc.paths[url].post as unknown as { requestBody: { content: Record<string, { schema: Json }> } };
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
    const res = await app.inject({
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
    [['image', film]],
    [
      ['image', film],
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
      const res = await app.inject({ method: 'POST', url, headers: { ...AUTH, ...f.headers }, payload: f.body });
      const asObject = Object.fromEntries(
        fields.map(([n]) => [n, url.endsWith('jobs') && n === 'image' ? ['f'] : 'f']),
      );
      const names = fields.map(([n]) => n).join(', ');
      assert.equal(check(asObject), res.statusCode === ok, `${url} with ${names}: the document and the server agree`);
    }
  }
});

test('health: ok without the token, and degraded while the audit log is away', async () => {
  await ask('GET', '/api/v1/health', 200, { auth: false });
  await ask('GET', '/api/v1/health', 200, { on: bare });
  await ask('POST', '/api/v1/health', 405);
  down = true;
  await ask('GET', '/api/v1/health', 503, { on: bare });
  await ask('GET', '/api/v1/predictions', 503, { on: bare });
  await ask('GET', '/api/v1/predictions/00000000-0000-4000-8000-000000000000', 503, { on: bare });
  await ask('GET', '/api/v1/predictions/00000000-0000-4000-8000-000000000000/heatmap.png', 503, { on: bare });
  await ask('POST', '/api/v1/predictions', 503, { ...upload(film), on: bare });
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
  const documented = Object.entries(doc.paths).flatMap(([p, item]) =>
    Object.keys(item).map((m) => `${m.toUpperCase()} ${p.replace(/\{path\}/, '*').replace(/\{(\w+)\}/g, ':$1')}`),
  );
  for (const route of documented) {
    const [method, url] = route.split(' ');
    assert.ok(app.hasRoute({ method, url }), `${route} is documented but not answered`);
  }
  // Outside the clinical API (docs/api.md): the page, /metrics, and the document itself. HEAD is GET's.
  const undocumented = new Set(['GET /', 'GET /metrics', 'GET /api/v1/openapi.json']);
  const answered = answeredRoutes(app).filter((r) => !r.startsWith('HEAD '));
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
  walk(doc, '#');
  assert.ok(seen > 0, 'the document gives defaults (heatmap, page, limit)');
});

test('cxr serve with CXR_API_TOKENS, over HTTP: the document it serves says what its answers are', async () => {
  const server = await spawnServer(['--model', path.join(dir, 'model'), '--db', path.join(dir, 'served.db')], {
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
