// The audit store's queries, written once: SqlAuditStore speaks to SQLite and PostgreSQL through
// a SqlDriver that runs named-parameter SQL (@name). Each driver turns @name into its own
// placeholders, so what is stored and how it is filtered, paged and pruned cannot drift apart.
import type { AuditRecord } from '../predict/prediction_schema';
import {
  AuditCloseError,
  type AuditImages,
  type AuditStore,
  AuditUnavailableError,
  CLOSE_TIMEOUT_MS,
  type HistoryFilter,
  type HistoryPage,
} from './audit_store';
import { type AuditRow, fromRow, INSERT_SQL, toRow } from './audit_columns';
import { MigratedUnderUsError } from './audit_migrations';
import { readDateTime } from './date_time';

export type SqlParams = Record<string, unknown>;

export interface SqlStatement {
  sql: string;
  params: SqlParams;
  /** Run only when the statement before changed a row (else counted as 0 changes). */
  ifChanged?: boolean;
}

export interface SqlDriver {
  all<T>(sql: string, params?: SqlParams): Promise<T[]>;
  /** Runs the statements in one durable transaction; how many rows each one changed. */
  transaction(statements: SqlStatement[]): Promise<number[]>;
  /** Whether `e` is a UNIQUE constraint violation. */
  isUniqueViolation(e: unknown): boolean;
  /**
   * When `e` says the database cannot be reached or written (down, refusing connections, disk full),
   * what happened, as the end of "the audit log (...) ..." and without secrets; null for anything else
   * (a SQL error is a bug, not an outage).
   */
  unavailable(e: unknown): string | null;
  /** Closes within `timeoutMs`: true, or false when the connections had to be cut past it. */
  close(timeoutMs: number): Promise<boolean>;
}

/**
 * AuditStore.probeWrite's statement: the one row of audit_probe (schema v5) set to the time, which differs at each
 * probe (SQLite skips writing a cell whose bytes are the same). An audit row is never touched for it.
 */
const PROBE_WRITE_SQL =
  'INSERT INTO audit_probe (id, probed_at) VALUES (1, @at) ' +
  'ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at';

/** Probes made by this process: part of the probe's value, so that two in one millisecond differ too. */
let probes = 0;

const FIRST_MS = Date.parse('0000-01-01T00:00:00.000Z');
const LAST_MS = Date.parse('9999-12-31T23:59:59.999Z');

/**
 * A time as created_at holds it: toISOString(), UTC, fixed width, so that text order is time order.
 * A number (milliseconds) is clamped to years 0000-9999: beyond them toISOString() writes '+010000-…' or
 * '-000001-…', which sort before every row as text (an `until` in year 10000 matched nothing). A string is
 * read by date_time.ts (a date, or a date-time with its zone, 4-digit years; one past 9999 given with an
 * offset is clamped too); any other string is refused, `what` naming it.
 */
export function auditTime(time: string | number, what = 'time'): string {
  // A string as every other reader of times takes it (date_time.ts): Date.parse would read a time without its
  // zone in this machine's zone, and take '2026-02-30' or '6'.
  const read = typeof time === 'number' ? { ms: time } : readDateTime(time);
  if ('error' in read) throw new RangeError(`audit log: ${what} ${JSON.stringify(time)} ${read.error}`);
  const { ms } = read;
  if (Number.isNaN(ms)) throw new RangeError(`audit log: ${what} ${JSON.stringify(time)} is not a readable time`);
  return new Date(Math.min(LAST_MS, Math.max(FIRST_MS, ms))).toISOString();
}

/** The names used in `sql`, in order of first use (drivers bind only those). */
export function paramNames(sql: string): string[] {
  return [...new Set([...sql.matchAll(/@([a-z_][a-z0-9_]*)/gi)].map((m) => m[1]))];
}

/** Only the parameters `sql` uses; a missing one is a programming error, said plainly. */
export function bindNamed(sql: string, params: SqlParams): SqlParams {
  const out: SqlParams = {};
  for (const name of paramNames(sql)) {
    if (!(name in params)) throw new Error(`audit SQL: no value for @${name}`);
    out[name] = params[name] ?? null;
  }
  return out;
}

