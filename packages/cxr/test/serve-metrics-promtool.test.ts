// /metrics as a hospital's Prometheus operator checks it: a real `cxr serve` (engine process, decode
// workers, a job queue whose Redis is away) after a film it assesses, one outside the intended population,
// one it cannot assess, a file that is no image and requests for ids and paths a client made up; its scrape
// must pass `promtool check metrics` (Prometheus' own linter: _total only on counters, units as suffixes,
// HELP on every family) and keep its series count when clients send new paths. Skipped, with the reason,
// where promtool is not installed (apt-get install prometheus; scripts/setup.sh --with-test-deps).
// Without promtool, its naming rule and the audit log's failure count are still checked here.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openAuditStore } from '../src/serve/audit';
import { type AuditStore, AuditUnavailableError } from '../src/serve/audit_store';
import { buildApp } from '../src/serve/app';
import { ServeMetrics } from '../src/serve/metrics';
import type { ServePredictor } from '../src/serve/predictor_port';
import {
  type ChildServer,
  gradientFilm,
  loadPredictor,
  makeTinyModel,
  multipartBody,
  spawnServer,
  tempDir,
  XRAY_JPEG_NORMAL,
} from './serve-fixtures';
import { metricValue, parseMetrics, samplesOf } from './prometheus-text';

const promtoolMissing = spawnSync('promtool', ['--version']).error !== undefined;
const skip = promtoolMissing
  ? 'promtool is not installed (apt-get install prometheus, or scripts/setup.sh --with-test-deps)'
  : !fs.existsSync(XRAY_JPEG_NORMAL)
    ? `no sample film (${XRAY_JPEG_NORMAL})`
    : false;
if (skip) console.log(`# promtool check skipped: ${skip}`);

let dir = '';
let modelDir = '';
const closers: (() => unknown)[] = [];

before(async () => {
  dir = tempDir('metrics-promtool');
  modelDir = await makeTinyModel(path.join(dir, 'model'));
});

after(async () => {
  for (const close of closers.reverse()) await close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function post(server: ChildServer, bytes: Buffer, name: string, query = ''): Promise<number> {
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(bytes)]), name);
  const res = await fetch(`${server.url}/api/v1/predictions${query}`, { method: 'POST', body: form });
  await res.arrayBuffer();
  return res.status;
}

async function scrapeText(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

/** promtool's findings on `text`, one a line; empty when it passes. */
function promtool(text: string): { status: number | null; findings: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, findings: `${r.stdout}${r.stderr}`.trim() };
}

/** Sample lines of the cxr_ families: the series Prometheus would keep. */
const seriesCount = (text: string) => text.split('\n').filter((l) => l.startsWith('cxr_')).length;

test('a real server scrape passes promtool check metrics, and new client paths add no series', {
  skip,
  timeout: 240_000,
}, async () => {
  const server = await spawnServer(['--model', modelDir, '--db', path.join(dir, 'audit.db')], {
    // The queue on, its Redis away: the queue gauges as an operator sees them during an outage.
    CXR_REDIS_URL: 'redis://127.0.0.1:1',
  });
  closers.push(() => server.stop('SIGTERM'));
  const film = fs.readFileSync(XRAY_JPEG_NORMAL);
  assert.equal(await post(server, film, 'film.jpeg'), 200, server.log());
  assert.equal(await post(server, film, 'adult.jpeg', '?patientAge=40'), 200);
  assert.equal(await post(server, await gradientFilm(), 'blank.png'), 200);
  assert.equal(await post(server, Buffer.from('this is not an image'), 'notes.png'), 415);
  await fetch(`${server.url}/api/v1/predictions/00000000-0000-4000-8000-000000000000`);
  await fetch(`${server.url}/studies/patient-one.dcm`);
  const text = await scrapeText(server.url);

  const m = parseMetrics(text);
  // The scrape holds what is checked: each outcome, the engine, the decode pool, the queue and the audit log.
  for (const verdict of ['assessed', 'outside-population', 'cannot-assess']) {
    assert.equal(metricValue(m, 'cxr_predictions_total', { verdict }), 1, verdict);
  }
  assert.equal(metricValue(m, 'cxr_decode_failures_total', { reason: 'UNSUPPORTED_FORMAT' }), 1);
  assert.equal(metricValue(m, 'cxr_engine_state', { state: 'ready' }), 1);
  assert.ok(m.has('cxr_decode_workers') && m.has('cxr_engine_restarts_total'));
  assert.equal(metricValue(m, 'cxr_queue_available'), 0);
  assert.equal(metricValue(m, 'cxr_audit_failures_total', { operation: 'write' }), 0);
  // Linted with its series at 0 (the 415 is the client's mistake, not the server's failure).
  assert.equal(samplesOf(m, 'cxr_prediction_errors_total', { code: 'ENGINE_RESTARTING' }).length, 1);
  assert.equal(metricValue(m, 'cxr_prediction_errors_total'), 0);
  assert.ok(m.has('process_cpu_seconds_total') && m.has('nodejs_active_handles'));

  const checked = promtool(text);
  assert.equal(checked.findings, '', `promtool check metrics:\n${checked.findings}`);
  assert.equal(checked.status, 0);

  // Cardinality: more made-up ids and paths, each new, leave the series as they were.
  const before = seriesCount(await scrapeText(server.url));
  for (let i = 0; i < 20; i++) {
    await fetch(`${server.url}/api/v1/predictions/00000000-0000-4000-8000-0000000000${10 + i}`);
    await fetch(`${server.url}/studies/patient-${i}.dcm?accession=${i}`);
  }
  const later = await scrapeText(server.url);
  assert.equal(seriesCount(later), before, 'a client-chosen path or id made new series');
  assert.ok(!/patient-\d/.test(later), 'a raw path in a label');
});

