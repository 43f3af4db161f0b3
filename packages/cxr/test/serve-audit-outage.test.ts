// The audit log going away under a running server: PostgreSQL stopped (scripts/stack.sh down), a
// database that takes connections and never answers, an SQLite disk that is full. Predictions, history
// and /health answer 503 within a bounded wait, with AUDIT_UNAVAILABLE and Retry-After, instead of 500
// INTERNAL (the client is told the kind of failure; the server log names the log, its password hidden);
// the server comes back by itself once the log does, and no prediction is answered without its row. A SQL
// error is still a bug: 500.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { createLogger } from '../src/log';
import type { ServePredictor } from '../src/serve/predictor_port';
import { type RunningServer, startServer } from '../src/serve/server';
import { gradientFilm, loadPredictor, makeTinyModel, multipartBody, spawnServer, tempDir } from './serve-fixtures';
import { postgresUnavailable, type Stack, stackCmd, startStack, stopStack } from './stack-fixture';
import { fillDisk, mountTmpfs } from './small-disk';

// PostgreSQL from scripts/stack.sh, started before the tests are declared so that they know whether to skip.
let stack: Stack | undefined;
let pgSkip: string | false = postgresUnavailable() ?? false;
if (!pgSkip) {
  try {
    stack = startStack('audit-outage', ['postgresql']);
  } catch (e) {
    pgSkip = `PostgreSQL did not start: ${(e as Error).message.slice(0, 2000)}`;
  }
}
if (pgSkip) console.log(`# PostgreSQL outage tests skipped: ${pgSkip}`);
const url = stack?.env.CXR_DB ?? '';
const password = url ? decodeURIComponent(new URL(url).password) : '';

let dir = '';
let film: Buffer;

before(async () => {
  dir = tempDir('audit-outage');
  await makeTinyModel(path.join(dir, 'model'));
  film = await gradientFilm();
});

after(() => {
  stopStack(stack);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function sql(query: string): Promise<Record<string, unknown>[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(query)).rows as Record<string, unknown>[];
  } finally {
    await c.end();
  }
}

function pg(cmd: 'down' | 'up'): void {
  const r = stackCmd(stack!.dir, cmd, ['postgresql']);
  assert.equal(r.code, 0, `stack.sh ${cmd} postgresql:\n${r.stdout}\n${r.stderr}`);
  // The server keeps the URL it started with: the stack must come back on the same port.
  if (cmd === 'up') assert.ok(fs.readFileSync(path.join(stack!.dir, 'env'), 'utf8').includes(`CXR_DB=${url}\n`));
}

function post(base: string): Promise<Response> {
  const { body, headers } = multipartBody('image', 'film.png', film);
  return fetch(`${base}/api/v1/predictions`, { method: 'POST', body: new Uint8Array(body), headers });
}

