// What the failure counters count during an outage and a shutdown, so that an alert on them means what it says:
// /health's ping of the audit log is counted apart (operation="health"), or one outage under a load balancer
// probing each second reads as thousands of failed reads; and an upload refused 503 BUSY because the server is
// shutting down, answered before its route, is counted in cxr_prediction_errors_total as a full queue's BUSY is.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { type AuditStore, AuditUnavailableError } from '../src/serve/audit_store';
import { openAuditStore } from '../src/serve/audit';
import { buildApp } from '../src/serve/app';
import { ServeMetrics } from '../src/serve/metrics';
import type { ServePredictor } from '../src/serve/predictor_port';
import { metricValue, parseMetrics } from './prometheus-text';
import { loadPredictor, makeTinyModel, tempDir } from './serve-fixtures';

let dir = '';
let predictor: ServePredictor;
const closers: (() => unknown)[] = [];

before(async () => {
  dir = tempDir('serve-metrics-counts');
  predictor = await loadPredictor(await makeTinyModel(path.join(dir, 'model')));
});

after(async () => {
  for (const close of closers.reverse()) await close();
  predictor?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function app(name: string, store?: (real: AuditStore) => AuditStore) {
  const real = await openAuditStore(path.join(dir, `${name}.db`));
  closers.push(() => real.close());
  const metrics = new ServeMetrics({ defaultMetrics: false });
  const built = await buildApp({ predictor, audit: store ? store(real) : real, metrics, requestLog: false });
  closers.push(() => built.close());
  return { app: built, metrics };
}

test('an audit outage probed by /health 20 times: 20 health failures, the reads and writes untouched', async () => {
  let down = true;
  const refuse = () => Promise.reject(new AuditUnavailableError('test.db', 'cannot be reached'));
  // The log away for every use, as a stopped PostgreSQL is.
  const { app: server, metrics } = await app('outage', (real) => {
    return new Proxy(real, {
      get: (store, key) => {
        const v = Reflect.get(store, key);
        if (typeof v !== 'function') return v;
        return key === 'close' || !down ? v.bind(store) : refuse;
      },
    });
  });
  for (let i = 0; i < 20; i++) {
    const res = await server.inject('/api/v1/health');
    assert.equal(res.statusCode, 503, res.body);
    assert.equal(res.json().audit, 'unavailable');
  }
  let m = parseMetrics(await metrics.text());
  assert.equal(metricValue(m, 'cxr_audit_failures_total', { operation: 'health' }), 20);
  assert.equal(metricValue(m, 'cxr_audit_failures_total', { operation: 'read' }), 0, 'probes are not reads');
  assert.equal(metricValue(m, 'cxr_audit_failures_total', { operation: 'write' }), 0);
  assert.equal(metricValue(m, 'cxr_audit_available'), 0, 'a probe still finds the outage');
  // A request's own read during the outage is still a read.
  assert.equal((await server.inject('/api/v1/predictions')).statusCode, 503);
  m = parseMetrics(await metrics.text());
  assert.equal(metricValue(m, 'cxr_audit_failures_total', { operation: 'read' }), 1);
  // And a probe that finds the log back ends the outage, as any use does.
  down = false;
  assert.equal((await server.inject('/api/v1/health')).statusCode, 200);
  m = parseMetrics(await metrics.text());
  assert.equal(metricValue(m, 'cxr_audit_available'), 1);
  assert.equal(metricValue(m, 'cxr_audit_failures_total', { operation: 'health' }), 20);
});

test('an upload that arrives while the server shuts down: 503 BUSY, counted as a prediction error', async () => {
  const { app: server, metrics } = await app('closing');
  await server.listen({ port: 0, host: '127.0.0.1' });
  const { port } = server.server.address() as net.AddressInfo;
  // Headers begun before close() and completed after it: the request is taken, then refused for the shutdown.
  const ask = async (head: string) => {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.on('connect', () => resolve()));
    let answer = '';
    socket.on('data', (d) => {
      answer += d;
    });
    const ended = new Promise<void>((resolve, reject) => {
      socket.on('end', resolve);
      socket.on('error', reject);
    });
    socket.write(head);
    return async () => {
      socket.write('\r\n');
      await ended;
      return answer;
    };
  };
  const host = `Host: 127.0.0.1:${port}\r\n`;
  const multipart = 'Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 0\r\n';
  const upload = await ask(`POST /api/v1/predictions HTTP/1.1\r\n${host}${multipart}`);
  const probe = await ask(`GET /api/v1/health HTTP/1.1\r\n${host}`);
  await new Promise((r) => setTimeout(r, 100));
  const closed = server.close();
  await new Promise((r) => setTimeout(r, 100));
  const answers = [await upload(), await probe()];
  await closed;
  for (const answer of answers) {
    assert.match(answer, /^HTTP\/1\.1 503 /, answer.slice(0, 300));
    assert.match(answer, /"code":"BUSY"/);
  }
  const m = parseMetrics(await metrics.text());
  assert.equal(metricValue(m, 'cxr_prediction_errors_total', { code: 'BUSY' }), 1, 'the upload, not the probe');
  assert.equal(metricValue(m, 'cxr_prediction_errors_total'), 1);
});
