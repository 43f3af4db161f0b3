// Exposure defaults: Host allow-list (DNS rebinding), Origin check on state-changing requests,
// no-store on predictions, named API tokens recorded in the audit log, and `cxr serve` refusing
// a non-loopback --host without a token (and printing the address it really listens on).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/serve/app';
import { loadTokens, parseTokenList } from '../src/serve/auth';
import { CLI, envWithoutTokens, multipartBody, serverParts, spawnServer, XRAY_JPEG } from './serve-fixtures';

let app: FastifyInstance;

const parts = serverParts('serve-exposure', {
  ready: async ({ predictor, audit }) => {
    app = await buildApp({
      predictor,
      audit,
      boundHost: '127.0.0.1',
      allowedHosts: ['xray.clinic.lan', 'xray.clinic.lan:8443'],
    });
  },
  closing: () => app?.close(),
});

const jpeg = () => multipartBody('image', 'x.jpeg', fs.readFileSync(XRAY_JPEG), 'image/jpeg');

test('Host allow-list: localhost names, IP literals, the bound host, --allowed-host; anything else 403', async () => {
  for (const host of [
    'localhost:8080',
    '127.0.0.1:8080',
    '[::1]:8080',
    '192.168.1.20:8080',
    'xray.clinic.lan:8080',
    'LOCALHOST',
  ]) {
    const res = await app.inject({ url: '/api/v1/health', headers: { host } });
    assert.equal(res.statusCode, 200, host);
  }
  for (const host of ['evil.example', 'evil.example:8080', 'localhost.evil.example', '127.0.0.1.nip.io']) {
    const res = await app.inject({ url: '/api/v1/health', headers: { host } });
    assert.equal(res.statusCode, 403, host);
    assert.equal(res.json().code, 'HOST_NOT_ALLOWED');
    const page = await app.inject({ url: '/', headers: { host } });
    assert.equal(page.statusCode, 403, `page via ${host}`);
  }
});

test('Origin: a cross-site POST is refused before the predictor; same-origin and no-Origin pass', async () => {
  const before = await parts.audit.count();
  const { body, headers } = jpeg();
  const post = (extra: Record<string, string>) =>
    app.inject({
      method: 'POST',
      url: '/api/v1/predictions?heatmap=false',
      payload: body,
      headers: { ...headers, host: 'localhost:8080', ...extra },
    });
  for (const origin of [
    'http://evil.example',
    'null',
    'http://localhost:3000',
    'https://localhost.evil.example:8080',
    'file://',
    // Another service on an --allowed-host, on another port, is another origin.
    'http://xray.clinic.lan:9999',
  ]) {
    const res = await post({ origin });
    assert.equal(res.statusCode, 403, origin);
    assert.equal(res.json().code, 'CROSS_ORIGIN');
  }
  assert.equal(await parts.audit.count(), before, 'nothing logged');
  assert.equal((await post({ origin: 'http://localhost:8080' })).statusCode, 200);
  assert.equal(
    (await post({ origin: 'https://xray.clinic.lan' })).statusCode,
    200,
    'an --allowed-host origin (TLS proxy)',
  );
  assert.equal((await post({ origin: 'https://xray.clinic.lan:8443' })).statusCode, 200, 'an --allowed-host NAME:PORT');
  assert.equal((await post({})).statusCode, 200, 'curl sends no Origin');
  const get = await app.inject({ url: '/api/v1/predictions', headers: { origin: 'http://evil.example' } });
  assert.equal(get.statusCode, 200, 'reads are not state-changing (CORS keeps their answers from the other page)');
});

test('prediction answers are never cached', async () => {
  const { body, headers } = jpeg();
  const res = await app.inject({ method: 'POST', url: '/api/v1/predictions?heatmap=false', payload: body, headers });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.equal((await app.inject('/api/v1/predictions')).headers['cache-control'], 'no-store');
  assert.equal((await app.inject(`/api/v1/predictions/${res.json().id}`)).headers['cache-control'], 'no-store');
});

test('a tokens file is one entry per line: a comma belongs to the token, as in a variable it separates', () => {
  assert.deepEqual(parseTokenList('carol:abcdefgh,zz:12345678\n', 'tokens.txt'), [
    { name: 'carol', token: 'abcdefgh,zz:12345678' },
  ]);
  assert.deepEqual(
    parseTokenList('carol:abcdefgh,zz:12345678', 'CXR_API_TOKENS', 'variable').map((t) => t.name),
    ['carol', 'zz'],
  );
});

