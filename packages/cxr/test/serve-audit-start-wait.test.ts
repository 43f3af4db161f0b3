// `cxr serve --db postgres://` started while PostgreSQL is down (a power cut after which the database boots
// last): the server waits for it, one clear line per try (the URL's password hidden, no stack trace), and
// listens once it answers; SIGTERM while it waits exits cleanly. A log no wait mends (a wrong password) still
// stops it at once, exit 1, with a clear message. PostgreSQL from scripts/stack.sh.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CLI, envWithoutTokens, makeTinyModel, tempDir } from './serve-fixtures';
import { postgresUnavailable, type Stack, stackCmd, startStack, stopStack } from './stack-fixture';

let stack: Stack | undefined;
let pgSkip: string | false = postgresUnavailable() ?? false;
if (!pgSkip) {
  try {
    stack = startStack('audit-start-wait', ['postgresql']);
  } catch (e) {
    pgSkip = `PostgreSQL did not start: ${(e as Error).message.slice(0, 2000)}`;
  }
}
if (pgSkip) console.log(`# PostgreSQL start-up tests skipped: ${pgSkip}`);
const url = stack?.env.CXR_DB ?? '';
const password = url ? decodeURIComponent(new URL(url).password) : '';

let dir = '';

before(async () => {
  dir = tempDir('audit-start-wait');
  await makeTinyModel(path.join(dir, 'model'));
});

after(() => {
  stopStack(stack);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function pg(cmd: 'down' | 'up'): void {
  const r = stackCmd(stack!.dir, cmd, ['postgresql']);
  assert.equal(r.code, 0, `stack.sh ${cmd} postgresql:\n${r.stdout}\n${r.stderr}`);
  if (cmd === 'up') assert.ok(fs.readFileSync(path.join(stack!.dir, 'env'), 'utf8').includes(`CXR_DB=${url}\n`));
}

interface Serve {
  proc: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
  /** Resolves once the log matches `re` (rejects past `ms`, or if the server exits first). */
  until(re: RegExp, ms: number): Promise<RegExpExecArray>;
}

function serve(db: string): Serve {
  const proc = spawn(
    process.execPath,
    [CLI, 'serve', '--host', '127.0.0.1', '--port', '0', '--quiet', '--model', path.join(dir, 'model'), '--db', db],
    { env: envWithoutTokens(), stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  proc.stderr!.on('data', (b: Buffer) => {
    err += b.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const until = async (re: RegExp, ms: number): Promise<RegExpExecArray> => {
    const end = Date.now() + ms;
    for (;;) {
      const m = re.exec(err);
      if (m) return m;
      if (proc.exitCode !== null || proc.signalCode !== null)
        throw new Error(`the server exited (${proc.exitCode}) before ${re}:\n${err}`);
      if (Date.now() > end) throw new Error(`not seen within ${ms} ms: ${re}\n${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  return { proc, log: () => err, exited, until };
}

/** One JSON log line each, with no stack trace and no password. */
function checkLines(text: string): Record<string, unknown>[] {
  const lines = text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.doesNotMatch(text, /\\n\s+at /, 'no stack trace');
  if (password) assert.ok(!text.includes(password), 'the password is not logged');
  return lines;
}

const WAITING = /waiting for the audit log before listening \(try (\d+); next in (\d+) s\)/;

test('PostgreSQL down when cxr serve starts: it waits, one line per try, and listens once PostgreSQL is up', {
  skip: pgSkip,
  timeout: 300_000,
}, async () => {
  pg('down');
  const s = serve(url);
  try {
    await s.until(/try 3;/, 120_000);
    pg('up');
    const m = await s.until(/listening on (http:\/\/[^\s"]+)/, 60_000);
    const health = await fetch(`${m[1]}/api/v1/health`);
    assert.equal(health.status, 200, await health.clone().text());
    const lines = checkLines(s.log());
    const waits = lines.filter((l) => WAITING.test(String(l.msg)));
    assert.ok(waits.length >= 3, s.log());
    for (const [i, w] of waits.entries()) {
      assert.equal(w.level, 'warn');
      assert.equal(w.attempt, i + 1);
      // 1, 2, 4, ... s: the wait doubles (to 30 s at most).
      assert.equal(w.retryInSeconds, Math.min(30, 2 ** i));
      assert.match(String(w.msg), /^audit log postgres:\/\/cxr:\*\*\*\*\*@127\.0\.0\.1:\d+\/cxr: .*ECONNREFUSED/);
    }
    assert.ok(lines.some((l) => /the audit log answers: starting/.test(String(l.msg))));
    assert.ok(!lines.some((l) => l.level === 'fatal' || l.level === 'error'), s.log());
  } finally {
    s.proc.kill('SIGTERM');
    await s.exited;
  }
});

test('SIGTERM while cxr serve waits for PostgreSQL: it exits cleanly (0) at once', {
  skip: pgSkip,
  timeout: 300_000,
}, async () => {
  pg('down');
  const s = serve(url);
  try {
    await s.until(/try 2;/, 120_000);
    const t0 = Date.now();
    s.proc.kill('SIGTERM');
    assert.equal(await s.exited, 0, s.log());
    assert.ok(Date.now() - t0 < 5_000, `exited in ${Date.now() - t0} ms`);
    checkLines(s.log());
    assert.match(s.log(), /SIGTERM before the server was listening: exiting/);
  } finally {
    s.proc.kill('SIGKILL');
    pg('up');
  }
});

test('a wrong password: cxr serve exits 1 at once with a clear message, no waiting and no stack trace', {
  skip: pgSkip,
  timeout: 300_000,
}, async () => {
  const wrong = new URL(url);
  wrong.password = 'not-the-password';
  const s = serve(wrong.toString());
  const code = await s.exited;
  assert.equal(code, 1, s.log());
  const lines = checkLines(s.log());
  assert.ok(!s.log().includes('not-the-password'), 'the wrong password is not logged either');
  assert.doesNotMatch(s.log(), /waiting for the audit log/);
  const fatal = lines.find((l) => l.level === 'fatal');
  assert.ok(fatal, s.log());
  assert.match(
    String(fatal.msg),
    /^audit log postgres:\/\/cxr:\*\*\*\*\*@127\.0\.0\.1:\d+\/cxr: .*password authentication/,
  );
  assert.match(String(fatal.msg), /: not starting$/);
  assert.equal(fatal.err, undefined, 'no error object (stack) in the line');
});
