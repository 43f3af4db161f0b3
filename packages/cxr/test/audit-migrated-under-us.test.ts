// A process that opened the audit log before a newer cxr migrated it (a rolling upgrade of a shared PostgreSQL
// log, or a second program on the same SQLite file) notices at its next write and writes nothing more: the row
// it was writing is rolled back, not left without the newer columns, and the server answers 503 from then on
// (ping fails too, so /health says so and predictions are refused before any model time is spent).
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { silentLogger } from '../src/log';
import { openAuditStore, SCHEMA_VERSION } from '../src/serve/audit';
import { AuditGuard } from '../src/serve/audit_guard';
import { AuditUnavailableError } from '../src/serve/audit_store';
import { postgresBackend, sqliteBackend } from './audit-backends';
import { auditRecord } from './serve-fixtures';

const backends = [sqliteBackend(), postgresBackend()];
after(() => {
  for (const b of backends) b.done();
});

const MIGRATED = new RegExp(
  `was migrated to schema v${SCHEMA_VERSION + 1} by a newer cxr while this process \\(schema v${SCHEMA_VERSION}\\) ` +
    'ran: it writes nothing more to it .*restart it with the newer cxr',
);

for (const b of backends) {
  test(`${b.name}: a log migrated while this process has it open takes no more rows from it`, {
    skip: b.skip,
  }, async () => {
    const target = await b.fresh();
    const store = await openAuditStore(target);
    try {
      await store.insert(auditRecord(1), null);
      // What a newer cxr's next migration does, on its own connection, while this store stays open.
      await b.raw(target, 'ALTER TABLE predictions ADD COLUMN reviewed_by TEXT');
      await b.setVersion(target, SCHEMA_VERSION + 1);

      const refused = (p: Promise<unknown>) =>
        p.then(
          () => assert.fail('written to a log a newer cxr has migrated'),
          (e: unknown) => {
            assert.ok(e instanceof AuditUnavailableError, String(e));
            assert.match(e.message, MIGRATED);
            return e;
          },
        );
      await refused(store.insert(auditRecord(2), { heatmapPng: Buffer.from('png') }));
      await refused(store.insertOnce(auditRecord(3), null, 'sha256:key'));
      await refused(store.pruneImages(new Date().toISOString()));
      await refused(store.ping());
      const ids = (await b.raw(target, 'SELECT id FROM predictions ORDER BY id')).map((r) => r.id);
      assert.deepEqual(ids, [auditRecord(1).id], 'a row was written without the newer column');
      assert.deepEqual(await b.raw(target, 'SELECT prediction_id FROM prediction_images'), []);
      // Reads still answer: the history of a server waiting to be restarted stays readable.
      assert.equal((await store.get(auditRecord(1).id))?.id, auditRecord(1).id);

      // A server's guard reads it as an outage: 503 AUDIT_UNAVAILABLE, and /health's probe fails too.
      const guard = new AuditGuard(store, silentLogger());
      const e = await refused(guard.insert(auditRecord(4), null, 'nothing was predicted'));
      assert.match((e as AuditUnavailableError).publicMessage, /^the audit log was migrated to schema v\d+ by a newer/);
      assert.ok(guard.down?.writes, 'the guard records no write outage');
      await refused(guard.ensure('nothing was predicted'));
    } finally {
      await store.close();
    }
  });
}
