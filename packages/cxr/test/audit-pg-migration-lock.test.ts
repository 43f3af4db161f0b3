// PostgreSQL: an older process writing a shared log while a newer cxr migrates it. Its write reads the schema version
// after its rows, in their transaction, and rolls them back when it is newer; that holds only when the migration and
// the write wait for each other. So each migration's transaction first locks both tables against writes: a backfill
// UPDATE takes only row locks, and an older row inserted beside it would commit without the backfill. The probes
// hold a newer cxr's migration open on their own connection while the older store writes, then commit it.
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Client } from 'pg';
import { openAuditStore, SCHEMA_VERSION } from '../src/serve/audit';
import { AuditUnavailableError } from '../src/serve/audit_store';
import { postgresBackend } from './audit-backends';
import { auditRecord } from './serve-fixtures';

const b = postgresBackend();
after(() => b.done());

async function connect(target: string): Promise<Client> {
  const c = new Client({ connectionString: target });
  await c.connect();
  return c;
}

/** Resolves once some connection waits for a `mode` lock on `table`; fails after 5 s. */
async function waitsFor(target: string, table: string, mode: string): Promise<void> {
  const c = await connect(target);
  try {
    for (const end = Date.now() + 5_000; Date.now() < end; ) {
      const { rows } = await c.query(
        `SELECT 1 FROM pg_locks l JOIN pg_class t ON t.oid = l.relation
          WHERE NOT l.granted AND t.relname = $1 AND l.mode = $2`,
        [table, mode],
      );
      if (rows.length) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`no connection waited for a ${mode} on ${table}`);
  } finally {
    await c.end();
  }
}

// What a newer cxr's migration does before it commits: a backfill (under the lock every migration now takes first),
// and an ALTER TABLE (which locks the table by itself).
const PROBES = [
  {
    name: 'a backfill UPDATE',
    sql: [
      'LOCK TABLE predictions, prediction_images IN SHARE ROW EXCLUSIVE MODE',
      "UPDATE predictions SET verdict_status = 'assessed' WHERE verdict_status IS NULL",
    ],
    // A row without the backfill is one the migration did not reach.
    unmigrated: 'SELECT id FROM predictions WHERE verdict_status IS NULL',
  },
  {
    name: 'an ALTER TABLE',
    sql: ["ALTER TABLE predictions ADD COLUMN reviewed_by TEXT NOT NULL DEFAULT 'nobody'"],
    unmigrated: `SELECT id FROM predictions WHERE id <> '${auditRecord(1).id}'`,
  },
];

for (const probe of PROBES) {
  test(`a write racing ${probe.name} of a newer cxr is refused, and leaves no un-migrated row`, {
    skip: b.skip,
  }, async () => {
    const target = await b.fresh();
    const store = await openAuditStore(target);
    const newer = await connect(target);
    try {
      await store.insert(auditRecord(1), null);
      await newer.query('BEGIN');
      for (const sql of probe.sql) await newer.query(sql);
      await newer.query('INSERT INTO audit_schema_migrations VALUES ($1, $2)', [
        SCHEMA_VERSION + 1,
        new Date().toISOString(),
      ]);
      // The older process writes while the migration is open: its INSERT waits for the migration's lock. A version
      // read before its rows would see the old version (the migration has not committed) and let the row through.
      const written = store.insert(auditRecord(2), { heatmapPng: Buffer.from('png') }).then(
        () => null,
        (e: unknown) => e,
      );
      await waitsFor(target, 'predictions', 'RowExclusiveLock');
      await newer.query('COMMIT');
      const e = await written;
      assert.ok(e instanceof AuditUnavailableError, `the write went through: ${String(e)}`);
      assert.match(e.message, /was migrated to schema v\d+ by a newer cxr while this process/);
      assert.deepEqual(await b.raw(target, probe.unmigrated), [], 'a row was committed beside the migration');
      assert.deepEqual(await b.raw(target, 'SELECT prediction_id FROM prediction_images'), []);
    } finally {
      await newer.end();
      await store.close();
    }
  });
}

test("cxr's own migration waits for a write in flight on either table before it changes anything", {
  skip: b.skip,
}, async () => {
  const target = await b.fresh();
  const store = await openAuditStore(target);
  await store.insert(auditRecord(1), null);
  await store.close();
  // The log as the previous cxr left it: before schema v5's index and probe table.
  await b.raw(target, 'DROP INDEX predictions_requested_by');
  await b.raw(target, 'DROP TABLE audit_probe');
  await b.raw(target, 'DELETE FROM audit_schema_migrations WHERE version = $1', [SCHEMA_VERSION]);
  // An older process's write in flight that touches only prediction_images so far (its images, or a prune's
  // DELETE): it holds no lock a CREATE INDEX on predictions waits for; the migration must wait all the same.
  const older = await connect(target);
  try {
    await older.query('BEGIN');
    await older.query('INSERT INTO prediction_images (prediction_id, heatmap_png) VALUES ($1, $2)', [
      auditRecord(1).id,
      Buffer.from('png'),
    ]);
    let opened = false;
    const opening = openAuditStore(target).then((s) => {
      opened = true;
      return s;
    });
    await waitsFor(target, 'prediction_images', 'ShareRowExclusiveLock');
    assert.equal(opened, false);
    assert.equal(await b.version(target), SCHEMA_VERSION - 1, 'migrated before the write in flight ended');
    await older.query('COMMIT');
    await (await opening).close();
    assert.equal(await b.version(target), SCHEMA_VERSION);
  } finally {
    await older.end();
  }
});
