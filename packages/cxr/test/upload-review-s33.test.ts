// Review of the HTTP edge (session 33): uploads answered before their body's end.
// - an upload refused after its route began reading it (503 BUSY: the budget full mid-body) had the rest of its body
//   left unread, the stream paused: a keep-alive connection whose body arrived in time was reset at the end of the
//   2 s linger instead of being kept for the next request, as upload_watch.ts says it is.
// - startServer failing after its hourly image pruner had started (the port in use) left the pruner running: it
//   pruned the closed audit log every hour, logging the failure, in a program that goes on after the failed start.
import { mock, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as path from 'node:path';
import pino from 'pino';
import { buildApp } from '../src/serve/app';
import { startServer } from '../src/serve/server';
import { gradientFilm, loadPredictor, makeTinyModel, serverParts, tempDir } from './serve-fixtures';

const parts = serverParts('upload-review-s33');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a start that fails on a port in use stops its hourly image pruner', { timeout: 60_000 }, async () => {
  const dir = tempDir('upload-review-s33-start');
  const model = await makeTinyModel(path.join(dir, 'model'));
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const started = mock.method(globalThis, 'setInterval');
  const stopped = mock.method(globalThis, 'clearInterval');
  try {
    await assert.rejects(
      startServer({
        host: '127.0.0.1',
        port: (blocker.address() as net.AddressInfo).port,
        dbPath: path.join(dir, 'audit.db'),
        loadPredictor: () => loadPredictor(model),
        retainImagesMs: 60_000,
        decodeWorkers: 0,
        webDir: null,
        log: pino({ level: 'silent' }),
      }),
      { code: 'EADDRINUSE' },
    );
    const pruners = started.mock.calls.filter((c) => c.arguments[1] === 3_600_000).map((c) => c.result);
    assert.equal(pruners.length, 1, 'the pruner was started');
    const cleared = new Set(stopped.mock.calls.map((c) => c.arguments[0]));
    assert.ok(cleared.has(pruners[0]), 'the pruner was left running after the failed start');
  } finally {
    started.mock.restore();
    stopped.mock.restore();
    blocker.close();
  }
});

test('a keep-alive upload refused mid-body, its body then sent whole, keeps its connection for the next request', {
  timeout: 30_000,
}, async () => {
  // A budget under the film: the route's reading is refused 503 BUSY after its first chunks (no length declared).
  const app = await buildApp({
    predictor: parts.predictor,
    audit: parts.audit,
    webDir: null,
    uploadBudgetBytes: 200 * 1024,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const sock = net.connect({ port: (app.server.address() as net.AddressInfo).port, host: '127.0.0.1' });
  try {
    let reset = false;
    sock.on('error', () => {
      reset = true;
    });
    let got = '';
    sock.on('data', (d: Buffer) => {
      got += d.toString('latin1');
    });
    await new Promise((r) => sock.once('connect', r));
    const b = 'XyZ';
    const body = Buffer.concat([
      Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="image"; filename="f.png"\r\n\r\n`),
      await gradientFilm(),
      Buffer.alloc(1024 * 1024),
      Buffer.from(`\r\n--${b}--\r\n`),
    ]);
    sock.write(
      'POST /api/v1/predictions HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
        `Content-Type: multipart/form-data; boundary=${b}\r\nTransfer-Encoding: chunked\r\n\r\n`,
    );
    for (let i = 0; i < body.length; i += 16 * 1024) {
      const c = body.subarray(i, i + 16 * 1024);
      sock.write(Buffer.concat([Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n')]));
      await sleep(2);
    }
    sock.write('0\r\n\r\n');
    await sleep(3_000); // past the 2 s linger
    assert.match(got, /^HTTP\/1\.1 503 /);
    assert.ok(!reset && !sock.destroyed, 'the connection was reset, though the body had arrived in time');
    sock.write('GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const end = Date.now() + 5_000;
    while (!/HTTP\/1\.1 200 /.test(got) && Date.now() < end) await sleep(20);
    assert.match(got, /HTTP\/1\.1 200 /, 'the next request on the connection is answered');
  } finally {
    sock.destroy();
    await app.close();
  }
});
