// GET /metrics: real predictions through the app move the counters and histograms, decode
// failures and the OOD gate are counted by reason, labels stay low-cardinality, the text is
// Prometheus exposition format, and the endpoint needs the API token unless --metrics-public.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type AuditStore, openAuditStore } from '../src/serve/audit';
import { buildApp } from '../src/serve/app';
import { loadPooledPredictor } from '../src/serve/decode_pool';
import { ServeMetrics } from '../src/serve/metrics';
import { startServer } from '../src/serve/server';
import { silentLogger } from '../src/log';
import type { ServePredictor } from '../src/serve/predictor_port';
import { OOD_FORMAT } from '../src/explain/ood_model';
import { weightsDigest } from '../src/explain/ood';
import { gradientFilm, loadPredictor, makeTinyModel, multipartBody, tempDir, XRAY_JPEG_NORMAL } from './serve-fixtures';
import { type Family, parseMetrics, metricValue } from './prometheus-text';

let dir: string;
const open: { app: FastifyInstance; audit: AuditStore; predictor: ServePredictor }[] = [];
let film: Buffer;

before(async () => {
  dir = tempDir('serve-metrics');
  await makeTinyModel(path.join(dir, 'model'));
  film = await gradientFilm();
});

after(async () => {
  for (const o of open) {
    await o.app.close();
    await o.audit.close();
    o.predictor.dispose();
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

async function serve(
  name: string,
  opts: {
    modelDir?: string;
    oodPolicy?: 'warn' | 'refuse';
    pooled?: boolean;
    metricsPublic?: boolean;
    token?: string;
  } = {},
) {
  const modelDir = opts.modelDir ?? path.join(dir, 'model');
  const predictor = opts.pooled
    ? await loadPooledPredictor(modelDir, { decodeWorkers: 1, oodPolicy: opts.oodPolicy })
    : await loadPredictor(modelDir, opts.oodPolicy);
  const audit = await openAuditStore(path.join(dir, `${name}.db`));
  const metrics = new ServeMetrics();
  const app = await buildApp({
    predictor,
    audit,
    metrics,
    metricsPublic: opts.metricsPublic,
    tokens: opts.token ? [{ name: 'ops', token: opts.token }] : undefined,
  });
  open.push({ app, audit, predictor });
  return { app, metrics };
}

function upload(app: FastifyInstance, bytes: Buffer, query = '') {
  const { body, headers } = multipartBody('image', 'film.png', bytes);
  return app.inject({ method: 'POST', url: `/api/v1/predictions${query}`, payload: body, headers });
}

async function scrape(app: FastifyInstance, headers: Record<string, string> = {}): Promise<Map<string, Family>> {
  const res = await app.inject({ url: '/metrics', headers });
  assert.equal(res.statusCode, 200, res.body);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parseMetrics(res.body);
}

test('predictions move the counters by label, operating point and verdict, and the stage histograms', async () => {
  const { app } = await serve('count');
  const before = await scrape(app);
  assert.equal(metricValue(before, 'cxr_predictions_total'), 0);

  const answers = [];
  // A real film, assessed: its heat maps are made (an image that cannot be assessed gets none, nor their time).
  const xray = fs.readFileSync(XRAY_JPEG_NORMAL);
  for (const query of ['', '?operatingPoint=screening', '?heatmap=false']) {
    const res = await upload(app, xray, query);
    assert.equal(res.statusCode, 200, res.body);
    answers.push(res.json());
  }
  const m = await scrape(app);
  // Each answer counted once, under exactly its own label, operating point and verdict; the label of an
  // answer that could not be assessed is no finding (serve-metrics-verdict.test.ts).
  const expected = new Map<string, number>();
  for (const a of answers) {
    const label = a.verdict.status === 'cannot-assess' ? 'cannot-assess' : a.label;
    const key = `${label}|${a.operatingPoint}|${a.verdict.status}`;
    expected.set(key, (expected.get(key) ?? 0) + 1);
  }
  for (const [key, n] of expected) {
    const [label, operating_point, verdict] = key.split('|');
    assert.equal(metricValue(m, 'cxr_predictions_total', { label, operating_point, verdict }), n, key);
  }
  assert.equal(metricValue(m, 'cxr_predictions_total'), 3);
  assert.equal(m.get('cxr_predictions_total')!.type, 'counter');

  const stages = 'cxr_prediction_duration_seconds';
  assert.equal(m.get(stages)!.type, 'histogram');
  for (const stage of ['decode', 'inference', 'predict', 'total']) {
    assert.equal(metricValue(m, `${stages}_count`, { stage }), 3, stage);
    assert.equal(metricValue(m, `${stages}_bucket`, { stage, le: '+Inf' }), 3, stage);
  }
  assert.ok(
    answers.every((a) => a.verdict.status !== 'cannot-assess'),
    'the film is assessed',
  );
  assert.equal(metricValue(m, `${stages}_count`, { stage: 'heatmap' }), 2, 'no heat map when ?heatmap=false');
  // The whole request takes at least as long as the prediction within it.
  const sum = (stage: string) => metricValue(m, `${stages}_sum`, { stage });
  assert.ok(sum('total') >= sum('predict') && sum('predict') > 0);

  assert.equal(metricValue(m, 'cxr_http_requests_total', { route: '/api/v1/predictions', status: '200' }), 3);
  assert.equal(metricValue(m, 'cxr_predictions_running'), 0);
  assert.equal(metricValue(m, 'cxr_predictions_waiting'), 0);
  // Default process metrics come along.
  assert.ok(m.has('process_cpu_user_seconds_total') && m.has('nodejs_heap_size_used_bytes'));
});

test('decode failures are counted by their error code; request errors are not decode failures', async () => {
  const { app } = await serve('fail');
  assert.equal((await upload(app, Buffer.from('this is not an image at all'))).statusCode, 415);
  assert.equal((await upload(app, film.subarray(0, 200))).statusCode, 422);
  assert.equal((await upload(app, film, '?operatingPoint=nonsense')).statusCode, 400);
  const m = await scrape(app);
  assert.equal(metricValue(m, 'cxr_decode_failures_total', { reason: 'UNSUPPORTED_FORMAT' }), 1);
  const failures = m.get('cxr_decode_failures_total')!.samples;
  assert.equal(metricValue(m, 'cxr_decode_failures_total'), 2, JSON.stringify(failures));
  assert.ok(!failures.some((x) => x.labels.reason === 'UNKNOWN_OPERATING_POINT'));
  assert.equal(metricValue(m, 'cxr_predictions_total'), 0);
  assert.equal(metricValue(m, 'cxr_http_requests_total', { route: '/api/v1/predictions', status: '415' }), 1);
});

/** An ood.json whose threshold flags every image (any feature vector is farther than 1e-9 from 0). */
async function modelWithStrictGate(): Promise<string> {
  const modelDir = path.join(dir, 'ood-model');
  await makeTinyModel(modelDir);
  const dim = 8; // the tiny cxrnet's last width: its pooled features
  const identity = Array.from({ length: dim * dim }, (_, i) => (i % (dim + 1) === 0 ? 1 : 0));
  fs.writeFileSync(
    path.join(modelDir, 'ood.json'),
    JSON.stringify({
      format: OOD_FORMAT,
      featureLayer: 'gap',
      member: 0,
      dim,
      mean: new Array(dim).fill(0),
      precision: identity,
      shrinkage: 0,
      threshold: 1e-9,
      percentile: 99,
      weightsSha256: weightsDigest(modelDir),
      scores: { train: {}, validation: {} },
      fitted: {},
    }),
  );
  return modelDir;
}

test('OOD flags: warned answers and refusals, each also an OOD check', async () => {
  const modelDir = await modelWithStrictGate();
  const warn = await serve('ood-warn', { modelDir });
  const res = await upload(warn.app, film);
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.json().ood.outOfDistribution, true);
  const w = await scrape(warn.app);
  assert.equal(metricValue(w, 'cxr_ood_checks_total'), 1);
  assert.equal(metricValue(w, 'cxr_ood_flags_total', { action: 'warned' }), 1);
  assert.equal(metricValue(w, 'cxr_ood_flags_total', { action: 'refused' }), 0);

  const refuse = await serve('ood-refuse', { modelDir, oodPolicy: 'refuse' });
  assert.equal((await upload(refuse.app, film)).statusCode, 422);
  const r = await scrape(refuse.app);
  assert.equal(metricValue(r, 'cxr_ood_checks_total'), 1);
  assert.equal(metricValue(r, 'cxr_ood_flags_total', { action: 'refused' }), 1);
  assert.equal(metricValue(r, 'cxr_decode_failures_total'), 0, 'a refusal is not a decode failure');
});

test('a server whose gate refuses still starts (its warm-up image only warns) and refuses at the door', async () => {
  const modelDir = await modelWithStrictGate();
  const server = await startServer({
    host: '127.0.0.1',
    port: 0,
    dbPath: path.join(dir, 'refuse-start.db'),
    loadPredictor: () => loadPooledPredictor(modelDir, { decodeWorkers: 1, oodPolicy: 'refuse' }),
    log: silentLogger(),
  });
  try {
    const res = await upload(server.app, film);
    assert.equal(res.statusCode, 422, res.body);
    assert.equal(res.json().code, 'NOT_A_CHEST_XRAY');
  } finally {
    await server.close();
  }
});

test('labels are route patterns and closed sets, never ids or paths a client chose', async () => {
  const { app } = await serve('cardinality');
  const id = (await upload(app, film)).json().id as string;
  await app.inject(`/api/v1/predictions/${id}`);
  await app.inject('/api/v1/predictions/00000000-0000-4000-8000-000000000000');
  await app.inject('/some/random/path/patient-name.dcm');
  const res = await app.inject('/metrics');
  assert.ok(!res.body.includes(id), 'a prediction id in a label');
  assert.ok(!res.body.includes('patient-name'), 'a raw URL in a label');
  const m = parseMetrics(res.body);
  assert.equal(metricValue(m, 'cxr_http_requests_total', { route: '/api/v1/predictions/:id', status: '200' }), 1);
  assert.equal(metricValue(m, 'cxr_http_requests_total', { route: '/api/v1/predictions/:id', status: '404' }), 1);
  assert.equal(metricValue(m, 'cxr_http_requests_total', { route: 'unmatched', status: '404' }), 1);
});

test('the decode pool and a one-line extra gauge (a job queue depth) are reported', async () => {
  const { app, metrics } = await serve('pool', { pooled: true });
  let depth = 7;
  metrics.addGauge('cxr_queue_depth', 'Jobs waiting in the job queue', () => depth);
  assert.equal((await upload(app, film)).statusCode, 200);
  let m = await scrape(app);
  assert.equal(metricValue(m, 'cxr_queue_depth'), 7);
  assert.equal(metricValue(m, 'cxr_decode_workers', { state: 'idle' }), 1);
  assert.equal(metricValue(m, 'cxr_decode_workers', { state: 'busy' }), 0);
  assert.equal(metricValue(m, 'cxr_decode_queue_length'), 0);
  assert.equal(metricValue(m, 'cxr_decode_worker_restarts_total'), 0);
  depth = 2;
  m = await scrape(app);
  assert.equal(metricValue(m, 'cxr_queue_depth'), 2, 'read at scrape time');
});

test('/metrics needs the API token unless --metrics-public; health stays public', async () => {
  const token = 'metrics-test-token-1234';
  const secured = await serve('auth', { token });
  const denied = await secured.app.inject('/metrics');
  assert.equal(denied.statusCode, 401);
  assert.ok(!denied.body.includes('cxr_'), 'no metrics without the token');
  await scrape(secured.app, { authorization: `Bearer ${token}` });
  assert.equal((await secured.app.inject('/api/v1/health')).statusCode, 200);

  const open = await serve('public', { token, metricsPublic: true });
  const m = await scrape(open.app);
  assert.ok(m.has('cxr_http_requests_total'));
  assert.equal((await open.app.inject('/api/v1/model')).statusCode, 401, 'the API still needs the token');
  const doc = (await open.app.inject('/api/v1/openapi.json')).json() as { paths: Record<string, unknown> };
  assert.ok(!Object.keys(doc.paths).some((p) => p.includes('metrics')), 'not part of the clinical API document');
});

test('the exposition reader fails on text that is not exposition format', () => {
  assert.throws(() => parseMetrics('# TYPE a counter\na 1\ngarbage line {{'), /line 3/);
  assert.throws(() => parseMetrics('b 1'), /without a TYPE/);
  assert.throws(() => parseMetrics('# TYPE a counter\na{l="v" m="w"} 1'), /label/);
  const m = parseMetrics('# HELP a x\n# TYPE a counter\na{l="v\\"q"} 1\na{l="w"} 2\n');
  assert.equal(metricValue(m, 'a'), 3);
  assert.equal(metricValue(m, 'a', { l: 'v"q' }), 1);
});