test('named tokens: the audit log and the API record which token asked', async () => {
  const tokens = parseTokenList(
    '# radiology\nalice:alice-token-123\n\nbob:bob-token-4567  # night shift\n',
    'tokens.txt',
  );
  const secured = await buildApp({ predictor: parts.predictor, audit: parts.audit, tokens });
  try {
    const { body, headers } = jpeg();
    const res = await secured.inject({
      method: 'POST',
      url: '/api/v1/predictions?heatmap=false',
      payload: body,
      headers: { ...headers, authorization: 'Bearer bob-token-4567' },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().requestedBy, 'bob');
    assert.equal((await parts.audit.get(res.json().id))?.requestedBy, 'bob');
    const one = await secured.inject({
      url: `/api/v1/predictions/${res.json().id}`,
      headers: { authorization: 'Bearer alice-token-123' },
    });
    assert.equal(one.json().requestedBy, 'bob');
    const wrong = await secured.inject({
      method: 'POST',
      url: '/api/v1/predictions',
      payload: body,
      headers: { ...headers, authorization: 'Bearer bob-token-456' },
    });
    assert.equal(wrong.statusCode, 401);
  } finally {
    await secured.close();
  }
  const { body, headers } = jpeg();
  const open = await app.inject({ method: 'POST', url: '/api/v1/predictions?heatmap=false', payload: body, headers });
  assert.equal(open.json().requestedBy, null, 'no token configured: nobody to name');
  assert.deepEqual(loadTokens({ CXR_API_TOKEN: 'single-token' }), [{ name: 'default', token: 'single-token' }]);
  assert.throws(() => loadTokens({ CXR_API_TOKEN: 'a' }), /CXR_API_TOKEN must be 8-512 printable characters/);
  assert.throws(() => loadTokens({ CXR_API_TOKEN: 'has a space' }), /CXR_API_TOKEN must be/);
  // Set but empty (a secret that did not arrive) is refused, never read as "no authentication".
  assert.throws(() => loadTokens({ CXR_API_TOKEN: '' }), /CXR_API_TOKEN is set but empty \(unset it to run without/);
  assert.throws(() => loadTokens({ CXR_API_TOKENS: ' ' }), /CXR_API_TOKENS is set but empty/);
  assert.deepEqual(loadTokens({}), []);
  assert.deepEqual(
    loadTokens({ CXR_API_TOKENS: 'a:aaaaaaaa1,b:bbbbbbbb2', CXR_API_TOKEN: 'x' }).map((t) => t.name),
    ['a', 'b'],
  );
});

test('a tokens file others can read is warned about (chmod 600 it); one only its owner reads is not', () => {
  const file = path.join(parts.dir, 'tokens.txt');
  fs.writeFileSync(file, 'ward7:ward7-secret-token\n');
  const said: string[] = [];
  fs.chmodSync(file, 0o644);
  assert.deepEqual(
    loadTokens({}, file, (l) => said.push(l)).map((t) => t.name),
    ['ward7'],
  );
  assert.deepEqual(said, [`warning: ${file} holds API tokens and is readable by others (chmod 600 it)`]);
  fs.chmodSync(file, 0o600);
  loadTokens({}, file, (l) => said.push(l));
  assert.equal(said.length, 1, 'no warning for a file only its owner reads');
});

test('token lists: clear errors that never repeat the token', () => {
  const cases: [string, RegExp][] = [
    ['alice', /name:token/],
    ['alice:short', /8-512 printable/],
    ['alice:secret-one-1\nalice:secret-two-2', /appears twice/],
    ['alice:secret-one-1\nbob:secret-one-1', /same token/],
    ['al ice:secret-one-1', /name:token|must be/],
    // Two entries on a line were read as two tokens; a comma is part of a token in a file (carol's whole token
    // was refused and its first half taken).
    ['carol:secret-one-1 zz:secret-two-2', /tokens.txt:1: one name:token per line/],
  ];
  for (const [text, want] of cases) {
    assert.throws(
      () => parseTokenList(text, 'tokens.txt'),
      (e: Error) => {
        assert.match(e.message, want);
        assert.doesNotMatch(e.message, /secret|short/);
        return true;
      },
      text,
    );
  }
});

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: envWithoutTokens(env), timeout: 60_000 },
      (err, _stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr }),
    );
  });
}

test('cxr serve on a non-loopback host without a token refuses to start', { timeout: 120_000 }, async () => {
  const r = await runCli(
    [
      'serve',
      '--host',
      '0.0.0.0',
      '--port',
      '0',
      '--model',
      path.join(parts.dir, 'model'),
      '--db',
      path.join(parts.dir, 'cli.db'),
    ],
    {},
  );
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /refusing to listen on 0\.0\.0\.0 without an API token/);
  assert.match(r.stderr, /--allow-no-token/);
});

test('cxr serve prints the address it is bound to, and --tokens-file names who asked', {
  timeout: 240_000,
}, async () => {
  const file = path.join(parts.dir, 'tokens.txt');
  fs.writeFileSync(file, 'carol:carol-token-789\n', { mode: 0o600 });
  const server = await spawnServer([
    '--host',
    '0.0.0.0',
    '--model',
    path.join(parts.dir, 'model'),
    '--db',
    path.join(parts.dir, 'cli.db'),
    '--tokens-file',
    file,
  ]);
  try {
    assert.match(server.url, /^http:\/\/0\.0\.0\.0:\d+$/, server.log());
    const url = server.url.replace('0.0.0.0', '127.0.0.1');
    const { body, headers } = jpeg();
    const res = await fetch(`${url}/api/v1/predictions?heatmap=false`, {
      method: 'POST',
      body: new Uint8Array(body),
      headers: { ...headers, authorization: 'Bearer carol-token-789' },
    });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { requestedBy: string }).requestedBy, 'carol');
  } finally {
    await server.stop();
  }
});
