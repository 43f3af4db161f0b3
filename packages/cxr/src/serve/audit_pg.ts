// The shared store: a PostgreSQL database (npm pg) that several servers and workers write to at
// once. A commit is durable when it returns (PostgreSQL's default synchronous_commit). The schema
// version is the highest row of audit_schema_migrations; openers migrate under an advisory lock,
// so two processes starting together apply each migration once.
import { Client, type ClientConfig, Pool, type PoolClient } from 'pg';
import { settlesWithin } from '../deadline';
import {
  checkUnmigratedVersion,
  checkWriteVersion,
  MIGRATIONS,
  newerSchemaError,
  POSTGRES,
  SCHEMA_VERSION,
} from './audit_migrations';
import { bindNamed, paramNames, type SqlDriver, type SqlParams, type SqlStatement, SqlAuditStore } from './audit_sql';
import { type AuditOpenOptions, AuditStoreOpenError } from './audit_store';
import { type AuditTarget, redactSecret } from './audit_target';
import { pgPasswordLookup } from './audit_pg_password';
import { NETWORK_ERROR_CODES } from '../network_errors';

const VERSION_TABLE = 'audit_schema_migrations';
const LOCK_NAME = 'cxr audit log migrations';
const VERSION_SQL = `SELECT CAST(COALESCE(MAX(version), 0) AS INTEGER) AS v FROM ${VERSION_TABLE}`;

/** @name → $n, the values in that order. */
function positional(sql: string, params: SqlParams): { text: string; values: unknown[] } {
  const names = paramNames(sql);
  const bound = bindNamed(sql, params);
  const text = sql.replace(/@([a-z_][a-z0-9_]*)/gi, (_m, n: string) => `$${names.indexOf(n) + 1}`);
  return { text, values: names.map((n) => bound[n]) };
}

// What says the server is away rather than that cxr asked something wrong. Node's socket errors
// (NETWORK_ERROR_CODES); SQLSTATE classes 08 (connection exception), 53 (insufficient resources: 53300
// too many connections, 53100 disk full), 57 (operator intervention: 57P01 admin shutdown, 57P03 cannot
// connect now) and 28 (the login refused, e.g. a password changed under a running server); 25006 is a
// standby after a failover refusing writes. Everything else (42xxx syntax, 23xxx constraints, ...) is a
// bug: a 500.
const OUTAGE_SQLSTATE = /^(08|53|57|28)|^25006$/;
// The driver's own errors for a connection that failed, closed or timed out (they carry no code).
const DRIVER_OUTAGE = new RegExp(
  '^(Connection terminated|timeout exceeded when trying to connect|timeout expired|' +
    'Client has encountered a connection error|Query read timeout)',
);

/** A pg or socket error as an outage: `away` when the server does not answer (else it refuses); null when none. */
function outageOf(e: unknown): { away: boolean; code: string | null; why: string } | null {
  if (!(e instanceof Error)) return null;
  const code = (e as { code?: unknown }).code;
  // Node 20 tries each address of a name (localhost: ::1 and 127.0.0.1) and fails with all of them.
  const inner = (e as { errors?: unknown }).errors;
  const message =
    e.message || (Array.isArray(inner) ? inner.map((x) => (x as Error).message).join('; ') : '') || String(code);
  if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) return { away: true, code, why: message };
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && OUTAGE_SQLSTATE.test(code))
    return { away: /^(08|57P0[1-3])/.test(code), code, why: `${message} (SQLSTATE ${code})` };
  if (DRIVER_OUTAGE.test(e.message)) return { away: true, code: null, why: e.message };
  return null;
}

/** What a pg or socket error says, as `unavailable` reports it; null when it is no outage. */
export function pgOutage(e: unknown): string | null {
  const o = outageOf(e);
  return o && `${o.away ? 'does not answer' : 'refuses the request'}: ${o.why}`;
}

/** How long a lost connection's error is kept to name the cause of a vaguer one after it: a restart's seconds. */
const LOST_CAUSE_MS = 60_000;
// The driver's words for a connection that had already failed: the cause is what it failed with first.
const VAGUE = /^(Client has encountered a connection error|Connection terminated)/;

/**
 * The latest connection the pool lost with a cause of the server's or the network's (57P01 terminating connection
 * due to administrator command, ECONNRESET), heard on the pool's or a checked-out client's 'error' event, where
 * nobody else reads it. A query on that connection then fails only with the driver's vague "Client has encountered
 * a connection error and is not queryable"; `explain` adds the cause seen first, as a worker's log says it.
 */
export class LostConnections {
  private last: { error: unknown; at: number } | null = null;

  saw(e: unknown): void {
    if (outageOf(e)?.code) this.last = { error: e, at: Date.now() };
  }

  /** `why` (pgOutage of `e`), with the cause seen first when `e` is the driver's vague word for it. */
  explain(e: unknown, why: string): string {
    const first = this.last;
    if (!first || first.error === e || Date.now() - first.at > LOST_CAUSE_MS) return why;
    if (!(e instanceof Error) || !VAGUE.test(e.message)) return why;
    return `${why} (the connection was lost first: ${outageOf(first.error)?.why})`;
  }
}