/**
 * A row's verdict status as predict/verdict.ts `statusOf` reads it: the stored one, or, for a row
 * logged before schema v4 kept verdicts, 'cannot-assess' when it carries warnings.
 */
const STATUS_SQL = "COALESCE(verdict_status, CASE WHEN warning_count > 0 THEN 'cannot-assess' ELSE 'assessed' END)";

const INSERT_IMAGES =
  'INSERT INTO prediction_images (prediction_id, thumbnail_png, heatmap_png) VALUES (@id, @thumbnail, @heatmap)';

// The same statement guarded by the result-key index: a second worker's row is dropped, not an error.
const INSERT_ONCE = `${INSERT_SQL}
  ON CONFLICT (result_key, model_sha256, operating_point) WHERE result_key IS NOT NULL DO NOTHING`;

function imageStatement(id: string, images: AuditImages | null, ifChanged = false): SqlStatement[] {
  if (!images || (!images.thumbnailPng && !images.heatmapPng)) return [];
  const params = { id, thumbnail: images.thumbnailPng ?? null, heatmap: images.heatmapPng ?? null };
  return [{ sql: INSERT_IMAGES, params, ifChanged }];
}

export class SqlAuditStore implements AuditStore {
  private readonly driver: SqlDriver;
  /** A write found the log migrated by a newer cxr: this store writes no more. */
  private migrated: MigratedUnderUsError | null = null;

  constructor(
    driver: SqlDriver,
    readonly kind: 'sqlite' | 'postgres',
    readonly location: string,
  ) {
    // Every query's failure passes here: an outage becomes AuditUnavailableError (a 503 for the API,
    // a clear message for the commands), anything else stays as it was.
    const outage = (e: unknown): never => {
      if (e instanceof MigratedUnderUsError) this.migrated = e;
      const reason = e instanceof MigratedUnderUsError ? e.message : driver.unavailable(e);
      throw reason === null ? e : new AuditUnavailableError(location, reason);
    };
    this.driver = {
      all: <T>(sql: string, params?: SqlParams) => driver.all<T>(sql, params).catch(outage),
      transaction: (statements) => {
        // Once seen, for good: no write is tried again (each would be rolled back), and ping fails, so that a
        // server says so on /health and refuses predictions before computing them (audit_guard.ts ensure).
        if (this.migrated) return Promise.reject(this.migrated).catch(outage);
        return driver.transaction(statements).catch(outage);
      },
      isUniqueViolation: (e) => driver.isUniqueViolation(e),
      unavailable: (e) => driver.unavailable(e),
      close: (ms) => driver.close(ms),
    };
  }

  async insert(record: AuditRecord, images: AuditImages | null): Promise<void> {
    try {
      await this.driver.transaction([{ sql: INSERT_SQL, params: toRow(record) }, ...imageStatement(record.id, images)]);
    } catch (e) {
      if (!this.driver.isUniqueViolation(e)) throw e;
      throw new Error(
        `audit log: a prediction with id ${record.id} is already logged (UNIQUE); it is never overwritten`,
      );
    }
  }

  async insertOnce(record: AuditRecord, images: AuditImages | null, resultKey: string): Promise<'inserted' | 'exists'> {
    const row = toRow({ ...record, resultKey });
    const [changed] = await this.driver.transaction([
      { sql: INSERT_ONCE, params: row },
      ...imageStatement(record.id, images, true),
    ]);
    return changed ? 'inserted' : 'exists';
  }

  async findByResultKey(resultKey: string, modelSha256: string, operatingPoint: string): Promise<AuditRecord | null> {
    const rows = await this.driver.all<AuditRow>(
      `SELECT * FROM predictions WHERE result_key = @key AND model_sha256 = @model AND operating_point = @op`,
      { key: resultKey, model: modelSha256, op: operatingPoint },
    );
    return rows.length ? fromRow(rows[0]) : null;
  }

