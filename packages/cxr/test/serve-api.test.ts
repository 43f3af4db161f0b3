// The v1 API through fastify.inject: predictions from a real X-ray JPEG and a DICOM, history,
// images, model files, OpenAPI document, token auth and security headers.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/serve/app';
import sharp from 'sharp';
import { imageElements, writeDicom } from './dicom-writer';
import { DICOM_FILE, multipartBody, serverParts, XRAY_JPEG } from './serve-fixtures';

let app: FastifyInstance;

const parts = serverParts('serve-api', {
  ready: async ({ dir, predictor, audit }) => {
    // Read when the app is built (routes/model.ts), so written before it.
    fs.writeFileSync(path.join(dir, 'model', 'MODEL_CARD.md'), '# Tiny test model\n\nRandom weights.\n');
    fs.mkdirSync(path.join(dir, 'web'));
    fs.writeFileSync(path.join(dir, 'web', 'index.html'), '<!doctype html><title>cxr</title>');
    fs.writeFileSync(path.join(dir, 'secret.txt'), 'outside the web folder');
    app = await buildApp({ predictor, audit, webDir: path.join(dir, 'web') });
  },
  closing: () => app?.close(),
});

async function predict(file: string | Buffer, query = '', field = 'image', target = app) {
  const content = typeof file === 'string' ? fs.readFileSync(file) : file;
  const { body, headers } = multipartBody(
    field,
    typeof file === 'string' ? path.basename(file) : 'upload.bin',
    content,
  );
  return target.inject({ method: 'POST', url: `/api/v1/predictions${query}`, payload: body, headers });
}

