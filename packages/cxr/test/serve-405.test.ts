// 405 Method Not Allowed beyond the API's own routes: the page's static files (served by a
// catch-all) answer another method with 405 and `Allow: GET, HEAD` while a missing file stays 404,
// and the OpenAPI document says how a method a path does not list is answered, as the server really does.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { buildApp } from '../src/serve/app';
import { serverParts } from './serve-fixtures';

let app: FastifyInstance;

const parts = serverParts('serve-405', {
  ready: async ({ dir, predictor, audit }) => {
    const web = path.join(dir, 'web');
    fs.mkdirSync(path.join(web, 'assets'), { recursive: true });
    fs.mkdirSync(path.join(web, 'help'), { recursive: true });
    fs.writeFileSync(path.join(web, 'help', 'index.html'), '<!doctype html><title>help</title>');
    fs.writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>cxr</title>');
    fs.writeFileSync(path.join(web, 'app.js'), 'console.log(1);');
    fs.writeFileSync(path.join(web, 'assets', 'logo.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    fs.writeFileSync(path.join(web, '.env'), 'SECRET=1');
    fs.writeFileSync(path.join(dir, 'secret.txt'), 'outside the web folder');
    app = await buildApp({ predictor, audit, webDir: web });
  },
  closing: () => app?.close(),
});

function assertMethodNotAllowed(res: Awaited<ReturnType<FastifyInstance['inject']>>, method: string, url: string) {
  const where = `${method} ${url}`;
  assert.equal(res.statusCode, 405, `${where}: ${res.body}`);
  assert.equal(res.headers.allow, 'GET, HEAD', where);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/, where);
  // The same problem as every other 405 (serve-http-rules.test.ts).
  assert.deepEqual(
    res.json(),
    {
      type: 'urn:cxr:problem:method-not-allowed',
      title: 'Method Not Allowed',
      status: 405,
      detail: `${method} is not allowed on ${url}; use GET, HEAD`,
      code: 'METHOD_NOT_ALLOWED',
    },
    where,
  );
}

test("the page's files answer another method with 405 and Allow: GET, HEAD", async () => {
  const cases: [string, string][] = [
    ['PUT', '/'],
    ['DELETE', '/index.html'],
    ['POST', '/app.js'],
    ['PATCH', '/assets/logo.svg'],
    ['OPTIONS', '/help/'],
    ['DELETE', '/%61pp.js'],
  ];
  for (const [method, url] of cases) {
    assert.equal((await app.inject(url)).statusCode, 200, `GET ${url} serves the file`);
    assertMethodNotAllowed(
      await app.inject({ method: method as InjectOptions['method'], url: `${url}?x=1` }),
      method,
      url,
    );
  }
  // The API's own 405s are unchanged by the catch-all.
  const api = await app.inject({ method: 'DELETE', url: '/api/v1/predictions' });
  assert.equal(api.statusCode, 405);
  assert.equal(api.headers.allow, 'GET, HEAD, POST');
});

test('a file the page does not serve stays 404 whatever the method', async () => {
  for (const url of [
    '/missing.js',
    '/assets/none.svg',
    '/.env',
    '/..%2fsecret.txt',
    '/%2e%2e/secret.txt',
    '/assets',
    '/assets/',
    '/help',
  ]) {
    for (const method of ['GET', 'PUT', 'DELETE', 'POST']) {
      const res = await app.inject({ method: method as InjectOptions['method'], url });
      const where = `${method} ${url}: ${res.body}`;
      if (method === 'GET' && res.statusCode !== 404) {
        // The static handler's own refusals of dotfiles and traversal (403, 400) are fine for GET.
        assert.ok(res.statusCode >= 400 && res.statusCode < 500, where);
        continue;
      }
      assert.equal(res.statusCode, 404, where);
      assert.equal(res.headers.allow, undefined, where);
      assert.equal(res.json().code, 'NOT_FOUND', where);
    }
  }
});

test('a folder without a built page serves no files: only / answers, with its own 405', async () => {
  const unbuilt = path.join(parts.dir, 'unbuilt');
  fs.mkdirSync(unbuilt);
  fs.writeFileSync(path.join(unbuilt, 'app.js'), 'console.log(1);');
  const plain = await buildApp({ predictor: parts.predictor, audit: parts.audit, webDir: unbuilt });
  try {
    assertMethodNotAllowed(await plain.inject({ method: 'PUT', url: '/' }), 'PUT', '/');
    assert.equal((await plain.inject('/app.js')).statusCode, 404);
    assert.equal((await plain.inject({ method: 'POST', url: '/app.js' })).statusCode, 404);
  } finally {
    await plain.close();
  }
});

test('the OpenAPI document says what a method a path does not list gets, and the server does it', async () => {
  const res = await app.inject('/api/v1/openapi.json');
  assert.equal(res.statusCode, 200);
  const doc = res.json() as { info: { description: string }; paths: Record<string, Record<string, unknown>> };
  assert.match(doc.info.description, /405 Method Not Allowed, with an Allow header/);
  assert.ok(Object.keys(doc.paths).length >= 8, Object.keys(doc.paths).join(' '));
  for (const [route, item] of Object.entries(doc.paths)) {
    // What the document says is what the server does: a method no operation of the path has is a 405.
    const url = route.replace('{id}', '0b6f3c7e-0000-4000-8000-000000000001').replace('{path}', 'model.json');
    const other = await app.inject({ method: 'DELETE', url });
    assert.ok(!('delete' in item), route);
    assert.equal(other.statusCode, 405, `DELETE ${url}: ${other.body}`);
    assert.ok(other.headers.allow, `DELETE ${url}: Allow`);
  }
});
