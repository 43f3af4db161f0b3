// Uploads that would keep the server reading, or hold its upload memory, for long (upload_watch.ts), over
// raw sockets so that the test decides every byte and its timing, and from several loopback addresses
// (127.0.0.x) as several clients:
// - a body sent at once and then trickled is refused (408 UPLOAD_TOO_SLOW) one window later; four such held
//   the whole budget, every other upload 503 BUSY, until the 120 s request timeout;
// - one client address cannot take the whole budget: another's upload still fits;
// - bytes after the closing boundary count: 413 as soon as the limit is passed (chunked bodies were read
//   to the end, 500 MiB of them, and answered 200);
// - a body that stops arriving is answered 408 BODY_TIMEOUT (the connection used to be dropped without an
//   answer, and the request was neither logged nor counted).
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import sharp from 'sharp';
import pino from 'pino';
import { type AppOptions, buildApp } from '../src/serve/app';
import { ClientShares } from '../src/serve/upload_watch';
import { metricValue, parseMetrics } from './prometheus-text';
import { gradientFilm, multipartBody, serverParts } from './serve-fixtures';

const KiB = 1024;
const MiB = 1024 * KiB;

const parts = serverParts('serve-upload-watch');
let film: Buffer;

before(async () => {
  film = await gradientFilm();
});

interface LogLine {
  msg?: string;
  res?: { statusCode?: number };
}

/** An app on a free port with these options; its port, its log lines and a way to read /metrics. */
async function serve(opts: Partial<AppOptions>) {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const app = await buildApp({ predictor: parts.predictor, audit: parts.audit, logger, ...opts });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as net.AddressInfo).port;
  const metrics = async () => parseMetrics((await app.inject('/metrics')).body);
  return { app, port, lines, metrics };
}

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function parseAnswer(bytes: Buffer): RawAnswer | null {
  const text = bytes.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const [statusLine, ...fields] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const f of fields) headers[f.slice(0, f.indexOf(':')).toLowerCase()] = f.slice(f.indexOf(':') + 1).trim();
  return { status: Number(statusLine.split(' ')[1]), headers, body: text.slice(end + 4) };
}

/**
 * A POST to /api/v1/predictions over a socket of its own, from loopback address `from`: chunked unless
 * `contentLength` is given. `send` writes body bytes (framed as one chunk), `end` ends a chunked body;
 * `answer` is what came back by the time the server closed the connection (null: nothing).
 */
function rawPost(port: number, boundary: string, opts: { from?: string; contentLength?: number } = {}) {
  const sock = net.connect({ port, host: '127.0.0.1', localAddress: opts.from ?? '127.0.0.1' });
  const chunked = opts.contentLength === undefined;
  sock.write(
    'POST /api/v1/predictions?heatmap=false HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n' +
      `Content-Type: multipart/form-data; boundary=${boundary}\r\n` +
      (chunked ? 'Transfer-Encoding: chunked\r\n\r\n' : `Content-Length: ${opts.contentLength}\r\n\r\n`),
  );
  const got: Buffer[] = [];
  sock.on('data', (b: Buffer) => got.push(b));
  sock.on('error', () => {}); // a reset of what the test was still sending: the answer is what counts
  const answer = new Promise<RawAnswer | null>((resolve) =>
    sock.on('close', () => resolve(parseAnswer(Buffer.concat(got)))),
  );
  /** Writes `bytes`; false once the server has answered or closed (nothing more is sent). */
  const send = async (bytes: Buffer): Promise<boolean> => {
    if (got.length || sock.destroyed) return false;
    const framed = chunked
      ? Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from('\r\n')])
      : bytes;
    if (!sock.write(framed))
      await new Promise((r) => {
        sock.once('drain', r);
        sock.once('close', r);
      });
    return true;
  };
  /** The chunked body's end (a no-op once the server has answered). */
  const end = () => void (!got.length && !sock.destroyed && chunked && sock.write('0\r\n\r\n'));
  return { send, end, answer, close: () => sock.destroy() };
}

