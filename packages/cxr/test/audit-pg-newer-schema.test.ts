// The PostgreSQL audit store refuses a log a newer cxr has migrated (a downgrade, or an old server started after
// the upgrade), as the SQLite one does, and writes nothing to it: an older cxr must not add rows without the
// newer columns, nor a version row of its own. The refusal is a fault to fix, not an outage to wait out.
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { openAuditStore, SCHEMA_VERSION } from '../src/serve/audit';
import { AuditStoreOpenError } from '../src/serve/audit_store';
import { postgresBackend } from './audit-backends';
import { auditRecord } from './serve-fixtures';

const pg = postgresBackend();
after(() => pg.done());

/** Everything an opener could write: the version rows, the tables and their columns, the predictions. */
async function snapshot(target: string): Promise<unknown> {
  return {
    versions: await pg.raw(target, 'SELECT version, applied_at FROM audit_schema_migrations ORDER BY version'),
    columns: await pg.raw(
      target,
      "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' " +
        'ORDER BY table_name, column_name',
    ),
    predictions: await pg.raw(target, 'SELECT id, created_at FROM predictions ORDER BY id'),
  };
}

test('a log migrated by a newer cxr is refused, read-write and read-only, and left as it was', {
  skip: pg.skip,
}, async () => {
  const target = await pg.fresh();
  const store = await openAuditStore(target);
  await store.insert(auditRecord(1), null);
  await store.close();
  // What a newer cxr's next migration might do: a column this one does not know, and its version row.
  await pg.raw(target, 'ALTER TABLE predictions ADD COLUMN reviewed_by TEXT');
  await pg.setVersion(target, SCHEMA_VERSION + 1);
  const before = await snapshot(target);

  for (const readonly of [false, true]) {
    const refusal = await openAuditStore(target, { readonly }).then(
      async (s) => {
        await s.close();
        return null;
      },
      (e: unknown) => e,
    );
    assert.ok(refusal instanceof AuditStoreOpenError, `readonly ${readonly}: opened, or ${String(refusal)}`);
    assert.match(
      refusal.message,
      new RegExp(
        `^postgres://\\S+: audit log schema v${SCHEMA_VERSION + 1} is newer than this cxr \\(v${SCHEMA_VERSION}\\): ` +
          'a newer cxr has migrated it; run that version, or restore the copy of the log taken before the upgrade$',
      ),
    );
    assert.equal(refusal.away, false, 'a newer schema is not an outage that waiting fixes');
    assert.deepEqual(await snapshot(target), before, `readonly ${readonly}: the log was written to`);
  }
});
