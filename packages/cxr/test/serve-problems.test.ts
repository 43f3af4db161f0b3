// Errors that never reach a route still answer as problem documents with the API's own codes:
// requests Node cannot parse (headers too large, garbage), a JSON body that is not JSON, a path the
// framework forbids, a request that arrives while the server shuts down, and an audit log another
// program holds locked (503 BUSY after a short wait, while the rest of the server keeps answering).
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as path from 'node:path';
import * as fs from 'node:fs';
import Database from 'better-sqlite3';
import { silentLogger } from '../src/log';
import { type RunningServer, startServer } from '../src/serve/server';
import { buildWeb, STATIC_DIR } from '../src/web/build';
import { gradientFilm, loadPredictor, makeTinyModel, tempDir } from './serve-fixtures';

let dir: string;
let server: RunningServer;
let film: Buffer;

before(async () => {
  dir = tempDir('serve-problems');
  await makeTinyModel(path.join(dir, 'model'));
  // With the page, as `cxr serve` runs: its static files answer the paths no route takes.
  await buildWeb();
  server = await serveOn('audit.db', STATIC_DIR);
  film = await gradientFilm();
});

after(async () => {
  await server?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** A server of the tiny model on a free port, its audit log `db` in the test folder. */
function serveOn(db: string, webDir?: string): Promise<RunningServer> {
  return startServer({
    host: '127.0.0.1',
    port: 0,
    dbPath: path.join(dir, db),
    webDir,
    loadPredictor: () => loadPredictor(path.join(dir, 'model')),
    log: silentLogger(),
  });
}

/** Sends raw bytes and reads the whole answer (the server closes the connection after it). */
function raw(request: string): Promise<string> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(request));
    let answer = '';
    socket.on('data', (d) => {
      answer += d;
    });
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

function problemOf(answer: string): { status: number; contentType: string; body: Record<string, unknown> } {
  const [head, body] = answer.split('\r\n\r\n');
  return {
    status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]),
    contentType: /content-type: ([^\r]+)/i.exec(head)?.[1] ?? '',
    body: JSON.parse(body) as Record<string, unknown>,
  };
}

function upload(url: string): Promise<Response> {
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(film)]), 'film.png');
  return fetch(`${url}/api/v1/predictions?heatmap=false`, { method: 'POST', body: form });
}

test('headers over the limit: 431 HEADERS_TOO_LARGE as a problem; garbage: 400', async () => {
  const big = problemOf(
    await raw(`GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ${'a'.repeat(20_000)}\r\n\r\n`),
  );
  assert.equal(big.status, 431);
  assert.match(big.contentType, /^application\/problem\+json/);
  assert.deepEqual([big.body.status, big.body.code], [431, 'HEADERS_TOO_LARGE']);
  const garbage = problemOf(await raw('NOT HTTP AT ALL\r\n\r\n'));
  assert.deepEqual([garbage.status, garbage.body.code], [400, 'INVALID_REQUEST']);
});

test("a JSON body that is not JSON, and a path the framework forbids, answer with the API's codes", async () => {
  const json = await fetch(`${server.url}/api/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"orthancInstances": [',
  });
  assert.equal(json.status, 400);
  assert.equal(((await json.json()) as { code: string }).code, 'INVALID_REQUEST');
  for (const [p, status, code] of [
    ['/..%2f..%2fetc%2fpasswd', 403, 'FORBIDDEN'],
    // Longer than any route's parameter may be: no route matches, and no file of the page has such a name.
    [`/api/v1/predictions/${'a'.repeat(5000)}`, 404, 'NOT_FOUND'],
    [`/api/v1/predictions/${'a'.repeat(50)}`, 400, 'INVALID_REQUEST'],
  ] as const) {
    const res = await fetch(server.url + p);
    assert.equal(res.status, status, p.slice(0, 60));
    assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, p);
    assert.equal(((await res.json()) as { code: string }).code, code, p.slice(0, 60));
  }
});

test('an audit log locked by another program: 503 BUSY after a short wait; health answers meanwhile', async () => {
  const other = new Database(path.join(dir, 'audit.db'));
  other.exec('BEGIN EXCLUSIVE');
  try {
    const t0 = performance.now();
    const [locked, health] = await Promise.all([upload(server.url), fetch(`${server.url}/api/v1/health`)]);
    assert.equal(locked.status, 503, await locked.clone().text());
    assert.equal(locked.headers.get('retry-after'), '1');
    assert.equal(((await locked.json()) as { code: string }).code, 'BUSY');
    assert.ok(performance.now() - t0 < 3000, 'the server waited for the lock for seconds');
    assert.equal(health.status, 200);
  } finally {
    other.exec('COMMIT');
    other.close();
  }
  assert.equal((await upload(server.url)).status, 200, 'answers again once the lock is gone');
});

test('a request that arrives while the server shuts down: 503 BUSY problem with Retry-After', async () => {
  // Its own server. A request whose headers are still arriving when close() begins is answered
  // once they are complete: by then the server is shutting down.
  const closing = await serveOn('closing.db');
  const { port } = new URL(closing.url);
  const socket = net.connect(Number(port), '127.0.0.1');
  await new Promise<void>((resolve) => socket.on('connect', () => resolve()));
  let answer = '';
  socket.on('data', (d) => {
    answer += d;
  });
  const ended = new Promise<void>((resolve, reject) => {
    socket.on('end', resolve);
    socket.on('error', reject);
  });
  socket.write(`GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`);
  await new Promise((r) => setTimeout(r, 100));
  const closed = closing.close();
  await new Promise((r) => setTimeout(r, 100));
  socket.write('\r\n');
  await ended;
  await closed;
  assert.match(answer, /^HTTP\/1\.1 503 /, answer.slice(0, 300));
  assert.match(answer, /^retry-after: 1\r$/im);
  assert.match(answer, /^content-type: application\/problem\+json/im);
  assert.match(answer, /"code":"BUSY"/);
});

test('a malformed request is answered and its connection dropped: close() does not wait on it', async () => {
  const own = await serveOn('malformed.db');
  const { port } = new URL(own.url);
  // A client that never closes its side: the connection lasts only as long as the server keeps it.
  const socket = net.connect({ port: Number(port), host: '127.0.0.1', allowHalfOpen: true });
  let answer = '';
  socket.on('data', (d) => {
    answer += d;
  });
  const answered = new Promise<void>((resolve) => socket.on('end', () => resolve()));
  socket.write('NOT HTTP AT ALL\r\n\r\n');
  await answered;
  assert.match(answer, /^HTTP\/1\.1 400 /);
  const closed = await Promise.race([
    own.close().then(() => true),
    new Promise((r) => setTimeout(() => r(false), 3000)),
  ]);
  socket.destroy();
  assert.equal(closed, true, 'close() still waits on the answered connection after 3 s');
});
