// cxr_http_requests_total labels a 405 (a known path asked with a method it does not take) by the route
// pattern that has the path, as docs/deployment.md says routes are labelled: "unmatched" is for unknown
// paths only. The 405 comes from the not-found handler, where fastify has no route: it was "unmatched".
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { buildApp } from '../src/serve/app';
import { methodTable } from '../src/serve/methods';
import { metricValue, parseMetrics } from './prometheus-text';
import { serverParts } from './serve-fixtures';

let app: FastifyInstance;

serverParts('serve-metrics-405', {
  ready: async ({ dir, predictor, audit }) => {
    const web = path.join(dir, 'web');
    fs.mkdirSync(web);
    fs.writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>cxr</title>');
    fs.writeFileSync(path.join(web, 'app.js'), 'console.log(1);');
    app = await buildApp({ predictor, audit, webDir: web });
  },
  closing: () => app?.close(),
});

test('a 405 is counted under the pattern of the route that has the path, not as unmatched', async () => {
  const asked: [string, string, string][] = [
    ['DELETE', '/api/v1/predictions', '/api/v1/predictions'],
    ['PUT', '/api/v1/health', '/api/v1/health'],
    ['DELETE', '/api/v1/predictions/0b6f3c7e-0000-4000-8000-000000000001', '/api/v1/predictions/:id'],
    ['POST', '/app.js', '/*'],
  ];
  for (const [method, url] of asked) {
    const res = await app.inject({ method: method as 'PUT', url: `${url}?x=1` });
    assert.equal(res.statusCode, 405, `${method} ${url}: ${res.body}`);
  }
  assert.equal((await app.inject({ method: 'DELETE', url: '/no/such/path' })).statusCode, 404);
  const m = parseMetrics((await app.inject('/metrics')).body);
  for (const [method, , route] of asked)
    assert.equal(metricValue(m, 'cxr_http_requests_total', { method, route, status: '405' }), 1, `${method} ${route}`);
  assert.equal(metricValue(m, 'cxr_http_requests_total', { method: 'DELETE', route: 'unmatched', status: '404' }), 1);
  const unmatched405 = m
    .get('cxr_http_requests_total')
    ?.samples.filter((s) => s.labels.route === 'unmatched' && s.labels.status === '405');
  assert.deepEqual(unmatched405, []);
});

test("one route table: a path's 405 methods and its label come from the same recorded routes", async () => {
  const bare = Fastify();
  const table = methodTable(bare);
  bare.get('/api/v1/predictions/:id', async () => ({}));
  bare.delete('/api/v1/predictions/:id', async () => ({}));
  bare.post('/api/v1/predictions', async () => ({}));
  await bare.ready();
  assert.equal(table.routeOf('/api/v1/predictions/abc'), '/api/v1/predictions/:id');
  assert.deepEqual(table('/api/v1/predictions/abc'), ['DELETE', 'GET', 'HEAD']);
  assert.equal(table.routeOf('/api/v1/predictions'), '/api/v1/predictions');
  assert.equal(table.routeOf('/api/v1/predictions/abc/more'), undefined, 'one segment per parameter');
  assert.deepEqual(table('/api/v1/predictions/abc/more'), []);
  // The page's catch-all claims every path for the label (its own 405s), but lends no methods to unknown ones.
  const withPage = Fastify();
  const pageTable = methodTable(withPage);
  withPage.get('/*', async () => '');
  await withPage.ready();
  assert.equal(pageTable.routeOf('/no/such/file'), '/*');
  assert.deepEqual(pageTable('/no/such/file'), []);
  await bare.close();
  await withPage.close();
});
