// `cxr history` and `cxr history prune` never migrate the audit log. Run against a shared log during a rolling
// upgrade, a migration would stop every older server still writing it (their next write finds a newer schema and
// they answer 503 until restarted). So an older log is listed as it is when this cxr can read it, refused saying
// what to do when it cannot, and prune (a writer) refuses any older log: the servers are upgraded first, and
// `cxr serve` migrates. The writers that do migrate (serve, predict --db, orthanc sync: openAuditStoreForWriting)
// still do, as docs/deployment.md says.
import { after, mock, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Command } from 'commander';
import { register } from '../src/cli/history';
import { openAuditStoreForWriting } from '../src/cli/writable';
import { openAuditStore, SCHEMA_VERSION } from '../src/serve/audit';
import { type AuditBackend, postgresBackend, sqliteBackend } from './audit-backends';
import { auditRecord } from './serve-fixtures';

const backends = [sqliteBackend(), postgresBackend()];
after(() => {
  for (const b of backends) b.done();
});

/** `cxr history ARGS`: what it printed. */
async function history(...args: string[]): Promise<string> {
  const program = new Command('cxr').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  register(program);
  let out = '';
  const write = mock.method(process.stdout, 'write', (chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    await program.parseAsync(['history', ...args], { from: 'user' });
  } finally {
    write.mock.restore();
  }
  return out;
}

/** The log as a cxr of schema `v` (4 or 3 here) would have it: v5's index and table gone, the version set back. */
async function setBack(b: AuditBackend, target: string, v: number): Promise<void> {
  await b.raw(target, 'DROP INDEX IF EXISTS predictions_requested_by');
  await b.raw(target, 'DROP TABLE IF EXISTS audit_probe');
  if (b.name === 'sqlite') await b.setVersion(target, v);
  else {
    await b.raw(target, 'DELETE FROM audit_schema_migrations WHERE version > $1', [v]);
    await b.raw(
      target,
      'INSERT INTO audit_schema_migrations SELECT g, $2 FROM generate_series(1, $1) g ON CONFLICT DO NOTHING',
      [v, 'then'],
    );
  }
}

const PRUNE_REFUSED = new RegExp(
  `audit log schema v4 is older than this cxr writes \\(v${SCHEMA_VERSION}\\) and 'cxr history prune' never ` +
    'migrates it .*upgrade the servers first: cxr serve migrates$',
);

for (const b of backends) {
  test(`${b.name}: history lists an older log as it is, prune refuses it, and neither migrates it`, {
    skip: b.skip,
  }, async () => {
    assert.equal(SCHEMA_VERSION, 5, 'this test sets a log back to the schema before v5');
    const target = await b.fresh();
    const store = await openAuditStore(target);
    await store.insert(auditRecord(1, { requestedBy: 'ward', hasHeatmap: true }), { heatmapPng: Buffer.from('png') });
    await store.close();
    await setBack(b, target, 4);

    const listed = (await history('--db', target, '--json')).trim().split('\n');
    assert.deepEqual(
      listed.map((l) => JSON.parse(l).id),
      [auditRecord(1).id],
    );
    assert.equal(await b.version(target), 4, 'cxr history migrated the log');

    await assert.rejects(history('prune', '--db', target, '--before', '2030-01-01'), PRUNE_REFUSED);
    assert.equal(await b.version(target), 4, 'cxr history prune migrated the log');
    assert.equal((await b.raw(target, 'SELECT prediction_id FROM prediction_images')).length, 1, 'images pruned');

    // A log older than this cxr reads (before schema v4's verdict columns) is refused with the same advice.
    await setBack(b, target, 3);
    await assert.rejects(
      history('--db', target),
      new RegExp(
        "audit log schema v3 is older than this cxr reads \\(v4 or later\\) and 'cxr history' never migrates it " +
          '.*upgrade the servers first: cxr serve migrates$',
      ),
    );
    assert.equal(await b.version(target), 3);

    // A writer migrates it (cxr serve, and cxr predict --db and cxr orthanc sync, which open the log as it does);
    // then prune runs.
    await setBack(b, target, 4);
    await (await openAuditStoreForWriting(target)).close();
    assert.equal(await b.version(target), SCHEMA_VERSION);
    assert.match(
      await history('prune', '--db', target, '--before', '2030-01-01'),
      /removed the images of 1 prediction/,
    );
  });
}
