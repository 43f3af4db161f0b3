// One logger: every line `cxr serve` prints (start-up, request log, shutdown) is a JSON object
// with level, time and msg on stderr; stdout stays empty; credentials are redacted; the level
// comes from --log-level or CXR_LOG_LEVEL.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import sharp from 'sharp';
import { createLogger, resolveLogLevel } from '../src/log';
import { loggedUrl } from '../src/serve/request_log';
import { CLI, envWithoutTokens, makeTinyModel, multipartBody, tempDir } from './serve-fixtures';

let dir: string;
let png: Buffer;
const TOKEN = 'logging-test-token-5678';

before(async () => {
  dir = tempDir('serve-logging');
  await makeTinyModel(path.join(dir, 'model'));
  const px = Buffer.alloc(128 * 128, 0);
  for (let i = 0; i < px.length; i++) px[i] = (i % 128) * 2;
  png = await sharp(px, { raw: { width: 128, height: 128, channels: 1 } })
    .png()
    .toBuffer();
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A port free right now (the server is told it, so that a run that logs nothing can be reached). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForHealth(url: string, proc: ChildProcess): Promise<void> {
  for (let i = 0; i < 1200 && proc.exitCode === null; i++) {
    try {
      if ((await fetch(`${url}/api/v1/health`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the server did not come up');
}

/** `cxr serve` until /health answers, then `work(url)`, then SIGTERM; everything it printed. */
async function runServer(args: string[], env: Record<string, string>, work: (url: string) => Promise<void>) {
  const port = await freePort();
  const proc = spawn(
    process.execPath,
    [CLI, 'serve', '--port', String(port), '--model', path.join(dir, 'model'), '--db', path.join(dir, 'a.db'), ...args],
    { env: envWithoutTokens({ CXR_LOG_LEVEL: '', ...env }) },
  );
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  try {
    await Promise.race([waitForHealth(`http://127.0.0.1:${port}`, proc), exited]);
    if (proc.exitCode === null) await work(`http://127.0.0.1:${port}`);
  } finally {
    if (proc.exitCode === null) proc.kill('SIGTERM');
  }
  const code = await exited;
  return { stdout, stderr, code };
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON line: ${l}`);
      }
    });
}

test('every line the server prints is JSON with level, time and msg; no token in any of them', async () => {
  const run = await runServer([], { CXR_API_TOKEN: TOKEN }, async (url) => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    assert.equal((await fetch(`${url}/api/v1/health`)).status, 200);
    const { body, headers } = multipartBody('image', 'film.png', png);
    const res = await fetch(`${url}/api/v1/predictions`, {
      method: 'POST',
      body: new Uint8Array(body),
      headers: { ...headers, ...auth },
    });
    assert.equal(res.status, 200, await res.text());
    assert.equal((await fetch(`${url}/metrics`, { headers: auth })).status, 200);
    assert.equal((await fetch(`${url}/api/v1/model`)).status, 401);
  });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, '', 'the server writes nothing to stdout');
  const lines = jsonLines(run.stderr);
  for (const l of lines) {
    assert.equal(typeof l.level, 'string', JSON.stringify(l));
    assert.ok(!Number.isNaN(Date.parse(String(l.time))), JSON.stringify(l));
    assert.equal(typeof l.msg, 'string', JSON.stringify(l));
  }
  const msgs = lines.map((l) => String(l.msg));
  for (const want of [/loaded and warmed up/, /^listening on http/, /^incoming request$/, /^request completed$/]) {
    assert.ok(
      msgs.some((m) => want.test(m)),
      `${want}: ${msgs.join(' | ')}`,
    );
  }
  assert.ok(msgs.includes('closed cleanly'), msgs.join(' | '));
  assert.ok(!run.stderr.includes(TOKEN), 'the token is never logged');
});

test('--log-level warn keeps the info lines out; a bad level is refused with a clear message', async () => {
  const quiet = await runServer(['--log-level', 'warn'], {}, async () => {});
  assert.equal(quiet.code, 0, quiet.stderr);
  // The test model has no OOD gate (no ood.json): the model's notes are said at warn, nothing else is.
  const warned = jsonLines(quiet.stderr);
  assert.deepEqual(
    warned.map((l) => String(l.msg)),
    [`model: no ood.json in ${path.join(dir, 'model')}: the OOD gate is off (fit it with 'cxr ood fit')`],
    'only the model notes at warn and above in a clean start and stop',
  );
  assert.ok(warned.every((l) => l.level === 'warn'));

  const viaEnv = await runServer([], { CXR_LOG_LEVEL: 'error' }, async () => {});
  assert.equal(viaEnv.stderr, '');

  assert.throws(() => resolveLogLevel('loud'), /--log-level: expected one of fatal, error, warn, info/);
  assert.throws(() => resolveLogLevel(undefined, { CXR_LOG_LEVEL: 'chatty' }), /CXR_LOG_LEVEL/);
  assert.equal(resolveLogLevel(undefined, {}), 'info');
  assert.equal(resolveLogLevel('DEBUG', { CXR_LOG_LEVEL: 'error' }), 'debug', 'the flag wins');
});

test('a refused start is a JSON fatal line too', async () => {
  const run = await runServer(['--host', '0.0.0.0'], {}, async () => {});
  assert.equal(run.code, 1);
  const [line] = jsonLines(run.stderr);
  assert.equal(line.level, 'fatal');
  assert.match(String(line.msg), /refusing to listen on 0\.0\.0\.0 without an API token/);
});

test('redaction: credentials named anywhere the logger is given them come out as [redacted]', () => {
  let out = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      out += chunk.toString();
      done();
    },
  });
  const log = createLogger({ destination: sink });
  log.info({ req: { headers: { authorization: `Bearer ${TOKEN}`, cookie: 'sid=1' } } }, 'a request');
  log.info({ token: TOKEN, config: { apiToken: TOKEN, password: 'hunter22' } }, 'a config');
  assert.ok(!out.includes(TOKEN) && !out.includes('hunter22') && !out.includes('sid=1'), out);
  const [first, second] = jsonLines(out);
  assert.equal((first.req as { headers: Record<string, string> }).headers.authorization, '[redacted]');
  assert.equal(second.token, '[redacted]');
  assert.equal((second.config as Record<string, string>).password, '[redacted]');
});

test('the request log hides the patient age in URLs (patient data: the audit log keeps none either)', async () => {
  assert.equal(
    loggedUrl('/api/v1/predictions?heatmap=false&patientAge=40'),
    '/api/v1/predictions?heatmap=false&patientAge=*****',
  );
  assert.equal(loggedUrl('/api/v1/predictions?PATIENTAGE=7&x=1'), '/api/v1/predictions?PATIENTAGE=*****&x=1');
  assert.equal(loggedUrl('/api/v1/predictions?patient%41ge=7'), '/api/v1/predictions?patient%41ge=*****');
  assert.equal(loggedUrl('/api/v1/health'), '/api/v1/health');
  const run = await runServer([], {}, async (url) => {
    const { body, headers } = multipartBody('image', 'film.png', png);
    const res = await fetch(`${url}/api/v1/predictions?patientAge=40`, {
      method: 'POST',
      body: new Uint8Array(body),
      headers,
    });
    assert.equal(res.status, 200, await res.text());
  });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /"url":"\/api\/v1\/predictions\?patientAge=\*\*\*\*\*"/);
  assert.doesNotMatch(run.stderr, /patientAge=40/);
});