/**
 * Whether opening the log failed with `e` because the database is away for now, which a polling command
 * waits out: an outage that does not answer (stopped, starting up, shutting down, unreachable), one out of
 * resources (SQLSTATE 53: too many connections), or a migration that lost a lock to another writer. The other
 * outages of a running server (a login refused, 28: a password changed under it; a read-only standby, 25006)
 * are configuration faults at start.
 */
export function pgAwayAtOpen(e: unknown): boolean {
  const o = outageOf(e);
  if (o !== null && (o.away || /^53/.test(o.code ?? ''))) return true;
  // A migration that lost a deadlock (40P01) or a lock wait (55P03) to an older process writing the log (an image
  // prune of a cxr before schema v5 locks the two tables the other way round): the next try takes the lock.
  const code = (e as { code?: unknown } | null)?.code;
  return code === '40P01' || code === '55P03';
}

class PostgresDriver implements SqlDriver {
  constructor(
    private readonly pool: Pool,
    private readonly password: string | null,
    /** Every connection not yet ended (openConnections). */
    private readonly connections: Set<Client>,
    private readonly lostConnections: LostConnections,
  ) {}

  async all<T>(sql: string, params: SqlParams = {}): Promise<T[]> {
    const { text, values } = positional(sql, params);
    return (await this.pool.query(text, values)).rows as T[];
  }

  async transaction(statements: SqlStatement[]): Promise<number[]> {
    const client = await this.pool.connect();
    let broken = false;
    // A checked-out client has no listener of the pool's: a connection lost between two of its queries
    // (PostgreSQL stopped) is emitted as 'error' on it, which unheard ends the process. The query in
    // flight, or the next one, fails with it and the transaction's caller sees an outage.
    const lost = (e: unknown) => {
      broken = true;
      this.lostConnections.saw(e);
    };
    client.on('error', lost);
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
      // After the writes, in their transaction: a newer cxr that migrated the log since this process opened it
      // rolls them back (audit_migrations.ts MigratedUnderUsError). Read after them, not before: a row written
      // holds a lock the migration's ALTER TABLE waits for, so either that migration committed before the
      // writes and this read sees its version row, or it runs after this commit and migrates the rows with the
      // rest.
      checkWriteVersion((await client.query<{ v: number }>(VERSION_SQL)).rows[0].v);
      await client.query('COMMIT');
      return changes;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {
        broken = true; // the connection is unusable: drop it from the pool
      });
      throw e;
    } finally {
      client.removeListener('error', lost);
      client.release(broken);
    }
  }

  isUniqueViolation(e: unknown): boolean {
    return (e as { code?: unknown }).code === '23505';
  }

  unavailable(e: unknown): string | null {
    const why = pgOutage(e);
    return why === null ? null : redactSecret(this.lostConnections.explain(e, why), this.password);
  }

  /**
   * The pool's end() resolves once no client is checked out, while the idle ones' sockets still wait for the
   * server's answer to their goodbye; a server that does not answer (hung, partitioned away) holds both, and the
   * process with them, until it wakes. So the close is done only when every socket has ended, within the bound;
   * past it the sockets are cut, which fails a query still waiting (its transaction is never committed).
   */
  async close(timeoutMs: number): Promise<boolean> {
    const ended = (async () => {
      await this.pool.end();
      await Promise.all([...this.connections].map((c) => new Promise((ended) => c.once('end', ended))));
    })();
    if (await settlesWithin(ended, timeoutMs)) return true;
    for (const c of this.connections) {
      c.on('error', () => {}); // "Connection terminated unexpectedly" on one checked out: expected now
      (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    }
    await settlesWithin(ended, 1_000); // the queries cut fail, their clients go back, the pool ends
    return false;
  }
}

async function schemaVersion(c: PoolClient): Promise<number | null> {
  const exists = await c.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [VERSION_TABLE]);
  if (!exists.rows[0].t) return null;
  return (await c.query<{ v: number }>(VERSION_SQL)).rows[0].v;
}

