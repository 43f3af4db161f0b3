// A token limited to `predict` reads only its own predictions: every page of its history filters on requested_by,
// newest first. Schema v5's index (requested_by, seq) answers both the filter and the order, so such a page reads
// its own rows rather than the whole log. The plans are those of the very statements list() runs (recorded from a
// SqlAuditStore), asked of each database (EXPLAIN QUERY PLAN in SQLite, EXPLAIN in PostgreSQL) on a log of
// 20,000 rows by 50 tokens.
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { Client } from 'pg';
import { openAuditStore } from '../src/serve/audit';
import { bindNamed, paramNames, type SqlParams, SqlAuditStore } from '../src/serve/audit_sql';
import { type AuditBackend, postgresBackend, sqliteBackend } from './audit-backends';
import { auditRecord } from './serve-fixtures';

const backends = [sqliteBackend(), postgresBackend()];
after(() => {
  for (const b of backends) b.done();
});

const ROWS = 20_000;
const TOKENS = 50;

/** The statements list(filter) runs, as SQL with @names and their values (nothing is asked of any log). */
async function listStatements(kind: 'sqlite' | 'postgres'): Promise<{ sql: string; params: SqlParams }[]> {
  const seen: { sql: string; params: SqlParams }[] = [];
  const recorder = {
    all: async <T>(sql: string, params: SqlParams = {}) => {
      seen.push({ sql, params });
      return (sql.includes('COUNT(*)') ? [{ n: 0 }] : []) as T[];
    },
    transaction: async () => [],
    isUniqueViolation: () => false,
    unavailable: () => null,
    close: async () => true,
  };
  await new SqlAuditStore(recorder, kind, 'recorder').list({ requestedBy: 'token-7' });
  assert.equal(seen.length, 2, 'list() counts, then reads a page');
  return seen;
}

/** One logged row copied ROWS times, requested by TOKENS different tokens; then the planner's statistics. */
async function fill(b: AuditBackend, target: string): Promise<void> {
  const store = await openAuditStore(target);
  await store.insert(auditRecord(1), null);
  await store.close();
  const keep = (await b.columns(target)).filter((c) => !['seq', 'id', 'requested_by'].includes(c));
  const cols = `id, requested_by, ${keep.join(', ')}`;
  const picked = `p.id || '-' || g.n, 'token-' || (g.n % ${TOKENS}), ${keep.map((c) => `p.${c}`).join(', ')}`;
  if (b.name === 'sqlite') {
    await b.raw(
      target,
      `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ${ROWS})
       INSERT INTO predictions (${cols}) SELECT ${picked} FROM predictions p, g`,
    );
  } else {
    await b.raw(
      target,
      `INSERT INTO predictions (${cols}) SELECT ${picked} FROM predictions p, generate_series(1, ${ROWS}) AS g(n)`,
    );
  }
  await b.raw(target, 'ANALYZE');
}

/** The plan of each statement, one text per statement. */
async function plans(b: AuditBackend, target: string): Promise<string[]> {
  const statements = await listStatements(b.name);
  if (b.name === 'sqlite') {
    const db = new Database(target, { readonly: true });
    try {
      return statements.map(({ sql, params }) =>
        (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(bindNamed(sql, params)) as { detail: string }[])
          .map((r) => r.detail)
          .join('\n'),
      );
    } finally {
      db.close();
    }
  }
  const c = new Client({ connectionString: target });
  await c.connect();
  try {
    const out: string[] = [];
    for (const { sql, params } of statements) {
      const names = paramNames(sql);
      const text = sql.replace(/@([a-z_][a-z0-9_]*)/gi, (_m, n: string) => `$${names.indexOf(n) + 1}`);
      const rows = (
        await c.query(
          `EXPLAIN ${text}`,
          names.map((n) => bindNamed(sql, params)[n]),
        )
      ).rows;
      out.push(rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n'));
    }
    return out;
  } finally {
    await c.end();
  }
}

for (const b of backends) {
  test(`${b.name}: a token's own history is read through the index on (requested_by, seq)`, {
    skip: b.skip,
  }, async () => {
    const target = await b.fresh();
    await fill(b, target);
    const [count, page] = await plans(b, target);
    for (const plan of [count, page]) assert.match(plan, /predictions_requested_by/, plan);
    // The page's order comes from the index too: no sort of the token's rows (SQLite names the one it would make).
    if (b.name === 'sqlite') assert.doesNotMatch(page, /TEMP B-TREE/, page);
    else assert.doesNotMatch(page, /Sort/, page);
    // And the answer is the token's own rows, newest first.
    const store = await openAuditStore(target, { readonly: true });
    try {
      const got = await store.list({ requestedBy: 'token-7', limit: 5 });
      assert.equal(got.total, ROWS / TOKENS);
      assert.ok(got.items.every((r) => r.requestedBy === 'token-7'));
      assert.equal(got.items[0].id, `${auditRecord(1).id}-${ROWS - (TOKENS - 7)}`);
    } finally {
      await store.close();
    }
  });
}
