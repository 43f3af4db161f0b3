// /metrics as a dashboard reads it: an answer the model cannot assess (not a chest film) is not
// counted as a finding under its raw NORMAL/PNEUMONIA label, and no scrape carries a NaN sample
// (prom-client writes NaN as `Nan`, which is not the text format's spelling).
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type AuditStore, openAuditStore } from '../src/serve/audit';
import { buildApp } from '../src/serve/app';
import { ServeMetrics } from '../src/serve/metrics';
import type { ServePredictor } from '../src/serve/predictor_port';
import { LABELS } from '../src/predict/prediction_schema';
import { generatedNonXrays } from './ood-images';
import { loadPredictor, makeTinyModel, multipartBody, tempDir, XRAY_JPEG } from './serve-fixtures';
import { metricValue, parseMetrics, samplesOf } from './prometheus-text';

let dir: string;
let predictor: ServePredictor;
const open: { app: FastifyInstance; audit: AuditStore }[] = [];

before(async () => {
  dir = tempDir('serve-metrics-verdict');
  await makeTinyModel(path.join(dir, 'model'));
  predictor = await loadPredictor(path.join(dir, 'model'));
});

after(async () => {
  for (const o of open) {
    await o.app.close();
    await o.audit.close();
  }
  predictor.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function serve(name: string, metrics: ServeMetrics): Promise<FastifyInstance> {
  const audit = await openAuditStore(path.join(dir, `${name}.db`));
  const app = await buildApp({ predictor, audit, metrics });
  open.push({ app, audit });
  return app;
}

async function predict(app: FastifyInstance, name: string, bytes: Buffer) {
  const { body, headers } = multipartBody('image', name, bytes);
  const res = await app.inject({ method: 'POST', url: '/api/v1/predictions', payload: body, headers });
  assert.equal(res.statusCode, 200, `${name}: ${res.body}`);
  return res.json() as { label: string; operatingPoint: string; verdict: { status: string } };
}

test('a cannot-assess answer is counted under label="cannot-assess", not under its raw label', {
  skip: !fs.existsSync(XRAY_JPEG) && `no chest film at ${XRAY_JPEG}`,
}, async () => {
  const app = await serve('verdict', new ServeMetrics({ defaultMetrics: false }));
  const blank = await predict(app, 'blank-gray.png', (await generatedNonXrays())['blank-gray.png']);
  assert.equal(blank.verdict.status, 'cannot-assess');
  assert.equal(blank.label, null, 'the answer carries no label (its model label is no finding)');
  const film = await predict(app, 'film.jpeg', fs.readFileSync(XRAY_JPEG));
  assert.equal(film.verdict.status, 'assessed', 'a real chest film is assessed');

  const res = await app.inject('/metrics');
  const m = parseMetrics(res.body);
  const name = 'cxr_predictions_total';
  assert.equal(metricValue(m, name), 2);
  assert.equal(metricValue(m, name, { label: 'cannot-assess', verdict: 'cannot-assess' }), 1);
  // The findings a dashboard sums by label: the chest film only, under its own label, as before.
  const findings = samplesOf(m, name).filter((s) => (LABELS as readonly string[]).includes(s.labels.label));
  assert.deepEqual(
    findings.map((s) => ({ ...s.labels, value: s.value })),
    [{ label: film.label, operating_point: film.operatingPoint, verdict: 'assessed', value: 1 }],
  );
  // The help text says what the label values are.
  const help = res.body.split('\n').find((l) => l.startsWith(`# HELP ${name} `)) ?? '';
  for (const value of ['NORMAL', 'PNEUMONIA', 'cannot-assess']) assert.ok(help.includes(value), help);
});

/** Every sample line's value (the text after the last space: prom-client writes no timestamps). */
function values(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.slice(l.lastIndexOf(' ') + 1));
}

test('a fresh server scrapes without NaN: numbers nobody has yet are left out, not written as Nan', async () => {
  const metrics = new ServeMetrics();
  // The job queue's depth while Redis is away, and a gauge with a value and one without.
  metrics.watchQueue(() => Promise.reject(new Error('connect ECONNREFUSED')));
  metrics.addLabelledGauge('cxr_test_values', 'Values, one of them unknown', 'kind', () => ({
    'is nan': 1,
    unknown: Number.NaN,
  }));
  const app = await serve('fresh', metrics);
  // Twice at once: the second scrape finds the event-loop histogram just reset, without a sample.
  for (let i = 0; i < 2; i++) {
    const res = await app.inject('/metrics');
    assert.equal(res.statusCode, 200);
    const bad = values(res.body).filter((v) => Number.isNaN(Number(v)) && !/^[+-]Inf$/.test(v));
    assert.deepEqual(bad, [], 'every sample value is a number');
    assert.doesNotMatch(res.body, /^[^#].* nan$/im);
    const m = parseMetrics(res.body);
    assert.equal(metricValue(m, 'cxr_queue_available'), 0);
    assert.equal(samplesOf(m, 'cxr_queue_waiting').length, 0, 'no depth while the queue does not answer');
    assert.equal(samplesOf(m, 'cxr_queue_active').length, 0);
    assert.equal(m.get('cxr_queue_waiting')?.type, 'gauge', 'the family is still declared');
    // Only the NaN sample is left out: a label value that happens to end in "nan" is kept.
    assert.equal(metricValue(m, 'cxr_test_values', { kind: 'is nan' }), 1);
    assert.equal(samplesOf(m, 'cxr_test_values', { kind: 'unknown' }).length, 0);
    assert.ok(m.has('nodejs_eventloop_lag_seconds'), 'default metrics are scraped');
  }
});
