// cxr_prediction_errors_total: predictions that failed on the server's side, by the code they were answered with
// (a closed set, never a message). An engine killed while it predicts (503 ENGINE_RESTARTING) and a bug (500
// INTERNAL) raise it; a client's mistake (415, a file that is no image) does not, nor a client that hung up.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { InputError } from '../src/predict/errors';
import { type AuditStore, openAuditStore } from '../src/serve/audit';
import { AuditUnavailableError } from '../src/serve/audit_store';
import { buildApp } from '../src/serve/app';
import { DecodeWorkerError } from '../src/serve/decode_pool';
import { HttpError } from '../src/serve/http_error';
import { PREDICTION_ERROR_CODES, ServeMetrics } from '../src/serve/metrics';
import type { ServePredictor } from '../src/serve/predictor_port';
import { type ChildPredictor, loadChildPredictor } from '../src/serve/predictor_process';
import { BusyError } from '../src/serve/queue';
import { serverFailureCode } from '../src/serve/routes/predictions';
import { tooLarge } from '../src/serve/upload';
import { gradientFilm, loadPredictor, makeTinyModel, multipartBody, tempDir } from './serve-fixtures';
import { endMidWork } from './engine-kill-fixture';
import { parseMetrics, samplesOf } from './prometheus-text';

let dir = '';
let modelDir = '';
const closers: (() => unknown)[] = [];

before(async () => {
  dir = tempDir('prediction-errors');
  modelDir = await makeTinyModel(path.join(dir, 'model'));
});

after(async () => {
  for (const close of closers.reverse()) await close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function serve(
  predictor: ServePredictor,
  name: string,
): Promise<{ app: FastifyInstance; metrics: ServeMetrics }> {
  const audit: AuditStore = await openAuditStore(path.join(dir, `${name}.db`));
  const metrics = new ServeMetrics({ defaultMetrics: false });
  const app = await buildApp({ predictor, audit, metrics, requestLog: false });
  closers.push(
    () => audit.close(),
    () => app.close(),
  );
  return { app, metrics };
}

function post(app: FastifyInstance, bytes: Buffer, name: string) {
  const { body, headers } = multipartBody('image', name, bytes);
  return app.inject({ method: 'POST', url: '/api/v1/predictions', payload: body, headers });
}

/** cxr_prediction_errors_total by code, every code of the closed set. */
async function errorCounts(metrics: ServeMetrics): Promise<Record<string, number>> {
  const m = parseMetrics(await metrics.text());
  assert.equal(m.get('cxr_prediction_errors_total')?.type, 'counter');
  return Object.fromEntries(
    PREDICTION_ERROR_CODES.map((code) => {
      const [sample, ...more] = samplesOf(m, 'cxr_prediction_errors_total', { code });
      assert.ok(sample && !more.length, `one series for code ${code}`);
      return [code, sample.value];
    }),
  );
}

const none = Object.fromEntries(PREDICTION_ERROR_CODES.map((c) => [c, 0]));

test('an engine killed mid-prediction (503 ENGINE_RESTARTING) is counted; a file that is no image (415) is not', {
  timeout: 120_000,
}, async () => {
  const engine: ChildPredictor = await loadChildPredictor(modelDir, { decodeWorkers: 1 });
  closers.push(() => engine.dispose());
  const { app, metrics } = await serve(engine, 'engine');
  assert.deepEqual(await errorCounts(metrics), none, 'every code is there from the start, at 0');

  const bad = await post(app, Buffer.from('this is not an image'), 'notes.png');
  assert.equal(bad.statusCode, 415, bad.body);
  assert.deepEqual(await errorCounts(metrics), none, 'a client error is not a server failure');

  // A large film, so that the engine is still at work when it is ended (serve-predictor-process.test.ts).
  const big = await sharp({ create: { width: 4000, height: 4000, channels: 3, background: '#777' } })
    .png({ compressionLevel: 9 })
    .toBuffer();
  const working = () => engine.decodeStats!().busy + engine.decodeStats!().queued > 0;
  const begun = async () => {
    for (let i = 0; i < 3000 && !working(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(working(), 'the upload never reached the engine');
  };
  // Ended while it still owes the reply (an answer that came first is sent again: it counts no error).
  const refused = await endMidWork(engine.child, () => post(app, big, 'big.png'), begun, 'SIGKILL');
  assert.equal(refused.statusCode, 503, refused.body);
  assert.equal(refused.json().code, 'ENGINE_RESTARTING');
  assert.deepEqual(await errorCounts(metrics), { ...none, ENGINE_RESTARTING: 1 });
});

test('a failure with no status of its own (500 INTERNAL) is counted under INTERNAL', async () => {
  const real = await loadPredictor(modelDir);
  closers.push(() => real.dispose());
  // The real predictor, but its predict fails as a bug would: an Error the server did not expect.
  const broken: ServePredictor = {
    model: real.model,
    warmUp: (image) => real.warmUp(image),
    dispose: () => {},
    predict: async () => {
      throw new Error('a bug');
    },
  };
  const { app, metrics } = await serve(broken, 'broken');
  const res = await post(app, await gradientFilm(), 'film.png');
  assert.equal(res.statusCode, 500, res.body);
  assert.equal(res.json().code, 'INTERNAL');
  assert.deepEqual(await errorCounts(metrics), { ...none, INTERNAL: 1 });
});

test('each failure maps to the code it is answered with; client errors to none', () => {
  const cases: [unknown, string | null][] = [
    [new HttpError(503, 'ENGINE_RESTARTING', 'restarting', 5), 'ENGINE_RESTARTING'],
    [new HttpError(503, 'ENGINE_UNAVAILABLE', 'cannot load', 5), 'ENGINE_UNAVAILABLE'],
    [new HttpError(503, 'BUSY', 'upload budget'), 'BUSY'],
    [new BusyError(64), 'BUSY'],
    [Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }), 'BUSY'],
    [new AuditUnavailableError('audit.db', 'disk full'), 'AUDIT_UNAVAILABLE'],
    [new DecodeWorkerError('exited with code 1'), 'INTERNAL'],
    [new HttpError(503, 'SOMETHING_NEW', 'a 5xx not in the set'), 'OTHER'],
    [new InputError('UNSUPPORTED_FORMAT', 'not an image'), null],
    [new HttpError(422, 'ENGINE_FAULT', 'the image ends the engine'), null],
    [tooLarge(1024), null],
    [new HttpError(499, 'CLIENT_GONE', 'hung up'), null],
    [Object.assign(new Error('bad query'), { statusCode: 400, validation: [] }), null],
  ];
  for (const [e, code] of cases) assert.equal(serverFailureCode(e), code, String(e));
});
