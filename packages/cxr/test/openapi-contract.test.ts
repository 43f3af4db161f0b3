// The API as a client generated from its OpenAPI document sees it: every operation is asked for real, with
// answers that succeed and answers that fail (400, 401, 404, 405, 413, 415, 422, 503), and each answer's
// status, media type, headers and body must be ones the document lists for that operation, the body valid
// against the documented schema (Ajv, after OpenAPI 3.0's `nullable` is read as JSON Schema's null type).
// openapi-contract-coverage.test.ts compares the document with the server as a whole.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  AUTH,
  ask,
  contractSetUp,
  ctx,
  form,
  JOB_ID,
  type Json,
  MAX_UPLOAD,
  upload,
} from './openapi-contract-fixtures';
import { DICOM_FILE } from './serve-fixtures';

contractSetUp('openapi-contract');

/** A prediction of an image that could not be assessed (the gradient): it has no heat map. */
let unassessed: Json = {};

test('POST /predictions: a prediction, and each refusal, as documented', async () => {
  const u = upload(ctx.film);
  ctx.first = await ask('POST', '/api/v1/predictions', 200, u);
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
  unassessed = await ask('POST', '/api/v1/predictions', 200, upload(ctx.gradient));
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
    [`label=${ctx.first.label}`, (r) => r.label === ctx.first.label],
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
  const id = String(ctx.first.id);
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
  const manifest = JSON.parse((await ctx.app.inject({ url: member, headers: AUTH })).body);
  const shard = `${path.posix.dirname(member)}/${manifest.weightsManifest[0].paths[0]}`;
  await ask('GET', shard, 200);
  await ask('GET', '/api/v1/model/files/cxr.json', 404);
  await ask('GET', member, 401, { auth: false });
});

test('jobs: queued, looked up and refused, as documented', async () => {
  await ask('POST', '/api/v1/jobs', 202, upload(ctx.film));
  const json = { 'content-type': 'application/json' };
  const ids = JSON.stringify({ orthancInstances: ['0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d'] });
  await ask('POST', '/api/v1/jobs', 202, { body: ids, headers: json });
  await ask('POST', '/api/v1/jobs?patientAge=4', 400, { body: ids, headers: json });
  await ask('POST', '/api/v1/jobs', 400, { body: '{"orthancInstances": []}', headers: json });
  await ask('POST', '/api/v1/jobs', 400, { body: '{', headers: json });
  await ask('POST', '/api/v1/jobs', 415, { body: 'x', headers: { 'content-type': 'text/plain' } });
  await ask('POST', '/api/v1/jobs', 415, upload(Buffer.from('not a film')));
  await ask('POST', '/api/v1/jobs', 413, upload(Buffer.alloc(MAX_UPLOAD + 1, 1)));
  await ask('POST', '/api/v1/jobs', 401, { ...upload(ctx.film), auth: false });
  const job = await ask('GET', `/api/v1/jobs/${encodeURIComponent(JOB_ID)}`, 200);
  assert.equal((job.prediction as Json).id, ctx.first.id);
  await ask('GET', `/api/v1/jobs/${encodeURIComponent(JOB_ID.replace('~balanced', '~screening'))}`, 404);
  await ask('GET', '/api/v1/jobs/nope', 400);
  await ask('GET', `/api/v1/jobs/${encodeURIComponent(JOB_ID)}`, 401, { auth: false });
  await ask('POST', '/api/v1/jobs', 503, { ...upload(ctx.film), on: ctx.bare });
  await ask('GET', `/api/v1/jobs/${encodeURIComponent(JOB_ID)}`, 503, { on: ctx.bare });
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

test('health: ok without the token, and degraded while the audit log is away', async () => {
  await ask('GET', '/api/v1/health', 200, { auth: false });
  await ask('GET', '/api/v1/health', 200, { on: ctx.bare });
  await ask('POST', '/api/v1/health', 405);
  ctx.down = true;
  await ask('GET', '/api/v1/health', 503, { on: ctx.bare });
  await ask('GET', '/api/v1/predictions', 503, { on: ctx.bare });
  await ask('GET', '/api/v1/predictions/00000000-0000-4000-8000-000000000000', 503, { on: ctx.bare });
  await ask('GET', '/api/v1/predictions/00000000-0000-4000-8000-000000000000/heatmap.png', 503, { on: ctx.bare });
  await ask('POST', '/api/v1/predictions', 503, { ...upload(ctx.film), on: ctx.bare });
});
