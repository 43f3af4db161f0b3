// What the API's doors refuse, and in which words: POST /jobs refuses the JPEG and PNG variants and the phone
// photos that POST /predictions refuses (415, the same words) before any film of the request is queued, rather
// than queueing them for a worker to fail; the OpenAPI document is served to a client that asks for OpenAPI's
// registered media type; a query parameter without a name is said so; and the failures counted by
// cxr_prediction_errors_total are classified as the answer to them is (problem.ts problemOf).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { FastifyError, FastifyRequest } from 'fastify';
import sharp from 'sharp';
import { buildApp } from '../src/serve/app';
import { HttpError } from '../src/serve/http_error';
import { PREDICTION_ERROR_CODES } from '../src/serve/metrics';
import { problemOf, toProblem } from '../src/serve/problem';
import { serverFailureCode } from '../src/serve/routes/predictions';
import { animatedPng, patchSof } from './image-bytes';
import { gradientFilm, multipartBody, multipartFilms, recordingJobs, serverParts } from './serve-fixtures';

let app: Awaited<ReturnType<typeof buildApp>>;

/** A queue that takes every film offered: what the route refuses before offering one is what is tested. */
const { jobs, submitted } = recordingJobs();

serverParts('serve-refusals', {
  ready: async ({ predictor, audit }) => {
    app = await buildApp({ predictor, audit, jobs });
  },
  closing: () => app?.close(),
});

// ---- films the decoder cannot read, made from a gray JPEG and PNG (image-bytes.ts, as decode-variants does) ----

/** The JPEG with a DHP segment (a hierarchical JPEG's) before its frame. */
function hierarchical(src: Buffer): Buffer {
  const sof = patchSof(src, 0xde, 8); // the frame header's fields under the DHP marker
  const at = sof.indexOf(Buffer.from([0xff, 0xde]));
  const dhp = sof.subarray(at, at + 2 + sof.readUInt16BE(at + 2));
  return Buffer.concat([src.subarray(0, 2), dhp, src.subarray(2)]);
}

test('POST /jobs refuses what POST /predictions refuses as unsupported, in its words, and queues nothing', async () => {
  const px = Buffer.alloc(64 * 64);
  for (let i = 0; i < px.length; i++) px[i] = (i % 64) * 3 + Math.floor(i / 64);
  const jpeg = await sharp(px, { raw: { width: 64, height: 64, channels: 1 } })
    .jpeg({ quality: 90 })
    .toBuffer();
  const png = await gradientFilm();
  const avif = await sharp(px, { raw: { width: 64, height: 64, channels: 1 } })
    .avif()
    .toBuffer();
  const heic = Buffer.from(avif);
  heic.write('heic', 8, 'latin1'); // an iPhone photo's brand in the 'ftyp' box
  const refused: [string, Buffer, RegExp][] = [
    ['12bit.jpg', patchSof(jpeg, 0xc1, 12), /^12-bit JPEG is not supported/],
    ['lossless.jpg', patchSof(jpeg, 0xc3, 8), /^lossless JPEG is not supported/],
    ['hierarchical.jpg', hierarchical(jpeg), /^hierarchical JPEG is not supported/],
    ['film.jls', patchSof(jpeg, 0xf7, 12), /^JPEG-LS is not supported/],
    ['animated.png', animatedPng(png, 2), /^animated PNG \(2 frames\) is not supported/],
    ['photo.heic', heic, /^HEIC is not supported/],
    ['photo.avif', avif, /^AVIF is not supported/],
  ];
  for (const [name, bytes, words] of refused) {
    const one = multipartBody('image', name, bytes);
    const direct = await app.inject({ method: 'POST', url: '/api/v1/predictions', ...one, payload: one.body });
    assert.equal(direct.statusCode, 415, `${name} at POST /predictions: ${direct.body}`);
    const said = direct.json().detail as string;
    assert.match(said, words, name);

    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/jobs?heatmap=false',
      ...multipartFilms(['first.jpg', jpeg], [name, bytes]),
    });
    assert.equal(res.statusCode, 415, `${name}: ${res.body}`);
    assert.equal(res.json().code, 'UNSUPPORTED_FORMAT');
    assert.equal(res.json().detail, `${name}: ${said} (nothing in this request was queued)`);
  }
  assert.deepEqual(submitted, [], 'not even the readable film sent before the refused one');

  // What the decoder reads is still queued.
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/jobs?heatmap=false',
    ...multipartFilms(['film.jpg', jpeg], ['film.png', png]),
  });
  assert.equal(res.statusCode, 202, res.body);
  assert.deepEqual(submitted, ['film.jpg', 'film.png']);
});