/** The start of a file part in field "image", and the body's end. */
function framing(boundary: string) {
  return {
    head: Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="f.png"\r\n` +
        'Content-Type: image/png\r\n\r\n',
    ),
    tail: Buffer.from(`\r\n--${boundary}--\r\n`),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `p`, or 'no answer' once `ms` have passed. */
const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, sleep(ms).then(() => 'no answer' as const)]);

function assertProblem(a: RawAnswer | null | 'no answer', status: number, code: string): RawAnswer {
  assert.ok(a && a !== 'no answer', `expected ${status} ${code}, got ${a === null ? 'a closed connection' : a}`);
  assert.equal(a.status, status, a.body);
  assert.match(a.headers['content-type'], /^application\/problem\+json/);
  assert.equal(JSON.parse(a.body).code, code, a.body);
  return a;
}

test('a body sent at once and then trickled is refused 408 UPLOAD_TOO_SLOW after a window; its bytes are released', {
  timeout: 30_000,
}, async () => {
  const s = await serve({
    maxUploadBytes: MiB,
    uploadBudgetBytes: 4 * MiB,
    uploadIdleMs: 5000,
    uploadRateWindowMs: 500,
    uploadMinBytesPerS: 16 * KiB,
  });
  try {
    const { head } = framing('HOG');
    const hog = rawPost(s.port, 'HOG');
    await hog.send(Buffer.concat([head, Buffer.alloc(900 * KiB)]));
    const t0 = Date.now();
    // A byte every 100 ms: never idle, but far below 16 KiB/s.
    const trickle = setInterval(() => void hog.send(Buffer.alloc(1)), 100);
    try {
      const refused = assertProblem(await within(hog.answer, 10_000), 408, 'UPLOAD_TOO_SLOW');
      assert.match(JSON.parse(refused.body).detail, /at least 16384 bytes\/s/);
      assert.equal(refused.headers.connection, 'close');
      assert.ok(Date.now() - t0 < 3000, `refused after ${Date.now() - t0} ms`);
    } finally {
      clearInterval(trickle);
    }
    const m = await s.metrics();
    assert.equal(metricValue(m, 'cxr_upload_bytes_held'), 0, 'the budget is back');
    assert.equal(
      metricValue(m, 'cxr_http_requests_total', { route: '/api/v1/predictions', status: '408' }),
      1,
      'counted',
    );
  } finally {
    await s.app.close();
  }
});

test('one client address cannot take the whole upload budget: another address still gets its upload in', {
  timeout: 30_000,
}, async () => {
  // 1 MiB uploads, 2 MiB budget: one address may have the budget less one upload (but one upload at least).
  const s = await serve({ maxUploadBytes: MiB, uploadBudgetBytes: 2 * MiB });
  // Noise does not compress: a 40 KB film, over what two 1010 KiB uploads would leave of the budget.
  const noise = Buffer.from(Array.from({ length: 200 * 200 }, () => Math.floor(Math.random() * 256)));
  const bigFilm = await sharp(noise, { raw: { width: 200, height: 200, channels: 1 } })
    .png()
    .toBuffer();
  assert.ok(bigFilm.length > 30 * KiB, `${bigFilm.length} bytes`);
  const hogs = [rawPost(s.port, 'HOG'), rawPost(s.port, 'HOG')];
  try {
    const { head } = framing('HOG');
    await hogs[0].send(Buffer.concat([head, Buffer.alloc(1010 * KiB)]));
    // The first's bytes all held before the second's come (not a fixed 200 ms): read in turns, the first could
    // be the one that crosses the address's share, and be refused instead.
    for (const end = Date.now() + 20_000; metricValue(await s.metrics(), 'cxr_upload_bytes_held') < 1010 * KiB; ) {
      assert.ok(Date.now() < end, 'the first upload was not read');
      await sleep(20);
    }
    await hogs[1].send(Buffer.concat([head, Buffer.alloc(1010 * KiB)]));
    const second = assertProblem(await within(hogs[1].answer, 5000), 503, 'BUSY');
    assert.match(JSON.parse(second.body).detail, /one client address may have at once/);
    assert.equal(second.headers['retry-after'], '1');
    // The first still holds its part of the budget; a film from another address fits beside it.
    const other = framing('OTHER');
    const body = Buffer.concat([other.head, bigFilm, other.tail]);
    const normal = rawPost(s.port, 'OTHER', { from: '127.0.0.2', contentLength: body.length });
    await normal.send(body);
    const ok = await within(normal.answer, 10_000);
    assert.ok(ok && ok !== 'no answer');
    assert.equal(ok.status, 200, ok.body);
  } finally {
    for (const h of hogs) h.close();
    await s.app.close();
  }
});

test('bytes after the closing boundary count: 413 as soon as the limit is passed, as with a declared length', {
  timeout: 60_000,
}, async () => {
  const s = await serve({ maxUploadBytes: 256 * KiB });
  const before = await parts.audit.count();
  try {
    const { head, tail } = framing('EPI');
    const filler = Buffer.alloc(64 * KiB, 'E');
    const total = 40 * MiB;
    // Declared: refused before a byte is read.
    const declared = rawPost(s.port, 'EPI', { contentLength: head.length + film.length + tail.length + total });
    const withLength = assertProblem(await within(declared.answer, 5000), 413, 'TOO_LARGE');
    // Chunked: the film, its closing boundary, then filler, until the server answers.
    const chunked = rawPost(s.port, 'EPI');
    await chunked.send(Buffer.concat([head, film, tail]));
    let sent = 0;
    while (sent < total && (await chunked.send(filler))) sent += filler.length;
    chunked.end();
    const answer = assertProblem(await within(chunked.answer, 5000), 413, 'TOO_LARGE');
    assert.equal(answer.body, withLength.body, 'the same problem as the declared-length case');
    assert.ok(sent < total / 2, `the server read on: ${sent} of ${total} filler bytes sent`);
    assert.equal(await parts.audit.count(), before, 'nothing predicted');
  } finally {
    await s.app.close();
  }
});

test('a body that stops arriving is answered 408 BODY_TIMEOUT, logged and counted', { timeout: 30_000 }, async () => {
  const s = await serve({ uploadIdleMs: 600 });
  try {
    const { body } = multipartBody('image', 'f.png', film);
    const boundary = body.toString('latin1', 2, body.indexOf('\r\n'));
    const stalled = rawPost(s.port, boundary, { contentLength: body.length + 10 });
    await stalled.send(body);
    const answer = assertProblem(await within(stalled.answer, 5000), 408, 'BODY_TIMEOUT');
    assert.match(JSON.parse(answer.body).detail, /no upload data for 0.6 s/);
    assert.ok(
      s.lines.some((l) => l.msg === 'request completed' && l.res?.statusCode === 408),
      JSON.stringify(s.lines),
    );
    const m = await s.metrics();
    assert.equal(metricValue(m, 'cxr_http_requests_total', { route: '/api/v1/predictions', status: '408' }), 1);
  } finally {
    await s.app.close();
  }
});

test('a slow link is let finish a film of declared length that will arrive in time; a declared trickle is not', {
  timeout: 30_000,
}, async () => {
  const s = await serve({ uploadRateWindowMs: 250, uploadMinBytesPerS: 16 * KiB });
  try {
    const { head, tail } = framing('SLOW');
    const body = Buffer.concat([head, film, tail]);
    // About 5 KiB/s, under the 16 KiB/s rule for well over a window, yet done in seconds of the 120 s.
    const slow = rawPost(s.port, 'SLOW', { contentLength: body.length });
    const started = Date.now();
    for (let at = 0; at < body.length; at += 256) {
      await slow.send(body.subarray(at, at + 256));
      await sleep(50);
    }
    const ok = await within(slow.answer, 10_000);
    assert.ok(ok && ok !== 'no answer', 'no answer');
    assert.equal(ok.status, 200, ok.body);
    assert.ok(Date.now() - started > 2 * 250, `the test's link was not slow: ${Date.now() - started} ms`);

    // 900 KiB at once, then a byte every 100 ms: refused whether the rest declared would take hours or,
    // 400 bytes, seconds (a burst then a trickle holds its bytes; only a body never ahead of the rate is let on).
    for (const rest of [MiB - 900 * KiB, 400]) {
      const hog = rawPost(s.port, 'HOG', { contentLength: head.length + 900 * KiB + rest });
      await hog.send(Buffer.concat([head, Buffer.alloc(900 * KiB)]));
      const trickle = setInterval(() => void hog.send(Buffer.alloc(1)), 100);
      try {
        assertProblem(await within(hog.answer, 10_000), 408, 'UPLOAD_TOO_SLOW');
      } finally {
        clearInterval(trickle);
      }
    }
  } finally {
    await s.app.close();
  }
});

test("one request alone is bounded by the budget, not its address's share (a POST /jobs of several films)", () => {
  const shares = new ClientShares(100);
  assert.equal(shares.add('a', 150, 150), true, 'alone: over the share, still taken');
  assert.equal(shares.add('a', 10, 10), false, 'a second upload of the same address is not');
  assert.equal(shares.add('b', 60, 60), true);
  shares.remove('a', 160);
  assert.equal(shares.of('a'), 0);
});