test('a real X-ray JPEG: prediction, audit row, heat map and thumbnail', async () => {
  const res = await predict(XRAY_JPEG);
  assert.equal(res.statusCode, 200, res.body);
  const p = res.json();
  assert.match(p.id, /^[0-9a-f-]{36}$/);
  assert.ok(p.probability >= 0 && p.probability <= 1);
  assert.equal(p.label, p.probability >= p.threshold ? 'PNEUMONIA' : 'NORMAL');
  assert.equal(p.operatingPoint, 'balanced');
  assert.equal(p.threshold, 0.5);
  assert.equal(p.input.kind, 'jpeg');
  assert.equal(p.model.name, 'tiny-test');
  assert.equal(p.model.sha256, parts.predictor.model.sha256);
  assert.ok(Array.isArray(p.warnings));
  assert.equal(p.heatmapUrl, `/api/v1/predictions/${p.id}/heatmap.png`);
  assert.ok(p.timings.totalMs > 0);
  assert.equal(Object.hasOwn(p, 'latencyMs'), false, 'response schema drops internal fields');

  const row = await parts.audit.get(p.id);
  assert.ok(row, 'written to the audit log');
  assert.equal(row.probability, p.probability);
  assert.equal(row.input.sha256, p.input.sha256);

  const one = await app.inject(`/api/v1/predictions/${p.id}`);
  assert.equal(one.statusCode, 200);
  assert.equal(one.json().probability, p.probability);

  for (const which of ['heatmap', 'thumbnail']) {
    const img = await app.inject(`/api/v1/predictions/${p.id}/${which}.png`);
    assert.equal(img.statusCode, 200, which);
    assert.equal(img.headers['content-type'], 'image/png');
    assert.equal(img.headers['cache-control'], 'no-store', 'an image of a patient film is cached nowhere');
    assert.deepEqual([...img.rawPayload.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  }
  // Stored compactly: a palette heat map and a 160 px thumbnail (was 154 KB + 34 KB per prediction).
  const stored =
    ((await parts.audit.image(p.id, 'heatmap'))?.length ?? 0) +
    ((await parts.audit.image(p.id, 'thumbnail'))?.length ?? 0);
  assert.ok(stored > 0 && stored < 70_000, `${stored} bytes of images stored`);
});

test('a DICOM file predicts', async () => {
  const res = await predict(DICOM_FILE);
  assert.equal(res.statusCode, 200, res.body);
  const p = res.json();
  assert.equal(p.input.kind, 'dicom');
  assert.ok(p.probability >= 0 && p.probability <= 1);
  assert.ok(p.heatmapUrl);
});

test('a baseline-JPEG DICOM relabelled JPEG Lossless is a 422 that says so, not a prediction', async () => {
  const px = Uint8Array.from({ length: 128 * 96 }, (_, i) => ((i % 128) * 2 + Math.floor(i / 128)) & 0xff);
  const jpeg = await sharp(px, { raw: { width: 128, height: 96, channels: 1 } })
    .jpeg({ quality: 90 })
    .toBuffer();
  const file = writeDicom(imageElements({ rows: 96, columns: 128, bitsAllocated: 8 }), {
    transferSyntax: '1.2.840.10008.1.2.4.70',
    frames: [jpeg],
  });
  const before = await parts.audit.count();
  const res = await predict(file);
  assert.equal(res.statusCode, 422, res.body);
  assert.equal(res.json().code, 'TRANSFER_SYNTAX_MISMATCH');
  assert.match(res.body, /JPEG baseline.*1\.2\.840\.10008\.1\.2\.4\.70/);
  assert.equal(await parts.audit.count(), before);
});

test('operating point and heat map switches', async () => {
  const s = await predict(XRAY_JPEG, '?operatingPoint=screening&heatmap=false');
  assert.equal(s.statusCode, 200, s.body);
  assert.equal(s.json().operatingPoint, 'screening');
  assert.equal(s.json().threshold, 0.3);
  assert.equal(s.json().heatmapUrl, null);
  const img = await app.inject(`/api/v1/predictions/${s.json().id}/heatmap.png`);
  assert.equal(img.statusCode, 404);
  assert.match(img.json().detail, /has no heat map stored \(not asked for with it, or removed after the image/);

  const bad = await predict(XRAY_JPEG, '?operatingPoint=aggressive');
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.json().code, 'INVALID_REQUEST');
  assert.match(bad.json().detail, /operatingPoint/);
});

test("patientAge: an adult's age puts a JPEG outside the population; the log keeps only the bound", async () => {
  const adult = await predict(XRAY_JPEG, '?patientAge=34&heatmap=false');
  assert.equal(adult.statusCode, 200, adult.body);
  assert.equal(adult.json().verdict.status, 'outside-population');
  assert.deepEqual(
    adult.json().verdict.reasons.map((r: { code: string }) => r.code),
    ['AGE'],
  );
  const stored = await app.inject(`/api/v1/predictions/${adult.json().id}`);
  assert.equal(stored.statusCode, 200);
  assert.ok(stored.json().warnings.some((w: string) => /age given with the image is a patient age over 10/.test(w)));
  assert.ok(!JSON.stringify(stored.json().warnings).includes('34'), 'the age itself is not stored');
  assert.ok(!('patientAge' in stored.json()));
  assert.deepEqual(stored.json().verdict, adult.json().verdict, 'the log keeps the verdict the answer gave');
  assert.ok(!JSON.stringify(stored.json().verdict).includes('34'), 'nor does the verdict keep the age');

  const child = await predict(XRAY_JPEG, '?patientAge=3.5&heatmap=false');
  assert.equal(child.statusCode, 200, child.body);
  assert.ok(!child.json().verdict.reasons.some((r: { code: string }) => r.code === 'AGE'));

  for (const bad of ['-1', '131', 'ten']) {
    const res = await predict(XRAY_JPEG, `?patientAge=${bad}`);
    assert.equal(res.statusCode, 400, `${bad}: ${res.body}`);
    assert.equal(res.json().code, 'INVALID_REQUEST');
    assert.match(res.json().detail, /patientAge/);
  }

  // Queued jobs take the age as POST /predictions does (queue-api.test.ts runs them): checked at the edge.
  const content = fs.readFileSync(XRAY_JPEG);
  const { body, headers } = multipartBody('image', 'x.jpeg', content);
  const job = (query: string) => app.inject({ method: 'POST', url: `/api/v1/jobs${query}`, payload: body, headers });
  const badAge = await job('?patientAge=131');
  assert.equal(badAge.statusCode, 400, badAge.body);
  assert.match(badAge.json().detail, /patientAge/);
  assert.equal((await job('?patientAge=34')).statusCode, 503, 'a valid age: this server has no queue');
  const openapi = (await app.inject('/api/v1/openapi.json')).json();
  const params = openapi.paths['/api/v1/jobs'].post.parameters.map((q: { name: string }) => q.name);
  assert.ok(params.includes('heatmap') && params.includes('patientAge'), params.join(','));
});

test('errors are RFC 9457 problem details, and validation errors name the parameter', async () => {
  const cases: [string, number, string, RegExp][] = [
    ['/api/v1/predictions?colour=red', 400, 'INVALID_REQUEST', /unknown query parameter 'colour'/],
    [
      '/api/v1/predictions?operatingPoint=aggressive',
      400,
      'INVALID_REQUEST',
      /'operatingPoint' must be one of: screening, balanced/,
    ],
    ['/api/v1/predictions/not-an-id', 400, 'INVALID_REQUEST', /path parameter 'id'/],
    ['/api/v1/predictions/00000000-0000-4000-8000-000000000000', 404, 'NOT_FOUND', /no prediction with id/],
    ['/api/v1/nothing', 404, 'NOT_FOUND', /no such resource/],
    ['/api/v1/predictions/00000000-0000-4000-8000-000000000000/heatmap.png', 404, 'NOT_FOUND', /no prediction with id/],
  ];
  for (const [url, status, code, detail] of cases) {
    const r = await app.inject(url);
    assert.equal(r.statusCode, status, url);
    assert.match(String(r.headers['content-type']), /^application\/problem\+json/, url);
    const p = r.json();
    assert.deepEqual(Object.keys(p).sort(), ['code', 'detail', 'status', 'title', 'type'], url);
    assert.equal(p.status, status);
    assert.equal(p.code, code);
    assert.equal(p.type, `urn:cxr:problem:${code.toLowerCase().replace(/_/g, '-')}`);
    assert.equal(p.title, status === 400 ? 'Bad Request' : 'Not Found');
    assert.match(p.detail, detail, url);
  }
  const upload = await predict(Buffer.from('GIF89a, not really'));
  assert.equal(upload.statusCode, 415);
  assert.match(String(upload.headers['content-type']), /^application\/problem\+json/);
  assert.equal(upload.json().code, 'UNSUPPORTED_FORMAT');
});

test('history: paging and filters', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await predict(XRAY_JPEG, '?heatmap=false')).statusCode, 200);
  const all = (await app.inject('/api/v1/predictions?limit=2')).json();
  assert.ok(all.total >= 5);
  assert.equal(all.items.length, 2);
  assert.equal(all.page, 1);
  const p2 = (await app.inject('/api/v1/predictions?limit=2&page=2')).json();
  assert.notEqual(p2.items[0].id, all.items[0].id);
  assert.ok(all.items[0].createdAt >= all.items[1].createdAt, 'newest first');

  const screening = (await app.inject('/api/v1/predictions?operatingPoint=screening')).json();
  assert.ok(
    screening.items.length >= 1 &&
      screening.items.every((r: { operatingPoint: string }) => r.operatingPoint === 'screening'),
  );
  const future = (
    await app.inject(`/api/v1/predictions?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)
  ).json();
  assert.equal(future.total, 0);
  const past = (await app.inject(`/api/v1/predictions?until=${encodeURIComponent(new Date().toISOString())}`)).json();
  assert.equal(past.total, all.total);
  const labelled = (await app.inject('/api/v1/predictions?label=NORMAL')).json();
  const other = (await app.inject('/api/v1/predictions?label=PNEUMONIA')).json();
  assert.equal(labelled.total + other.total, all.total);
  const warned = (await app.inject('/api/v1/predictions?hasWarnings=true')).json();
  const clean = (await app.inject('/api/v1/predictions?hasWarnings=false')).json();
  assert.equal(warned.total + clean.total, all.total);

  for (const q of [
    'label=maybe',
    'since=yesterday',
    'limit=0',
    'limit=100000',
    'page=-1',
    'page=184467440737095516',
    'colour=red',
    'operatingPoint=nonsense',
  ]) {
    const r = await app.inject(`/api/v1/predictions?${q}`);
    assert.equal(r.statusCode, 400, q);
    assert.equal(r.json().code, 'INVALID_REQUEST', q);
  }
  const far = (await app.inject('/api/v1/predictions?page=1000000000&limit=200')).json();
  assert.deepEqual([far.items.length, far.total], [0, all.total], 'a page past the end is empty');
  assert.equal((await app.inject('/api/v1/predictions/00000000-0000-4000-8000-000000000000')).statusCode, 404);
  assert.equal((await app.inject('/api/v1/predictions/not-an-id')).statusCode, 400);
});

test('model info and the model files for in-browser mode, without path traversal', async () => {
  const m = (await app.inject('/api/v1/model')).json();
  assert.equal(m.name, 'tiny-test');
  assert.equal(m.inputSize, 32);
  assert.deepEqual(Object.keys(m.operatingPoints).sort(), ['balanced', 'screening']);
  assert.equal(m.validation.auc, 0.5);
  assert.match(m.modelCard, /Tiny test model/);
  assert.deepEqual(m.files.members, ['/api/v1/model/files/model.json']);

  const json = await app.inject('/api/v1/model/files/model.json');
  assert.equal(json.statusCode, 200);
  const manifest = json.json().weightsManifest[0];
  const weights = await app.inject(`/api/v1/model/files/${manifest.paths[0]}`);
  assert.equal(weights.statusCode, 200);
  assert.equal(weights.rawPayload.length, fs.statSync(path.join(parts.dir, 'model', 'weights.bin')).size);

  for (const url of [
    '/api/v1/model/files/cxr.json',
    '/api/v1/model/files/MODEL_CARD.md',
    '/api/v1/model/files/../cxr.json',
    '/api/v1/model/files/..%2fcxr.json',
    '/api/v1/model/files/%2e%2e/%2e%2e/secret.txt',
    '/api/v1/model/files/',
    '/api/v1/model/files//etc/passwd',
  ]) {
    const r = await app.inject(url);
    assert.ok(r.statusCode === 404 || r.statusCode === 400, `${url}: ${r.statusCode}`);
    assert.doesNotMatch(r.body, /outside the web folder|root:/);
  }
});

test('static page: served, with a strict CSP, and no traversal out of its folder', async () => {
  const page = await app.inject('/');
  assert.equal(page.statusCode, 200);
  const csp = String(page.headers['content-security-policy']);
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  assert.match(csp, /object-src 'none'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(page.headers['x-content-type-options'], 'nosniff');
  const api = await app.inject('/api/v1/health');
  assert.ok(api.headers['content-security-policy']);
  for (const url of [
    '/../secret.txt',
    '/..%2fsecret.txt',
    '/%2e%2e/secret.txt',
    '/..%5csecret.txt',
    '/.%2e/.%2e/secret.txt',
  ]) {
    const r = await app.inject(url);
    assert.ok(r.statusCode >= 400 && r.statusCode < 500, `${url}: ${r.statusCode}`);
    assert.doesNotMatch(r.body, /outside the web folder/);
  }
  const missing = await app.inject('/api/v1/nothing');
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.json().code, 'NOT_FOUND');
});

test('OpenAPI document describes the API', async () => {
  const res = await app.inject('/api/v1/openapi.json');
  assert.equal(res.statusCode, 200);
  const doc = res.json();
  assert.match(doc.openapi, /^3\./);
  assert.equal(doc.info.title, 'cxr API');
  for (const p of [
    '/api/v1/predictions',
    '/api/v1/predictions/{id}',
    '/api/v1/predictions/{id}/heatmap.png',
    '/api/v1/predictions/{id}/thumbnail.png',
    '/api/v1/model',
    '/api/v1/health',
  ]) {
    assert.ok(doc.paths[p], `documents ${p}`);
  }
  const post = doc.paths['/api/v1/predictions'].post;
  assert.ok(post.requestBody.content['multipart/form-data'].schema.properties.image);
  assert.ok(post.responses['200']);
  assert.ok(post.responses['413']);
  assert.ok(doc.components.schemas.Prediction || JSON.stringify(post.responses['200']).includes('probability'));
  assert.deepEqual(post.parameters.find((x: { name: string }) => x.name === 'operatingPoint').schema.enum, [
    'screening',
    'balanced',
  ]);
  // Errors are problem+json everywhere, images are image/png, and the bearer scheme is declared.
  assert.ok(post.responses['413'].content['application/problem+json'], JSON.stringify(post.responses['413']));
  assert.doesNotMatch(post.responses['413'].description, /Default Response/);
  for (const which of ['heatmap', 'thumbnail']) {
    const get = doc.paths[`/api/v1/predictions/{id}/${which}.png`].get;
    assert.deepEqual(Object.keys(get.responses['200'].content), ['image/png'], which);
    assert.deepEqual(Object.keys(get.responses['404'].content), ['application/problem+json'], which);
  }
  assert.equal(doc.components.securitySchemes.bearer.scheme, 'bearer');
  assert.deepEqual(doc.paths['/api/v1/health'].get.security, []);
  const history = doc.paths['/api/v1/predictions'].get;
  assert.deepEqual(history.parameters.find((x: { name: string }) => x.name === 'operatingPoint').schema.enum, [
    'screening',
    'balanced',
  ]);
  for (const [p, item] of Object.entries(
    doc.paths as Record<string, Record<string, { responses: Record<string, { description: string }> }>>,
  )) {
    for (const [method, op] of Object.entries(item)) {
      for (const [status, r] of Object.entries(op.responses))
        assert.notEqual(r.description, 'Default Response', `${method} ${p} ${status}`);
    }
  }
});

test('bearer token: required on the API when configured, health stays public', async () => {
  const secured = await buildApp({ predictor: parts.predictor, audit: parts.audit, apiToken: 's3cret-token' });
  try {
    assert.equal((await secured.inject('/api/v1/health')).statusCode, 200);
    assert.equal((await secured.inject('/api/v1/health')).json().authRequired, true);
    assert.equal((await secured.inject('/api/v1/openapi.json')).statusCode, 200);
    const none = await secured.inject('/api/v1/predictions');
    assert.equal(none.statusCode, 401);
    assert.equal(none.json().code, 'UNAUTHORIZED');
    assert.match(String(none.headers['www-authenticate']), /^Bearer/);
    const wrong = await secured.inject({ url: '/api/v1/model', headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.statusCode, 401);
    assert.equal((await secured.inject({ url: '/api/v1/model/files/model.json' })).statusCode, 401);
    assert.equal((await predict(XRAY_JPEG, '', 'image', secured)).statusCode, 401);
    const ok = await secured.inject({ url: '/api/v1/model', headers: { authorization: 'Bearer s3cret-token' } });
    assert.equal(ok.statusCode, 200);
  } finally {
    await secured.close();
  }
});

test('bearer token: encoded, doubled-slash and case variants of /api paths cannot bypass it', async () => {
  const secured = await buildApp({ predictor: parts.predictor, audit: parts.audit, apiToken: 's3cret-token' });
  try {
    // The router decodes percent-escapes; the check must hold on the route that matched, not on the raw URL.
    const variants = [
      '/%61pi/v1/predictions',
      '/api/%761/predictions',
      '/%61%70%69/v1/model',
      '/api/v1/%70redictions',
      '/%61pi/v1/model/files/model.json',
      '/%61pi/v1/model/files/weights.bin',
      '/api/v1/model/files/%6dodel.json',
    ];
    for (const url of variants) {
      const res = await secured.inject({ url });
      assert.ok(res.statusCode === 401 || res.statusCode === 404, `${url} answered ${res.statusCode}`);
      assert.notEqual(res.statusCode, 200, url);
    }
    // At least the plain encodings route to real handlers, so they must be refused, not merely missed.
    assert.equal((await secured.inject({ url: '/%61pi/v1/predictions' })).statusCode, 401);
    assert.equal((await secured.inject({ url: '/%61pi/v1/model/files/weights.bin' })).statusCode, 401);
    for (const url of ['//api/v1/predictions', '/API/v1/predictions', '/api//v1/predictions', '/Api/V1/model']) {
      assert.notEqual((await secured.inject({ url })).statusCode, 200, url);
    }
    const encodedPost = await secured.inject({ method: 'POST', url: '/%61pi/v1/predictions', payload: '' });
    assert.equal(encodedPost.statusCode, 401);
  } finally {
    await secured.close();
  }
});

test('--no-store-images keeps no images in the log but still serves the fresh heat map', async () => {
  const lean = await buildApp({ predictor: parts.predictor, audit: parts.audit, storeImages: false });
  try {
    const res = await predict(XRAY_JPEG, '', 'image', lean);
    assert.equal(res.statusCode, 200);
    const p = res.json();
    assert.equal(p.thumbnailUrl, null);
    assert.ok(p.heatmapUrl);
    assert.equal(await parts.audit.image(p.id, 'heatmap'), null);
    assert.equal(await parts.audit.image(p.id, 'thumbnail'), null);
    assert.equal((await lean.inject(p.heatmapUrl)).statusCode, 200);
  } finally {
    await lean.close();
  }
});
