// The audit store's interface and the shapes it takes and gives, shared by its two
// implementations (audit_sqlite.ts, audit_pg.ts, both through audit_sql.ts) and their callers.
import type { AuditRecord } from '../predict/prediction_schema';
import type { VerdictStatus } from '../predict/verdict';

export interface AuditImages {
  thumbnailPng?: Buffer;
  heatmapPng?: Buffer;
}

export interface HistoryFilter {
  /** Answers with this label shown as a finding: a 'cannot-assess' answer has none, so it never matches. */
  label?: string;
  /** Answers with this verdict status (statusOf's rule for rows logged before verdicts were kept). */
  verdict?: VerdictStatus;
  operatingPoint?: string;
  /** ISO 8601 bounds on createdAt, inclusive. */
  since?: string;
  until?: string;
  hasWarnings?: boolean;
  /** Only the predictions asked with this API token (its name): what a token limited to `predict` reads. */
  requestedBy?: string;
  page?: number;
  limit?: number;
}

export interface HistoryPage {
  items: AuditRecord[];
  total: number;
  page: number;
  limit: number;
}

export interface AuditOpenOptions {
  /** Read only (cxr history): the log must exist at the current schema; nothing is migrated. */
  readonly?: boolean;
  /** The log must exist already, at this cxr's schema (cxr history prune): never migrated, an older one refused. */
  mustExist?: boolean;
  /** SQLite: how long a write waits for another program's lock before failing SQLITE_BUSY (default 5 s). */
  busyTimeoutMs?: number;
  /** Where a caution about the log's connection goes (default: a `warning:` line on stderr). */
  warn?: (line: string) => void;
}

export interface AuditStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Where the log is, safe to print: the file, or the URL with its password hidden. */
  readonly location: string;
  /** Commits the row (and images) durably; resolves only once it is on disk. A duplicate id is refused. */
  insert(record: AuditRecord, images: AuditImages | null): Promise<void>;
  /**
   * Commits the row with `resultKey` unless a row with the same key, model and operating point is
   * there already (then nothing is written). Safe when several workers race on the same key.
   */
  insertOnce(record: AuditRecord, images: AuditImages | null, resultKey: string): Promise<'inserted' | 'exists'>;
  findByResultKey(resultKey: string, modelSha256: string, operatingPoint: string): Promise<AuditRecord | null>;
  get(id: string): Promise<AuditRecord | null>;
  image(id: string, which: 'thumbnail' | 'heatmap'): Promise<Buffer | null>;
  /** Newest first (insertion order), filtered and paged. */
  list(filter?: HistoryFilter): Promise<HistoryPage>;
  /**
   * Removes the heat maps and thumbnails of predictions made before `before` (ISO time); the
   * predictions themselves stay. Resolves to how many predictions lost their images.
   */
  pruneImages(before: string): Promise<number>;
  count(): Promise<number>;
  /** Resolves when the log answers a trivial query: the cheapest check that it can be reached. */
  ping(): Promise<void>;
  /**
   * Commits a write that touches no audit row (the time, in audit_probe's one row): resolves when the log takes
   * writes, fails as insert() would while it does not (the disk full, a read-only standby). For a server in a
   * write outage, whose pings answer, to learn that rows are taken again with no prediction to write (AuditGuard
   * writesRefused).
   */
  probeWrite?(): Promise<void>;
  /**
   * Closes the log: waits for the writes in flight and for the connections to end, within `timeoutMs`
   * (default CLOSE_TIMEOUT_MS). Past it (a database that stopped answering: a network partition) the
   * connections are cut, any write still pending is not committed, and it throws AuditCloseError.
   */
  close(timeoutMs?: number): Promise<void>;
}

/** How long close() waits for a database that does not answer, unless told otherwise. */
export const CLOSE_TIMEOUT_MS = 10_000;

/**
 * The log did not close within the bound: its connections were cut. The message names the log (password
 * hidden) and the bound, for a shutdown to say what it did not close.
 */
export class AuditCloseError extends Error {
  readonly code = 'AUDIT_CLOSE_TIMEOUT';

  constructor(
    readonly location: string,
    readonly timeoutMs: number,
  ) {
    super(
      `the audit log (${location}) did not close within ${timeoutMs} ms (the database does not answer): ` +
        'its connections were cut; a write still pending was not committed',
    );
    this.name = 'AuditCloseError';
  }
}

/**
 * The log cannot be reached or written for a reason outside cxr (the database is down or refuses
 * connections, the disk is full): worth a retry later, unlike a bug. `reason` says what failed, with
 * no password in it; the message names the log as `location` shows it.
 */
export class AuditUnavailableError extends Error {
  readonly code = 'AUDIT_UNAVAILABLE';

  constructor(
    readonly location: string,
    readonly reason: string,
    /** What it means for the caller, appended to the message ("nothing was predicted; ..."). */
    readonly consequence?: string,
  ) {
    super(`the audit log (${location}) ${reason}${consequence ? `; ${consequence}` : ''}`);
    this.name = 'AuditUnavailableError';
  }

  /**
   * The message for API clients: what kind of failure ("does not answer", "did not answer within 5 s",
   * "cannot be used") and what became of the request, without the log's host, user, file or the driver's
   * words, which are the operator's business (the server logs them when the outage starts).
   */
  get publicMessage(): string {
    const kind = this.reason.split(':')[0].trim();
    return `the audit log ${kind} (details are in the server log)${this.consequence ? `; ${this.consequence}` : ''}`;
  }
}

/**
 * The audit log could not be opened. The message gives the driver's words (PostgreSQL's naming the log, password
 * hidden); `code` is the driver's (ECONNREFUSED, 57P03, SQLITE_BUSY, ...), not the error itself as a cause, whose
 * message may hold what was redacted. `away`: the log is there but does not answer for now (stopped, starting
 * up, shutting down, out of connections, unreachable; an SQLite file locked by another program), decided by the
 * store's own outage rules on the driver's error while it is in hand; a polling command waits that out, whereas
 * no wait mends the rest (a login refused, no such database, a file that is no audit log, a log newer than cxr).
 */
export class AuditStoreOpenError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly away: boolean,
  ) {
    super(message);
    this.name = 'AuditStoreOpenError';
  }
}

/**
 * SQLite's lock held by another connection past the busy wait (SQLITE_BUSY, SQLITE_LOCKED and their extended
 * codes): the log is there but away for now. Here, not in audit_sqlite.ts, so that the guard reads it without
 * loading the driver.
 */
export function isSqliteLocked(code: unknown): boolean {
  return typeof code === 'string' && /^SQLITE_(BUSY|LOCKED)/.test(code);
}
