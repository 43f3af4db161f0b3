// `cxr serve` with a mistyped database host (QA: CXR_DB=postgres://cxr:pw@no-such-host/cxr) waited for ever,
// warning every 30 s with only "getaddrinfo ENOTFOUND": a name that does not resolve is waited out like a database
// not up yet (a container starting has no DNS entry either), but the warning now names the host and says a typo is
// likely, and --db-wait / CXR_DB_WAIT bounds the wait: past it serve exits 1 with the cause, a failed unit rather
// than a hung one. No database is needed: the name resolves nowhere.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_DB_WAIT_S } from '../src/cli/serve';
import { CLI, envWithoutTokens, makeTinyModel, tempDir } from './serve-fixtures';

const HOST = 'no-such-db-host.invalid';
let dir = '';

before(async () => {
  dir = tempDir('ops-s31-db-wait');
  await makeTinyModel(path.join(dir, 'model'));
});
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs serve until it exits or `ms` pass, or until its stderr matches `killWhen` (killed then as well: the exit
 * code is null).
 */
async function serveFor(args: string[], env: Record<string, string>, ms: number, killWhen?: RegExp) {
  const proc = spawn(
    process.execPath,
    [CLI, 'serve', '--port', '0', '--quiet', '--model', path.join(dir, 'model'), ...args],
    { env: { ...envWithoutTokens(), ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  proc.stderr!.on('data', (b: Buffer) => {
    err += b.toString();
    if (killWhen?.test(err)) proc.kill('SIGKILL');
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
  const code = await new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  const lines = err
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number | string; msg: string });
  return { code, err, lines };
}

// Each test runs servers of their own that mostly wait (for a name that never resolves): side by side.
describe('serve waiting for an audit log whose host does not resolve', { concurrency: true }, () => {
  test('a host name that does not resolve: named in the warning, and serve exits 1 after CXR_DB_WAIT', {
    timeout: 120_000,
  }, async () => {
    const t0 = Date.now();
    const r = await serveFor([], { CXR_DB: `postgres://cxr:s3cret-pw@${HOST}/cxr`, CXR_DB_WAIT: '3' }, 60_000);
    const took = Date.now() - t0;
    assert.equal(r.code, 1, `exited ${r.code} after ${took} ms:\n${r.err}`);
    assert.ok(!r.err.includes('s3cret-pw'), 'the password is not logged');
    const waits = r.lines.filter((l) => /waiting for the audit log before listening/.test(l.msg));
    assert.ok(waits.length >= 1, r.err);
    for (const w of waits) {
      assert.match(w.msg, new RegExp(`the database host name "${HOST.replace(/\./g, '\\.')}" does not resolve`));
      assert.match(w.msg, /a typo in --db or CXR_DB is likely/);
      assert.match(w.msg, /exiting 1 if it still does not answer 3 s after start \(--db-wait\)/);
    }
    const fatal = r.lines.at(-1)!;
    // The time it really waited (at least the bound; an attempt may outlast it), and the bound.
    const waited = /still so after (\d+) s of waiting \(--db-wait 3 s, CXR_DB_WAIT\): not starting/.exec(fatal.msg);
    assert.ok(waited && Number(waited[1]) >= 3, fatal.msg);
    assert.doesNotMatch(r.err, /\\n\s+at /, 'no stack trace');
  });

  test('--db-wait 0 gives up at the first failure; a bad value is refused', { timeout: 120_000 }, async () => {
    // Three servers of their own, started together: most of each one's time is its start.
    const [r, bad, badEnv] = await Promise.all([
      serveFor(['--db', `postgres://cxr@${HOST}/cxr`, '--db-wait', '0'], {}, 60_000),
      serveFor(['--db', `postgres://cxr@${HOST}/cxr`, '--db-wait', 'soon'], {}, 60_000),
      serveFor(['--db', `postgres://cxr@${HOST}/cxr`], { CXR_DB_WAIT: 'soon' }, 60_000),
    ]);
    assert.equal(r.code, 1, r.err);
    assert.match(r.lines.at(-1)!.msg, /still so after 0 s of waiting/);
    assert.equal(bad.code, 1, bad.err);
    assert.match(bad.err, /dbWait|db-wait/);
    assert.equal(badEnv.code, 1, badEnv.err);
    assert.match(badEnv.err, /from CXR_DB_WAIT/);
  });

  test('an empty CXR_DB_WAIT (a compose file\'s CXR_DB_WAIT: "") is unset: the default wait, not none', {
    timeout: 120_000,
  }, async () => {
    // Killed once it says it waits (a fixed 8 s was too short for a loaded machine's start): a server that gave up
    // at once exits 1 instead.
    const waiting = /waiting for the audit log before listening[^\n]*\n/;
    const r = await serveFor(['--db', `postgres://cxr@${HOST}/cxr`], { CXR_DB_WAIT: '' }, 60_000, waiting);
    assert.equal(r.code, null, `serve gave up at once (exit ${r.code}):\n${r.err}`);
    const waits = r.lines.filter((l) => /waiting for the audit log before listening/.test(l.msg));
    assert.match(waits[0]?.msg ?? r.err, new RegExp(`does not answer ${DEFAULT_DB_WAIT_S} s after start`));
  });
});

test('the default wait outlasts a database booting after the server, and is bounded', () => {
  assert.ok(DEFAULT_DB_WAIT_S >= 60 && DEFAULT_DB_WAIT_S <= 900, String(DEFAULT_DB_WAIT_S));
});
