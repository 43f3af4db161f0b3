// The write check of a server in a write outage (AuditGuard.writesRefused, read by /health) on an SQLite audit log
// that another program holds a write lock on: the probe write fails SQLITE_BUSY. It was taken for a probe refused
// for want of rights: logged as an error ("grant the role INSERT and UPDATE on audit_probe") and the write outage
// dropped, so /health answered 200 while every prediction was still refused. A busy log is no outage and no answer:
// the state stays as it was, one info line says so, and the next probe once the lock is gone decides.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from '../src/log';
import { openAuditStore } from '../src/serve/audit';
import { AuditGuard, WRITE_PROBE_MS } from '../src/serve/audit_guard';
import { AuditUnavailableError } from '../src/serve/audit_store';
import { tempDir } from './serve-fixtures';

const dir = tempDir('ops-s31-busy');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('a probe write refused SQLITE_BUSY keeps /health as it was, logs no error, and the next probe decides', {
  timeout: 60_000,
}, async () => {
  const file = path.join(dir, 'audit.db');
  const store = await openAuditStore(file, { busyTimeoutMs: 50 });
  const lines: { level: string; msg: string }[] = [];
  const at = (level: string) => (_o: unknown, msg: string) => lines.push({ level, msg });
  const log = { warn: at('warn'), info: at('info'), error: at('error') } as unknown as Logger;
  const guard = new AuditGuard(store, log, 2_000);
  // A write outage as a prediction's failed row starts it (the disk full).
  const full = () => Promise.reject(new AuditUnavailableError(file, 'cannot be used: disk full (SQLITE_FULL)'));
  await assert.rejects(guard.use(full, 'nothing was predicted', true), AuditUnavailableError);
  assert.equal(guard.down?.writes, true);

  // Another program's write transaction holds the lock past the store's busy wait.
  const other = new Database(file);
  other.exec('BEGIN IMMEDIATE');
  try {
    assert.equal(await guard.writesRefused(), true, 'a busy log is not a log that takes writes again');
    assert.equal(guard.down?.writes, true);
    assert.deepEqual(
      lines.filter((l) => l.level === 'error').map((l) => l.msg),
      [],
      'a busy database is not an error',
    );
    const said = lines.filter((l) => /locked by another program's write/.test(l.msg));
    assert.equal(said.length, 1, JSON.stringify(lines));
    assert.equal(said[0].level, 'info');
    // Still locked at the next probe: not said again.
    await new Promise((r) => setTimeout(r, WRITE_PROBE_MS + 100));
    assert.equal(await guard.writesRefused(), true);
    assert.equal(lines.filter((l) => /locked by another program's write/.test(l.msg)).length, 1);
  } finally {
    other.exec('ROLLBACK');
    other.close();
  }
  // The lock gone, the next probe's write succeeds and ends the outage.
  await new Promise((r) => setTimeout(r, WRITE_PROBE_MS + 100));
  assert.equal(await guard.writesRefused(), false);
  assert.equal(guard.down, null);
  assert.deepEqual(
    lines.filter((l) => l.level === 'error'),
    [],
  );
  await store.close(1_000);
});
