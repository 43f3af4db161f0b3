// The commands' shutdown while their PostgreSQL audit log is hung (SIGSTOP, as QA froze it: a network partition).
// QA: `cxr worker --close-timeout 10000` logged `stopped` and ran on 60-120 s, `cxr orthanc sync` ran on until
// PostgreSQL resumed, and `cxr serve` with a timed-out write pending waited 30 s and blamed "requests still
// running" though every client had its 503. Now each exits 1 within its bound, saying the audit log did not close.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startModelStack, stopModelStack } from './queue-stack';
import { CLI, multipartBody, spawnServer, XRAY_JPEG_NORMAL } from './serve-fixtures';
import { postgresUnavailable, type Stack, stackUnavailable } from './stack-fixture';

const skip = postgresUnavailable() ?? stackUnavailable() ?? false;
if (skip) console.log(`# audit-close-hung-cli skipped: ${skip}`);
let stack: Stack | undefined;
let dir = '';
let modelDir = '';

before(async () => {
  if (skip) return;
  ({ dir, modelDir, stack } = await startModelStack('close-hung-cli', ['postgresql', 'orthanc', 'redis']));
});
after(async () => {
  await stopModelStack({ stack, dir });
});

/** Freezes the postmaster and its backends; the returned function wakes them. */
function hang(): () => void {
  const pid = Number(
    fs.readFileSync(path.join(stack!.dir, 'postgresql', 'data', 'postmaster.pid'), 'utf8').split('\n')[0],
  );
  const children = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean);
  const pids = [pid, ...children.map(Number)];
  for (const p of pids) process.kill(p, 'SIGSTOP');
  return () => {
    for (const p of pids) process.kill(p, 'SIGCONT');
  };
}

/**
 * Starts `cxr ARGS`, waits for `ready` in its stderr, hangs PostgreSQL, sends SIGTERM; resolves with its exit code
 * (or 'running' `waitMs` after the signal), the time it took and its stderr. PostgreSQL always resumes.
 */
async function termWhileHung(args: string[], ready: RegExp, waitMs: number) {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...stack!.env, CXR_MODEL: modelDir, CXR_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const end = Date.now() + 60_000;
  while (!ready.test(err)) {
    assert.ok(Date.now() < end && child.exitCode === null, `not ready:\n${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const wake = hang();
  try {
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), waitMs))]);
    return { code, took: Date.now() - t0, err: () => err };
  } finally {
    wake();
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

test('cxr worker exits within --close-timeout, saying the audit log did not close', {
  skip,
  timeout: 120_000,
}, async () => {
  const r = await termWhileHung(['worker', '--close-timeout', '3000'], /consuming/, 15_000);
  assert.equal(r.code, 1, `exit ${r.code} ${r.took} ms after SIGTERM:\n${r.err()}`);
  assert.ok(r.took < 6_000, `exited ${r.took} ms after SIGTERM`);
  assert.match(r.err(), /the audit log \(postgres[^)]*\) did not close within \d+ ms/);
  assert.doesNotMatch(r.err(), /"msg":"stopped"/);
});

test('a polling cxr orthanc sync exits within --close-timeout, saying the audit log did not close', {
  skip,
  timeout: 120_000,
}, async () => {
  const state = path.join(dir, 'state.json');
  const args = ['orthanc', 'sync', '--interval', '1', '--state', state, '--close-timeout', '2000'];
  const r = await termWhileHung(args, /watching/, 15_000);
  assert.equal(r.code, 1, `exit ${r.code} ${r.took} ms after SIGTERM:\n${r.err()}`);
  assert.ok(r.took < 5_000, `exited ${r.took} ms after SIGTERM`);
  assert.match(r.err(), /the audit log \(postgres[^)]*\) did not close within 2000 ms/);
});

test('cxr serve with a timed-out write pending says the audit log did not close, not that requests run', {
  skip,
  timeout: 180_000,
}, async () => {
  const server = await spawnServer(['--model', modelDir], { ...stack!.env, CXR_LOG_LEVEL: 'info' });
  const jpeg = fs.readFileSync(XRAY_JPEG_NORMAL);
  const post = () => {
    const { body, headers } = multipartBody('image', 'a.jpeg', jpeg, 'image/jpeg');
    return fetch(`${server.url}/api/v1/predictions`, { method: 'POST', body: new Uint8Array(body), headers });
  };
  assert.equal((await post()).status, 200, server.log()); // live connections in the pool
  const wake = hang();
  try {
    const answer = await post(); // its write waits on the hung database; the client is answered 503 after 5 s
    assert.equal(answer.status, 503);
    const t0 = Date.now();
    const code = await Promise.race([server.stop(), new Promise((r) => setTimeout(() => r('running'), 25_000))]);
    assert.equal(code, 1, server.log());
    assert.ok(Date.now() - t0 < 14_000, `exited ${Date.now() - t0} ms after SIGTERM`);
    assert.match(server.log(), /error while closing: the audit log \(postgres[^)]*\) did not close within 10000 ms/);
    assert.doesNotMatch(server.log(), /requests still running/);
  } finally {
    wake();
    server.proc.kill('SIGKILL');
  }
});
