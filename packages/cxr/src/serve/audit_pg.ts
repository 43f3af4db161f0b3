// The shared store: a PostgreSQL database (npm pg) that several servers and workers write to at
// once. A commit is durable when it returns (PostgreSQL's default synchronous_commit). The schema
// version is the highest row of audit_schema_migrations; openers migrate under an advisory lock,
// so two processes starting together apply each migration once.
import { Pool, type PoolClient } from 'pg';
import { MIGRATIONS, POSTGRES, SCHEMA_VERSION } from './audit_migrations';
import { bindNamed, paramNames, type SqlDriver, type SqlParams, type SqlStatement, SqlAuditStore } from './audit_sql';
import type { AuditOpenOptions } from './audit_store';
import { type AuditTarget, redactSecret } from './audit_target';

const VERSION_TABLE = 'audit_schema_migrations';
const LOCK_NAME = 'cxr audit log migrations';

/** @name → $n, the values in that order. */
function positional(sql: string, params: SqlParams): { text: string; values: unknown[] } {
  const names = paramNames(sql);
  const bound = bindNamed(sql, params);
  const text = sql.replace(/@([a-z_][a-z0-9_]*)/gi, (_m, n: string) => `$${names.indexOf(n) + 1}`);
  return { text, values: names.map((n) => bound[n]) };
}

class PostgresDriver implements SqlDriver {
  constructor(private readonly pool: Pool) {}

  async all<T>(sql: string, params: SqlParams = {}): Promise<T[]> {
    const { text, values } = positional(sql, params);
    return (await this.pool.query(text, values)).rows as T[];
  }

  async transaction(statements: SqlStatement[]): Promise<number[]> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const changes: number[] = [];
      for (const s of statements) {
        if (s.ifChanged && !changes[changes.length - 1]) {
          changes.push(0);
          continue;
        }
        const { text, values } = positional(s.sql, s.params);
        changes.push((await client.query(text, values)).rowCount ?? 0);
      }
      await client.query('COMMIT');
      return changes;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {
        broken = true; // the connection is unusable: drop it from the pool
      });
      throw e;
    } finally {
      client.release(broken);
    }
  }

  isUniqueViolation(e: unknown): boolean {
    return (e as { code?: unknown }).code === '23505';
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

async function schemaVersion(c: PoolClient): Promise<number | null> {
  const exists = await c.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [VERSION_TABLE]);
  if (!exists.rows[0].t) return null;
  const r = await c.query<{ v: number }>(
    `SELECT CAST(COALESCE(MAX(version), 0) AS INTEGER) AS v FROM ${VERSION_TABLE}`,
  );
  return r.rows[0].v;
}

async function migrate(c: PoolClient, display: string, opts: AuditOpenOptions): Promise<void> {
  const found = await schemaVersion(c);
  if (found === null && (opts.readonly || opts.mustExist))
    throw new Error(`${display}: no audit log in this database (run 'cxr serve --db' with it first)`);
  if (opts.readonly) {
    if (found! > SCHEMA_VERSION)
      throw new Error(`${display}: audit log schema v${found} is newer than this cxr (v${SCHEMA_VERSION})`);
    if (found! < SCHEMA_VERSION)
      throw new Error(`${display}: audit log schema v${found} is older; open it once with 'cxr serve' to migrate`);
    return;
  }
  if (found === SCHEMA_VERSION) return;
  // Session lock: other openers wait here, then see the version this one leaves.
  await c.query('SELECT pg_advisory_lock(hashtext($1))', [LOCK_NAME]);
  try {
    await c.query(
      `CREATE TABLE IF NOT EXISTS ${VERSION_TABLE} (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`,
    );
    const current = (await schemaVersion(c)) ?? 0;
    if (current > SCHEMA_VERSION) {
      throw new Error(
        `${display}: audit log schema v${current} is newer than this cxr understands (v${SCHEMA_VERSION})`,
      );
    }
    for (let v = current; v < SCHEMA_VERSION; v++) {
      await c.query('BEGIN');
      try {
        await c.query(MIGRATIONS[v](POSTGRES));
        await c.query(`INSERT INTO ${VERSION_TABLE} (version, applied_at) VALUES ($1, $2)`, [
          v + 1,
          new Date().toISOString(),
        ]);
        await c.query('COMMIT');
      } catch (e) {
        await c.query('ROLLBACK');
        throw e;
      }
    }
  } finally {
    await c.query('SELECT pg_advisory_unlock(hashtext($1))', [LOCK_NAME]);
  }
}

/** Connects (credentials from the URL, else PGPASSWORD / PGPASSFILE), migrates, and returns the store. */
export async function openPostgresStore(
  target: Extract<AuditTarget, { kind: 'postgres' }>,
  opts: AuditOpenOptions = {},
): Promise<SqlAuditStore> {
  const pool = new Pool({
    connectionString: target.url,
    max: target.poolSize,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    application_name: 'cxr',
  });
  // An idle connection the server dropped (restart, failover) must not crash the process: the
  // next query opens a new one, and fails with a real error if the server is still gone.
  pool.on('error', () => {});
  let client: PoolClient | null = null;
  try {
    client = await pool.connect();
    await migrate(client, target.display, opts);
  } catch (e) {
    client?.release(true);
    client = null;
    await pool.end().catch(() => {});
    const why = redactSecret(e instanceof Error ? e.message : String(e), target.password);
    throw new Error(why.startsWith(target.display) ? why : `audit log ${target.display}: ${why}`);
  } finally {
    client?.release();
  }
  return new SqlAuditStore(new PostgresDriver(pool), 'postgres', target.display);
}
