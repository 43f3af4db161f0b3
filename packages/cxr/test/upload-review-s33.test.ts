// Review of the HTTP edge (session 33): uploads answered before their body's end.
// - A request refused by a hook that runs before the body watch (401 without a token, 403 CROSS_ORIGIN) had the
//   rest of its body read for as long as the client sent it (40 MiB in 8 s after a 401, the connection kept open
//   up to the request timeout), where docs/api.md promises 2 s at most, then the connection closed. (Taken back
//   for a flaky page test in session 33, whose cause was elsewhere: put back in session 34, with a browser's slow
//   upload shown to get its 401 though the connection closes mid-body.)
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
import { type AppOptions, buildApp } from '../src/serve/app';
import { startServer } from '../src/serve/server';
import { launchChromium, noChromium } from './browser-fixture';
import { gradientFilm, loadPredictor, makeTinyModel, serverParts, tempDir } from './serve-fixtures';

const parts = serverParts('upload-review-s33');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A chunked POST /api/v1/predictions with `headers`, its body sent on (256 KiB every 50 ms) until the server closes
 * the connection or `forMs` pass; the answer's status line and how long the connection stayed open after it.
 */
async function refusedUpload(opts: Partial<AppOptions>, headers: string, forMs: number) {
  const app = await buildApp({ predictor: parts.predictor, audit: parts.audit, webDir: null, ...opts });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as net.AddressInfo).port;
  const sock = net.connect({ port, host: '127.0.0.1' });
  try {
    sock.on('error', () => {});
    let answer = '';
    let answeredAt = 0;
    let closedAt = 0;
    sock.on('data', (d: Buffer) => {
      if (!answer) answeredAt = Date.now();
      answer += d.toString('latin1');
    });
    sock.once('close', () => {
      closedAt = Date.now();
    });
    await new Promise((r) => sock.once('connect', r));
    sock.write(
      `POST /api/v1/predictions HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}` +
        'Content-Type: multipart/form-data; boundary=XyZ\r\nTransfer-Encoding: chunked\r\n\r\n',
    );
    const chunk = Buffer.alloc(256 * 1024, 65);
    const framed = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
    const t0 = Date.now();
    while (!closedAt && Date.now() - t0 < forMs) {
      if (!sock.write(framed))
        await new Promise((r) => {
          sock.once('drain', r);
          sock.once('close', r);
        });
      await sleep(50);
    }
    return { status: answer.split('\r\n')[0], lingeredMs: closedAt ? closedAt - answeredAt : null };
  } finally {
    sock.destroy();
    await app.close();
  }
}

test('an upload refused 401 for want of a token has the rest of its body read for 2 s at most', {
  timeout: 30_000,
}, async () => {
  const { status, lingeredMs } = await refusedUpload({ apiToken: 'review-token-s33' }, '', 7_000);
  assert.match(status, /^HTTP\/1\.1 401 /);
  assert.ok(lingeredMs !== null, 'the connection was still open, reading the body, 7 s after the 401');
  assert.ok(lingeredMs < 4_000, `closed ${lingeredMs} ms after the answer`);
});

test('an upload refused 403 CROSS_ORIGIN has the rest of its body read for 2 s at most', {
  timeout: 30_000,
}, async () => {
  const { status, lingeredMs } = await refusedUpload({}, 'Origin: http://evil.example\r\n', 7_000);
  assert.match(status, /^HTTP\/1\.1 403 /);
  assert.ok(lingeredMs !== null, 'the connection was still open, reading the body, 7 s after the 403');
  assert.ok(lingeredMs < 4_000, `closed ${lingeredMs} ms after the answer`);
});

test("a browser's upload refused 401, over a link too slow to send it within the linger, still gets the 401", {
  skip: noChromium,
  timeout: 60_000,
}, async () => {
  // The connection is closed 2 s after the answer, mid-upload: the page must read the 401 (and ask for a token),
  // not a reset ("Cannot reach the cxr server"). Chromium's throttling sends the 3 MB at 300 kB/s: 10 s.
  const app = await buildApp({ predictor: parts.predictor, audit: parts.audit, webDir: null, apiToken: 'slow-s34' });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}/api/v1/health`);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 5,
      downloadThroughput: 10e6,
      uploadThroughput: 300e3,
    });
    const started = Date.now();
    const outcome = await page.evaluate(
      () =>
        new Promise<string>((resolve) => {
          const xhr = new XMLHttpRequest();
          xhr.open('POST', '/api/v1/predictions');
          xhr.onload = () => resolve(`answered ${xhr.status}`);
          xhr.onerror = () => resolve('network error');
          const form = new FormData();
          form.append('image', new Blob([new Uint8Array(3_000_000)], { type: 'image/png' }), 'film.png');
          xhr.send(form);
        }),
    );
    assert.equal(outcome, 'answered 401');
    assert.ok(Date.now() - started < 8_000, `answered after ${Date.now() - started} ms: the body was read to its end`);
  } finally {
    await browser.close();
    await app.close();
  }
});

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