test("the OpenAPI document is answered in OpenAPI's registered media type to a client that asks for it", async () => {
  const get = (accept?: string) =>
    app.inject({ url: '/api/v1/openapi.json', headers: accept === undefined ? {} : { accept } });
  for (const accept of [
    'application/vnd.oai.openapi+json',
    'application/vnd.oai.openapi+json;version=3.0',
    'application/json;q=0.5, application/vnd.oai.openapi+json',
  ]) {
    const res = await get(accept);
    assert.equal(res.statusCode, 200, `${accept}: ${res.body}`);
    // The version as its major.minor (fastify writes the parameter quoted, which RFC 9110 §5.6.6 takes as equal).
    const type = res.headers['content-type'] as string;
    assert.match(type, /^application\/vnd\.oai\.openapi\+json;\s*version=("3\.0"|3\.0)(;|$)/);
    assert.equal(res.json().openapi, '3.0.3', 'the version the type names is the document’s');
  }
  for (const accept of [undefined, '*/*', 'application/json', 'application/json, application/vnd.oai.openapi+json']) {
    const res = await get(accept);
    assert.equal(res.statusCode, 200, `${accept}: ${res.body}`);
    assert.match(res.headers['content-type'] as string, /^application\/json/, String(accept));
    assert.equal(res.json().openapi, '3.0.3');
  }
  // No YAML is served: refused as any type the document is not answered in.
  const yaml = await get('application/yaml');
  assert.equal(yaml.statusCode, 406);
  assert.equal(yaml.json().code, 'NOT_ACCEPTABLE');
});

test('a query parameter without a name is said to be one, not quoted as an empty name', async () => {
  const res = await app.inject('/api/v1/model?=1');
  assert.equal(res.statusCode, 400, res.body);
  assert.equal(res.json().code, 'INVALID_REQUEST');
  assert.match(res.json().detail, /^an empty query parameter name \(this operation takes/);
  assert.doesNotMatch(res.json().detail, /''/);
  const named = await app.inject('/api/v1/model?=1&colour=red');
  assert.match(named.json().detail, /^an empty query parameter name; unknown query parameter 'colour' \(/);
});

test('GET /health ignores its query (a cache-buster of a monitor); the other operations still refuse one', async () => {
  for (const url of ['/api/v1/health?_=1700000000', '/api/v1/health?=1&colour=red']) {
    const res = await app.inject(url);
    assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
  }
  const model = await app.inject('/api/v1/model?_=1700000000');
  assert.equal(model.statusCode, 400, model.body);
  assert.match(model.json().detail, /^unknown query parameter '_'/);
});

test('the metric counts a failure as the server answered it: the one classification in problem.ts', () => {
  const quiet = { log: { error: () => undefined } } as unknown as FastifyRequest;
  const coded = (code: string, more: Record<string, unknown> = {}) =>
    Object.assign(new Error(code), { code, ...more }) as unknown as FastifyError;
  const errors: unknown[] = [
    ...PREDICTION_ERROR_CODES.map((c) => new HttpError(503, c, 'x')),
    new HttpError(503, 'A_NEW_OUTAGE', 'a 5xx code the metric does not list'),
    new HttpError(422, 'NOT_A_CHEST_XRAY', 'x'),
    coded('BUSY'),
    coded('SQLITE_BUSY'),
    coded('AUDIT_UNAVAILABLE'),
    // Answered by their code (415, 413, 400) even without a status of their own: the client's, not counted.
    coded('FST_ERR_CTP_INVALID_MEDIA_TYPE'),
    coded('FST_REQ_FILE_TOO_LARGE'),
    coded('FST_ERR_CTP_INVALID_JSON_BODY'),
    Object.assign(new Error('bad query'), { validation: [], validationContext: 'querystring' }),
    coded('FST_SOMETHING', { statusCode: 404 }),
    new Error('a bug'),
    'a thrown string',
  ];
  for (const e of errors) {
    const answered = toProblem(e as FastifyError, quiet, 1024);
    assert.deepEqual(problemOf(e), { status: answered.status, code: answered.code }, String(e));
    const counted =
      answered.status < 500
        ? null
        : (PREDICTION_ERROR_CODES as readonly string[]).includes(answered.code)
          ? answered.code
          : 'OTHER';
    assert.equal(serverFailureCode(e), counted, String(e));
  }
});
