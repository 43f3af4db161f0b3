// The set-up the OpenAPI contract tests share (openapi-contract*.test.ts, api-consistency.test.ts): an app
// with a token and a fake job queue, a bare one whose audit log can be stopped, the document the app serves,
// and the check that an answer is one the document lists (status, media type, headers, body schema).
import { after, before } from 'node:test';
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
import { gradientFilm, loadPredictor, makeTinyModel, tempDir, XRAY_JPEG } from './serve-fixtures';

export type Json = Record<string, unknown>;
export interface Operation {
  operationId: string;
  parameters?: { in: string; name: string; schema: Json }[];
  responses: Record<string, { headers?: Record<string, unknown>; content?: Record<string, { schema: Json }> }>;
}
export interface Doc {
  info: { description: string };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json> };
}

export const TOKEN = 'contract-token-0123';
export const AUTH = { authorization: `Bearer ${TOKEN}` };
export const MAX_UPLOAD = 256 * 1024;
const SHA = 'a'.repeat(64);
export const JOB_ID = `sha256:${'b'.repeat(64)}~${SHA}~balanced`;

/** What the set-up opened, filled in by `before`; `first` is the first prediction a test made (a job's result). */
export const ctx = {
  dir: '',
  predictor: undefined as unknown as ServePredictor,
  audit: undefined as unknown as AuditStore,
  downAudit: undefined as unknown as AuditStore,
  /** The bare app's audit log stops answering once this is set (as a stopped database does). */
  down: false,
  app: undefined as unknown as FastifyInstance,
  /** No job queue, and the audit log that `down` stops. */
  bare: undefined as unknown as FastifyInstance,
  doc: undefined as unknown as Doc,
  /** A chest film, assessed (its heat map made); and a gradient, which is not, for the 404 of a heat map none made. */
  film: Buffer.alloc(0) as Buffer,
  gradient: Buffer.alloc(0) as Buffer,
  first: {} as Json,
};

export const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addFormat('binary', true);

/** OpenAPI 3.0's schema dialect as JSON Schema: `nullable` is a null type (and a null enum value). */
export function toJsonSchema(s: unknown): unknown {
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
    id === JOB_ID
      ? { id, status: 'completed', outcome: 'predicted', prediction: ctx.first, error: null, errorCode: null }
      : null,
  depth: async () => ({ waiting: 0, active: 0, failed: 0 }),
};

/** Opens the apps before the file's tests and closes them after; `name` names the temporary folder. */
export function contractSetUp(name: string): void {
  before(async () => {
    ctx.dir = tempDir(name);
    const model = await makeTinyModel(path.join(ctx.dir, 'model'));
    ctx.predictor = await loadPredictor(model);
    ctx.audit = await openAuditStore(path.join(ctx.dir, 'audit.db'));
    ctx.downAudit = await openAuditStore(path.join(ctx.dir, 'down.db'));
    const away = new AuditUnavailableError('test.db', 'does not answer: stopped');
    const outage = Object.create(ctx.downAudit) as AuditStore;
    for (const m of ['ping', 'list', 'get', 'image', 'count'] as const) {
      const real = ctx.downAudit[m].bind(ctx.downAudit) as (...a: unknown[]) => Promise<never>;
      (outage as unknown as Json)[m] = (...a: unknown[]) => (ctx.down ? Promise.reject(away) : real(...a));
    }
    ctx.app = await buildApp({
      predictor: ctx.predictor,
      audit: ctx.audit,
      apiToken: TOKEN,
      maxUploadBytes: MAX_UPLOAD,
      jobs,
    });
    ctx.bare = await buildApp({ predictor: ctx.predictor, audit: outage });
    ctx.doc = (await ctx.app.inject('/api/v1/openapi.json')).json() as Doc;
    ajv.addSchema({ $id: 'doc', components: toJsonSchema(ctx.doc.components) as Json });
    ctx.film = fs.readFileSync(XRAY_JPEG);
    ctx.gradient = await gradientFilm();
  });
  after(async () => {
    await ctx.app?.close();
    await ctx.bare?.close();
    await ctx.audit?.close();
    await ctx.downAudit?.close();
    ctx.predictor?.dispose();
    if (ctx.dir) fs.rmSync(ctx.dir, { recursive: true, force: true });
  });
}

/** The document's operation for a request path (its template's `{x}` matching one segment, `{path}` the rest). */
export function operationOf(method: string, url: string, status: number): { template: string; op: Operation } {
  const bare = url.split('?')[0];
  for (const [template, item] of Object.entries(ctx.doc.paths)) {
    const re = new RegExp(`^${template.replace(/\{path\}/, '.+').replace(/\{[^}]+\}/g, '[^/]+')}$`);
    // A 405 is a method the path lists no operation for: each of the path's operations documents it.
    const op = item[method.toLowerCase()] ?? (status === 405 ? Object.values(item)[0] : undefined);
    if (re.test(bare) && op) return { template, op };
  }
  throw new Error(`${method} ${bare}: no operation in the document`);
}

/** Asserts the answer is one the document lists for the operation; returns its JSON body ({} for a binary one). */
export function conforms(method: string, url: string, res: LightMyRequestResponse, status: number): Json {
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

export async function ask(
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  status: number,
  o: { body?: Buffer | string; headers?: Record<string, string>; auth?: boolean; on?: FastifyInstance } = {},
): Promise<Json> {
  const headers = { ...(o.auth === false ? {} : AUTH), ...o.headers };
  const res = await (o.on ?? ctx.app).inject({ method, url, headers, payload: o.body });
  return conforms(method, url, res, status);
}

export function upload(content: Buffer) {
  return form([['image', content]]);
}

/** A multipart body of `fields` (file parts when Buffers), as a browser's FormData sends it. */
export function form(fields: [string, Buffer | string][]): { body: Buffer; headers: Record<string, string> } {
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