  async get(id: string): Promise<AuditRecord | null> {
    const rows = await this.driver.all<AuditRow>('SELECT * FROM predictions WHERE id = @id', { id });
    return rows.length ? fromRow(rows[0]) : null;
  }

  async image(id: string, which: 'thumbnail' | 'heatmap'): Promise<Buffer | null> {
    const col = which === 'thumbnail' ? 'thumbnail_png' : 'heatmap_png';
    const rows = await this.driver.all<{ png: Buffer | null }>(
      `SELECT ${col} AS png FROM prediction_images WHERE prediction_id = @id`,
      { id },
    );
    return rows[0]?.png ?? null;
  }

  async list(filter: HistoryFilter = {}): Promise<HistoryPage> {
    const where: string[] = [];
    const args: SqlParams = {};
    if (filter.label) {
      // The label of an answer that could not be assessed is no finding (the page shows none).
      where.push(`label = @label AND ${STATUS_SQL} <> 'cannot-assess'`);
      args.label = filter.label;
    }
    if (filter.verdict) {
      where.push(`${STATUS_SQL} = @verdict`);
      args.verdict = filter.verdict;
    }
    if (filter.operatingPoint) {
      where.push('operating_point = @op');
      args.op = filter.operatingPoint;
    }
    if (filter.since) {
      where.push('created_at >= @since');
      args.since = auditTime(filter.since, 'since');
    }
    if (filter.until) {
      where.push('created_at <= @until');
      args.until = auditTime(filter.until, 'until');
    }
    if (filter.hasWarnings !== undefined) where.push(filter.hasWarnings ? 'warning_count > 0' : 'warning_count = 0');
    if (filter.requestedBy !== undefined) {
      where.push('requested_by = @requested_by');
      args.requested_by = filter.requestedBy;
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const limit = Math.max(1, Math.min(1000, filter.limit ?? 50));
    const page = Math.max(1, filter.page ?? 1);
    const [{ n }] = await this.driver.all<{ n: number }>(
      `SELECT CAST(COUNT(*) AS INTEGER) AS n FROM predictions ${clause}`,
      args,
    );
    const rows = await this.driver.all<AuditRow>(
      `SELECT * FROM predictions ${clause} ORDER BY seq DESC LIMIT @limit OFFSET @offset`,
      { ...args, limit, offset: (page - 1) * limit },
    );
    return { items: rows.map(fromRow), total: Number(n), page, limit };
  }

  async pruneImages(before: string): Promise<number> {
    const cutoff = auditTime(before, 'prune cutoff');
    // predictions first, as every write does: a PostgreSQL migration locks predictions, then prediction_images
    // (audit_pg.ts migrate); a write holding prediction_images while waiting for predictions would deadlock with it.
    const [changed] = await this.driver.transaction([
      {
        sql: `UPDATE predictions SET has_heatmap = 0, has_thumbnail = 0
          WHERE created_at < @cutoff AND (has_heatmap = 1 OR has_thumbnail = 1)`,
        params: { cutoff },
      },
      {
        sql: `DELETE FROM prediction_images WHERE prediction_id IN
          (SELECT id FROM predictions WHERE created_at < @cutoff)`,
        params: { cutoff },
      },
    ]);
    return changed;
  }

  async count(): Promise<number> {
    const [{ n }] = await this.driver.all<{ n: number }>('SELECT CAST(COUNT(*) AS INTEGER) AS n FROM predictions');
    return Number(n);
  }

  async ping(): Promise<void> {
    if (this.migrated) throw new AuditUnavailableError(this.location, this.migrated.message);
    await this.driver.all('SELECT 1 AS one');
  }

  async probeWrite(): Promise<void> {
    await this.driver.transaction([
      { sql: PROBE_WRITE_SQL, params: { at: `${new Date().toISOString()} ${++probes}` } },
    ]);
  }

  async close(timeoutMs = CLOSE_TIMEOUT_MS): Promise<void> {
    if (!(await this.driver.close(timeoutMs))) throw new AuditCloseError(this.location, timeoutMs);
  }
}