test("every family named _total is a counter (promtool's rule, checked without promtool)", async () => {
  const metrics = new ServeMetrics();
  metrics.watchAudit({ down: null, failures: { read: 0, write: 0, health: 0 } });
  metrics.watchEngine(
    () => 'ready',
    () => 0,
  );
  const families = [...parseMetrics(await metrics.text()).values()];
  assert.ok(
    families.some((f) => f.name.startsWith('nodejs_')),
    "prom-client's defaults are there",
  );
  const misnamed = families.filter((f) => f.name.endsWith('_total') && f.type !== 'counter');
  assert.deepEqual(
    misnamed.map((f) => `${f.name} (${f.type})`),
    [],
  );
});

test('a prediction whose audit row cannot be written is counted in cxr_audit_failures_total', async () => {
  const predictor: ServePredictor = await loadPredictor(modelDir);
  const real = await openAuditStore(path.join(dir, 'failing.db'));
  let refuse = true;
  // The store refuses rows as a full disk or a PostgreSQL standby does; reads still answer.
  const insert: AuditStore['insert'] = (record, images) =>
    refuse
      ? Promise.reject(new AuditUnavailableError('test.db', 'cannot be used: disk full'))
      : real.insert(record, images);
  const audit = new Proxy(real, {
    get: (store, key) => {
      if (key === 'insert') return insert;
      const v = Reflect.get(store, key);
      return typeof v === 'function' ? v.bind(store) : v;
    },
  });
  const metrics = new ServeMetrics({ defaultMetrics: false });
  const app = await buildApp({ predictor, audit, metrics });
  closers.push(
    () => predictor.dispose(),
    () => real.close(),
    () => app.close(),
  );
  const film = await gradientFilm();
  const predict = () => {
    const { body, headers } = multipartBody('image', 'film.png', film);
    return app.inject({ method: 'POST', url: '/api/v1/predictions', payload: body, headers });
  };
  let m = parseMetrics(await metrics.text());
  assert.equal(metricValue(m, 'cxr_audit_failures_total', { operation: 'write' }), 0);
  assert.equal(metricValue(m, 'cxr_audit_available'), 1);

  assert.equal((await predict()).statusCode, 503);
  m = parseMetrics(await metrics.text());
  assert.equal(metricValue(m, 'cxr_audit_failures_total', { operation: 'write' }), 1);
  assert.equal(metricValue(m, 'cxr_audit_failures_total', { operation: 'read' }), 0);
  assert.equal(metricValue(m, 'cxr_audit_available'), 0);
  assert.equal(m.get('cxr_audit_failures_total')!.type, 'counter');
  // The refused prediction is a server-side failure, under the code it was answered with.
  assert.equal(metricValue(m, 'cxr_prediction_errors_total', { code: 'AUDIT_UNAVAILABLE' }), 1);
  assert.equal(metricValue(m, 'cxr_prediction_errors_total'), 1);

  // The log back: the gauge returns to 1 and the count keeps the failure an alert on the gauge could miss.
  refuse = false;
  assert.equal((await predict()).statusCode, 200);
  m = parseMetrics(await metrics.text());
  assert.equal(metricValue(m, 'cxr_audit_available'), 1);
  assert.equal(metricValue(m, 'cxr_audit_failures_total', { operation: 'write' }), 1);
});