async function migrate(c: PoolClient, display: string, opts: AuditOpenOptions): Promise<void> {
  const found = await schemaVersion(c);
  if (found === null && (opts.readonly || opts.mustExist))
    throw new Error(`${display}: no audit log in this database (run 'cxr serve --db' with it first)`);
  // cxr history (a reader, or a pruner: mustExist) uses the log as it is, never migrated.
  if (opts.readonly || opts.mustExist) return checkUnmigratedVersion(display, found!, opts.readonly ? 'read' : 'write');
  if (found === SCHEMA_VERSION) return;
  // Session lock: other openers wait here, then see the version this one leaves.
  await c.query('SELECT pg_advisory_lock(hashtext($1))', [LOCK_NAME]);
  try {
    await c.query(
      `CREATE TABLE IF NOT EXISTS ${VERSION_TABLE} (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`,
    );
    const current = (await schemaVersion(c)) ?? 0;
    if (current > SCHEMA_VERSION) {
      throw newerSchemaError(display, current);
    }
    for (let v = current; v < SCHEMA_VERSION; v++) {
      await c.query('BEGIN');
      try {
        // Every write's check of the version after its rows (PostgresDriver.transaction) holds only when the
        // migration waits for the writes in flight and they for it: an ALTER TABLE does, a backfill UPDATE or a
        // CREATE TABLE AS alone does not, and an older process's row would commit un-migrated beside it. Both
        // tables, in the order every write takes them (predictions first); none before the first migration.
        if (v > 0) await c.query('LOCK TABLE predictions, prediction_images IN SHARE ROW EXCLUSIVE MODE');
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

/**
 * A connection whose URL has no password and PGPASSWORD none either: the password is looked up when the server asks
 * for one, by cxr rather than the driver (a password in the URL parses after the `password` option and would
 * replace it, hence a property set on the client).
 */
class PassFileClient extends Client {
  constructor(config?: ClientConfig) {
    super(config);
    const self = this as unknown as { password: unknown };
    if (!self.password) self.password = pgPasswordLookup();
  }
}

/** Connects (credentials from the URL, else PGPASSWORD / PGPASSFILE), migrates, and returns the store. */
export async function openPostgresStore(
  target: Extract<AuditTarget, { kind: 'postgres' }>,
  opts: AuditOpenOptions = {},
): Promise<SqlAuditStore> {
  if (target.caution)
    (opts.warn ?? ((l) => process.stderr.write(`warning: ${l}\n`)))(`audit log ${target.display}: ${target.caution}`);
  const pool = new Pool({
    connectionString: target.url,
    // A URL without a password: cxr reads the pass file itself (audit_pg_password.ts says why).
    ...(target.password === null ? { Client: PassFileClient as unknown as new () => Client } : {}),
    max: target.poolSize,
    // Bounds both a new connection and the wait for a free one in the pool: a database that is away
    // fails a query within this (a server's requests are bounded shorter, in audit_guard.ts).
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    // An idle connection does not hold the process: a program done with the log that forgot close() exits at once,
    // not 30 s later when the idle ones time out. A query in flight still does (its client is checked out); a
    // server or a worker is held by its listener or its queue.
    allowExitOnIdle: true,
    // A connection whose peer vanished (a network cut, a host gone) is found dead rather than kept:
    // probed after 10 s idle (the OS default is 2 h), and a query without an answer in 2 min fails and
    // frees its connection, so a pool cannot stay full of clients waiting on a database that is gone.
    // (2 min, not less: a migration or `cxr history prune` on a large log is one long statement.)
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    query_timeout: 120_000,
    application_name: 'cxr',
  });
  // An idle connection the server dropped (restart, failover) must not crash the process: the
  // next query opens a new one, and fails with a real error if the server is still gone.
  // Its cause is kept, to name it when a query fails later with the driver's vaguer words (LostConnections).
  const lostConnections = new LostConnections();
  pool.on('error', (e) => lostConnections.saw(e));
  const connections = openConnections(pool);
  let client: PoolClient | null = null;
  // As in a transaction: a connection lost while checked out rejects the query in flight; unheard, its
  // 'error' event would also end the process.
  const lost = () => {};
  try {
    client = await pool.connect();
    client.on('error', lost);
    await migrate(client, target.display, opts);
  } catch (e) {
    client?.removeListener('error', lost);
    client?.release(true);
    client = null;
    await pool.end().catch(() => {});
    const why = redactSecret(e instanceof Error ? e.message : String(e), target.password);
    // Whether the database is away is decided here, on the driver's error, by the rules its outages are read
    // by (pgOutage); the driver's code goes with it for callers that read codes (queue/retry.ts).
    const code = (e as { code?: unknown }).code;
    const unresolved = code === 'ENOTFOUND' ? unresolvedHost(target.url) : null;
    // A host name that does not resolve is most often a typo, yet it is waited out as away (a container of a
    // compose file not started yet has no DNS entry either): the message names it, so that the typo is seen.
    const message = unresolved
      ? `audit log ${target.display}: the database host name "${unresolved}" does not resolve (${code}): a typo ` +
        'in --db or CXR_DB is likely; or that host is not up yet (a container starting has no DNS entry)'
      : why.startsWith(target.display)
        ? why
        : `audit log ${target.display}: ${why}`;
    throw new AuditStoreOpenError(message, typeof code === 'string' ? code : undefined, pgAwayAtOpen(e));
  } finally {
    client?.removeListener('error', lost);
    client?.release();
  }
  return new SqlAuditStore(
    new PostgresDriver(pool, target.password, connections, lostConnections),
    'postgres',
    target.display,
  );
}

/** The host name of a postgres:// URL (never its password), or null when it has none to name. */
function unresolvedHost(url: string): string | null {
  try {
    return new URL(url).hostname || null;
  } catch {
    return null;
  }
}

/** The pool's connections whose socket has not closed yet (a client emits 'end' when it has). */
function openConnections(pool: Pool): Set<Client> {
  const open = new Set<Client>();
  pool.on('connect', (c) => {
    const client = c as unknown as Client;
    open.add(client);
    client.once('end', () => open.delete(client));
  });
  return open;
}