/** The problem a 503 carries, checked as every AUDIT_UNAVAILABLE answer must be. */
async function unavailable(res: Response, consequence: RegExp): Promise<string> {
  const text = await res.text();
  assert.equal(res.status, 503, text);
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(res.headers.get('retry-after'), '5');
  const p = JSON.parse(text) as { code: string; detail: string; type: string };
  assert.equal(p.code, 'AUDIT_UNAVAILABLE');
  assert.equal(p.type, 'urn:cxr:problem:audit-unavailable');
  assert.match(p.detail, consequence);
  if (password) assert.ok(!p.detail.includes(password), 'the password is not in the answer');
  // Where the log is (host, user, file) and the driver's words are the operator's: the server log has them.
  assert.match(p.detail, /^the audit log [^(]+ \(details are in the server log\); /);
  assert.doesNotMatch(p.detail, /127\.0\.0\.1|postgres|cxr:|audit\.db|ECONNREFUSED|SQLITE/);
  return p.detail;
}

const NOT_ANSWERED = /; the prediction was not answered, as none is without its audit row; send the image again$/;
const NOT_PREDICTED = /; nothing was predicted; send the image again$/;

async function gauge(base: string): Promise<number> {
  const m = /^cxr_audit_available (\d+)$/m.exec(await (await fetch(`${base}/metrics`)).text());
  assert.ok(m, 'cxr_audit_available is reported');
  return Number(m[1]);
}

test('cxr serve --db postgres://, PostgreSQL stopped: 503 AUDIT_UNAVAILABLE at once, back when it is up', {
  skip: pgSkip,
  timeout: 300_000,
}, async () => {
  await sql('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  const server = await spawnServer(['--model', path.join(dir, 'model'), '--db', url]);
  try {
    assert.equal((await post(server.url)).status, 200);
    assert.equal(await gauge(server.url), 1);
    pg('down');
    const t0 = performance.now();
    // Predicted, then the row could not be written: not answered. The next is refused before predicting.
    const detail = await unavailable(await post(server.url), NOT_ANSWERED);
    assert.match(detail, /^the audit log does not answer \(/);
    await unavailable(await post(server.url), NOT_PREDICTED);
    await unavailable(await fetch(`${server.url}/api/v1/predictions`), /; try again shortly$/);
    const health = await fetch(`${server.url}/api/v1/health`);
    assert.ok(performance.now() - t0 < 5000, `answered within a few seconds (${performance.now() - t0} ms)`);
    assert.equal(health.status, 503);
    assert.equal(health.headers.get('retry-after'), '5');
    const h = (await health.json()) as Record<string, unknown>;
    assert.equal(h.status, 'degraded');
    assert.equal(h.audit, 'unavailable');
    assert.equal(h.predictions, null);
    assert.equal((h.model as { name: string }).name, 'tiny-test');
    assert.equal(h.authRequired, false);
    assert.match(String(h.detail), /the audit log does not answer/);
    assert.equal(await gauge(server.url), 0);
    assert.match(server.log(), /"level":"warn".*"reason":"does not answer: .*predictions are refused \(503/);
    assert.match(server.log(), /"msg":"the audit log \(postgres:\/\/cxr:\*\*\*\*\*@127\.0\.0\.1:\d+\/cxr\) does not/);
    assert.doesNotMatch(server.log(), /request failed/, 'an outage is not logged as a failed request (500)');

    pg('up');
    const res = await post(server.url);
    assert.equal(res.status, 200, await res.clone().text());
    const answered = (await res.json()) as { id: string };
    const rows = await sql('SELECT id FROM predictions');
    assert.equal(rows.length, 2, 'the first prediction and this one; none of those refused');
    assert.ok(
      rows.some((r) => r.id === answered.id),
      'the answer is in the log',
    );
    const back = await fetch(`${server.url}/api/v1/health`);
    assert.equal(back.status, 200);
    assert.deepEqual(
      (({ status, audit, predictions }) => ({ status, audit, predictions }))((await back.json()) as never),
      { status: 'ok', audit: 'ok', predictions: 2 },
    );
    assert.equal(await gauge(server.url), 1);
    assert.match(server.log(), /answers again, after \d+ s/);
    assert.ok(!server.log().includes(password), 'the password is never logged');
  } finally {
    assert.equal(await server.stop('SIGTERM'), 0, server.log());
  }
});

/** A server in this process whose predictor counts its predictions (a real one underneath). */
async function countingServer(
  dbPath: string,
): Promise<{ server: RunningServer; predicted: () => number; logged: () => string }> {
  let n = 0;
  let lines = '';
  const server = await startServer({
    host: '127.0.0.1',
    port: 0,
    dbPath,
    log: createLogger({ level: 'warn', destination: { write: (line: string) => void (lines += line) } }),
    loadPredictor: async () => {
      const p = await loadPredictor(path.join(dir, 'model'));
      const counting: ServePredictor = {
        model: p.model,
        warmUp: (img) => p.warmUp(img),
        dispose: () => p.dispose(),
        predict: (bytes, opts) => {
          n++;
          return p.predict(bytes, opts);
        },
      };
      return counting;
    },
  });
  return { server, predicted: () => n, logged: () => lines };
}

test('a database that takes connections and never answers: 503 within the bound, nothing predicted meanwhile', {
  skip: pgSkip,
  timeout: 120_000,
}, async () => {
  await sql('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  const { server, predicted } = await countingServer(url);
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((socket) => sockets.add(socket));
  try {
    assert.equal((await post(server.url)).status, 200);
    pg('down');
    // The pool's connections to the stopped server go first (each fails once), so that the next ones
    // meet the silent listener. Through the store itself: the server's guard sees none of it.
    for (let i = 0; i < 10; i++) {
      const e = await server.audit.ping().then(
        () => null,
        (x: Error) => x,
      );
      if (e?.message.includes('ECONNREFUSED')) break;
    }
    await new Promise<void>((resolve) => silent.listen(Number(new URL(url).port), '127.0.0.1', resolve));

    let t0 = performance.now();
    await unavailable(await post(server.url), NOT_ANSWERED);
    const waited = performance.now() - t0;
    assert.ok(waited >= 4500 && waited < 8000, `waited ${waited} ms for the database (bound: 5 s)`);
    t0 = performance.now();
    const health = await fetch(`${server.url}/api/v1/health`);
    assert.equal(health.status, 503);
    assert.ok(performance.now() - t0 < 3000, `health answered within about 2 s (${performance.now() - t0} ms)`);
    const before = predicted();
    const detail = await unavailable(await post(server.url), NOT_PREDICTED);
    assert.match(detail, /^the audit log did not answer within 5 s \(/);
    assert.equal(predicted(), before, 'no model time for a prediction that could not be answered');

    await new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      silent.close(() => resolve());
    });
    pg('up');
    assert.equal((await post(server.url)).status, 200);
    assert.equal((await fetch(`${server.url}/api/v1/health`)).status, 200);
  } finally {
    for (const s of sockets) s.destroy();
    if (silent.listening) silent.close();
    await server.close();
  }
});

test('a SQL error is a bug, not an outage: 500 INTERNAL, and the log still counts as answering', {
  skip: pgSkip,
  timeout: 120_000,
}, async () => {
  await sql('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  const { server } = await countingServer(url);
  try {
    await sql('DROP TABLE prediction_images; DROP TABLE predictions');
    for (const res of [await post(server.url), await fetch(`${server.url}/api/v1/predictions`)]) {
      assert.equal(res.status, 500);
      assert.equal(((await res.json()) as { code: string }).code, 'INTERNAL');
    }
    assert.equal(await gauge(server.url), 1);
  } finally {
    await server.close();
  }
});

test('an SQLite audit log on a full disk: 503 AUDIT_UNAVAILABLE, and predictions again once there is room', {
  timeout: 120_000,
}, async (t) => {
  const mnt = path.join(dir, 'small-disk');
  const why = mountTmpfs(mnt);
  if (why) return t.skip(why);
  const { server, logged } = await countingServer(path.join(mnt, 'audit.db')).catch((e) => {
    spawnSync('umount', ['-l', mnt]);
    throw e;
  });
  const filler = path.join(mnt, 'filler');
  try {
    assert.equal((await post(server.url)).status, 200);
    // Fill what is left of the disk.
    fillDisk(filler, 64 * 1024);
    const detail = await unavailable(await post(server.url), NOT_ANSWERED);
    assert.match(detail, /^the audit log cannot be used \(/);
    assert.match(logged(), /the audit log \(.*audit\.db\) cannot be used: .*full \(SQLITE_FULL\)/);
    assert.equal(await gauge(server.url), 0, 'a log that cannot take rows counts as unavailable');
    fs.rmSync(filler);
    assert.equal((await post(server.url)).status, 200);
    assert.equal(await gauge(server.url), 1);
    assert.equal(await server.audit.count(), 2);
  } finally {
    try {
      await server.close();
    } finally {
      spawnSync('umount', ['-l', mnt]);
    }
  }
});
