// Closing the audit log while PostgreSQL is hung (postmaster and backends SIGSTOPped, as in a network partition:
// the kernel still holds the connections, nothing answers). QA: `cxr worker` and `cxr orthanc sync` logged that
// they stopped, then ran on until PostgreSQL resumed, whatever --close-timeout said, and `cxr serve` with a
// timed-out write still pending blamed "requests still running" after 30 s. The pool's end() resolved while the
// sockets still waited for the server's goodbye (or waited on the pending query itself). Now close() is bounded:
// past it the connections are cut, it throws AuditCloseError naming the log, and the process can exit.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { type AuditRecord, openAuditStore } from '../src/serve/audit';
import { AuditCloseError } from '../src/serve/audit_store';
import { auditRecord, NORMAL_ANSWER } from './serve-fixtures';
import { postgresUnavailable, type Stack, startStack, stopStack } from './stack-fixture';

let stack: Stack | undefined;
let skip: string | false = postgresUnavailable() ?? false;
if (!skip) {
  try {
    stack = startStack('close-hung', ['postgresql']);
  } catch (e) {
    skip = `PostgreSQL did not start: ${(e as Error).message.slice(0, 2000)}`;
  }
}
after(() => stopStack(stack));

const makeRecord = (): AuditRecord =>
  auditRecord(0, { ...NORMAL_ANSWER, id: randomUUID(), createdAt: new Date().toISOString() });

/** The postmaster and its backends, as the QA froze them. */
function postgresPids(): number[] {
  const pid = Number(
    fs.readFileSync(path.join(stack!.dir, 'postgresql', 'data', 'postmaster.pid'), 'utf8').split('\n')[0],
  );
  const children = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean);
  return [pid, ...children.map(Number)];
}

/** Runs `body` with PostgreSQL hung; it always resumes after. */
async function whileHung<T>(body: () => Promise<T>): Promise<T> {
  const pids = postgresPids();
  for (const p of pids) process.kill(p, 'SIGSTOP');
  try {
    return await body();
  } finally {
    for (const p of pids) process.kill(p, 'SIGCONT');
  }
}

test('close() of a log whose database is hung gives up within its bound, naming the log', {
  skip,
  timeout: 30_000,
}, async () => {
  const store = await openAuditStore(stack!.env.CXR_DB);
  await store.insert(makeRecord(), null); // live connections in the pool, as a server has
  await whileHung(async () => {
    const t0 = Date.now();
    await assert.rejects(store.close(1_500), (e: unknown) => {
      assert.ok(e instanceof AuditCloseError, String(e));
      assert.match(e.message, /^the audit log \(postgres.*\) did not close within 1500 ms/);
      assert.doesNotMatch(e.message, new RegExp(new URL(stack!.env.CXR_DB).password));
      return true;
    });
    const took = Date.now() - t0;
    assert.ok(took < 4_000, `close took ${took} ms`);
  });
});

test('a write still pending on the hung database is cut at close, and never committed', {
  skip,
  timeout: 30_000,
}, async () => {
  const store = await openAuditStore(stack!.env.CXR_DB);
  const before = await store.count();
  const pending = await whileHung(async () => {
    const write = store.insert(makeRecord(), null);
    const outcome = write.then(
      () => 'committed',
      (e: unknown) => `failed: ${(e as Error).message}`,
    );
    await new Promise((r) => setTimeout(r, 500)); // the write is on the wire
    const t0 = Date.now();
    await assert.rejects(store.close(1_000), AuditCloseError);
    assert.ok(Date.now() - t0 < 3_500, `close took ${Date.now() - t0} ms`);
    return outcome;
  });
  assert.match(await pending, /^failed: /);
  const again = await openAuditStore(stack!.env.CXR_DB);
  try {
    assert.equal(await again.count(), before);
  } finally {
    await again.close();
  }
});

test('a process that closes its log while the database is hung exits within the bound', {
  skip,
  timeout: 30_000,
}, async () => {
  // As `cxr orthanc sync` ends: no process.exit, so a socket still open would keep it running. Its poll's timer
  // (here an interval) holds the process until the signal: the pool's idle connections do not (allowExitOnIdle).
  const audit = JSON.stringify(path.join(__dirname, '..', 'src', 'serve', 'audit.js'));
  const script =
    `const { openAuditStore } = require(${audit});` +
    '(async () => { const s = await openAuditStore(process.env.CXR_DB); await s.count();' +
    ' const poll = setInterval(() => {}, 60_000);' +
    ' process.stdout.write("open\\n"); await new Promise((r) => process.once("SIGTERM", r)); clearInterval(poll);' +
    ' try { await s.close(1000); console.log("closed"); }' +
    ' catch (e) { console.log(e.message); process.exitCode = 1; } })();';
  const child = spawn(process.execPath, ['-e', script], {
    env: { ...process.env, CXR_DB: stack!.env.CXR_DB },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  while (!out.includes('open')) await new Promise((r) => setTimeout(r, 50));
  const result = await whileHung(async () => {
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    child.kill('SIGTERM');
    const timer = new Promise<'running'>((r) => setTimeout(() => r('running'), 6_000));
    const code = await Promise.race([exited, timer]);
    if (code === 'running') child.kill('SIGKILL');
    return { code, took: Date.now() - t0 };
  });
  assert.equal(result.code, 1, `still running 6 s after SIGTERM: ${out}`);
  assert.match(out, /did not close within 1000 ms/);
  assert.ok(result.took < 5_000, `exited after ${result.took} ms`);
});

test('with the database answering, close() is prompt', { skip, timeout: 30_000 }, async () => {
  const store = await openAuditStore(stack!.env.CXR_DB);
  await store.count();
  const t0 = Date.now();
  await store.close(5_000);
  assert.ok(Date.now() - t0 < 2_000);
});
