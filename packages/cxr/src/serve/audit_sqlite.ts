// The embedded store: one SQLite file (better-sqlite3, synchronous underneath). WAL with
// synchronous=FULL: a committed row is on disk when insert() resolves. The schema version is
// SQLite's user_version, as it has been since the first release of the log.
import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type AuditOpenOptions, AuditStoreOpenError, isSqliteLocked } from './audit_store';
import {
  checkUnmigratedVersion,
  checkWriteVersion,
  MIGRATIONS,
  newerSchemaError,
  SCHEMA_VERSION,
  SQLITE,
} from './audit_migrations';
import { bindNamed, type SqlDriver, type SqlParams, type SqlStatement, SqlAuditStore } from './audit_sql';
import { makeDirs, writeFailure } from '../make_dirs';

/** The schema version, as one row { v }. */
const VERSION_SQL = 'SELECT user_version AS v FROM pragma_user_version';

class SqliteDriver implements SqlDriver {
  private readonly statements = new Map<string, Database.Statement>();

  constructor(
    private readonly db: Database.Database,
    /** A reader (cxr history): it writes nothing, a checkpoint included. */
    private readonly readsOnly = false,
  ) {}

  private prepare(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  async all<T>(sql: string, params: SqlParams = {}): Promise<T[]> {
    return this.prepare(sql).all(bindNamed(sql, params)) as T[];
  }

  async transaction(statements: SqlStatement[]): Promise<number[]> {
    return this.db.transaction(() => {
      const changes: number[] = [];
      for (const s of statements) {
        if (s.ifChanged && !changes[changes.length - 1]) changes.push(0);
        else changes.push(this.prepare(s.sql).run(bindNamed(s.sql, s.params)).changes);
      }
      // After the writes, holding the write lock: a newer cxr that migrated the file since this one opened it
      // rolls the rows back (audit_migrations.ts MigratedUnderUsError).
      checkWriteVersion((this.prepare(VERSION_SQL).get() as { v: number }).v);
      return changes;
    })();
  }

  isUniqueViolation(e: unknown): boolean {
    const code = (e as { code?: unknown }).code;
    return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
  }

  // The file cannot be written or read for a reason outside cxr: a read-only file or file system, the
  // disk full, an I/O error. SQLITE_BUSY (another program holds the lock) is not here: it is its own
  // 503 BUSY (problem.ts), and the next try usually succeeds.
  unavailable(e: unknown): string | null {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string' || !/^SQLITE_(READONLY|IOERR|FULL|CANTOPEN|PERM)/.test(code)) return null;
    return `cannot be used: ${(e as Error).message} (${code})`;
  }

  /**
   * Checkpoints the WAL into the main file and closes; the next open finds a tidy database. Synchronous, and
   * bounded by the busy timeout: always within the bound.
   */
  async close(): Promise<boolean> {
    if (!this.db.open) return true;
    let failed: unknown = null;
    try {
      if (!this.db.readonly && !this.readsOnly) this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch (e) {
      failed = e;
    } finally {
      // Closed whatever the checkpoint did: thrown past, it left the connection open and a server's shutdown failed.
      this.db.close();
    }
    // A checkpoint the disk cannot take (full, read-only, an I/O error) loses nothing: the committed rows stay in
    // the -wal file, which the next open reads. Anything else is a bug, said.
    if (failed !== null && this.unavailable(failed) === null) throw failed;
    return true;
  }
}

/** Why SQLite could not open `file`, as far as the file system tells. */
function cantOpenReason(file: string): string {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(file, { throwIfNoEntry: false });
  } catch {
    return 'no permission to enter its folder';
  }
  if (st?.isDirectory()) return 'it is a folder';
  try {
    if (st) fs.accessSync(file, fs.constants.R_OK | fs.constants.W_OK);
    else fs.accessSync(path.dirname(path.resolve(file)), fs.constants.W_OK);
  } catch {
    return st ? 'no permission to read and write it' : 'its folder is not writable';
  }
  return 'SQLite refused it';
}

/**
 * A file that is no audit log at all (schema v0: no migration ever ran on it) is refused by a reader or a
 * pruner rather than called an old log: an empty file, or another program's SQLite database.
 */
function refuseIfNoLog(file: string, db: Database.Database): void {
  const shape = shapeOf(db);
  if (shape.version !== 0) {
    if (!shape.hasLog)
      throw new Error(`${file}: an SQLite database but not cxr's audit log (--db names the audit log)`);
    return;
  }
  if (fs.statSync(file).size === 0)
    throw new Error(`${file}: an empty file, not an audit log yet ('cxr serve' or 'cxr predict' writes one there)`);
  throw new Error(`${file}: an SQLite database but not cxr's audit log (--db names the audit log)`);
}

/**
 * A writer (serve, predict, sync) creates its tables in an empty or new file, never beside another
 * program's: a --db that names some other SQLite database is a mistake to say, not a file to add to.
 */
function refuseForeign(file: string, db: Database.Database): void {
  // Another program's file: tables without a schema version of ours, or a version (many programs set
  // one) without our table. Said before anything is written to it, WAL mode included.
  const { version, tables, hasLog } = shapeOf(db);
  if (version === 0 ? tables > 0 : !hasLog)
    throw new Error(`${file}: an SQLite database but not cxr's audit log (--db names the audit log): nothing written`);
}

/**
 * The schema version, the number of tables and whether ours is there, read in one statement: one snapshot.
 * Read one by one, another process creating the log between the reads showed version 0 beside its new tables,
 * a foreign database (two servers started at once on a new log: one refused it).
 */
function shapeOf(db: Database.Database): { version: number; tables: number; hasLog: boolean } {
  const row = db
    .prepare(
      `SELECT (SELECT user_version FROM pragma_user_version) AS version,
              (SELECT COUNT(*) FROM sqlite_master WHERE type = 'table') AS tables,
              EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'predictions') AS hasLog`,
    )
    .get() as { version: number; tables: number; hasLog: number };
  return { version: row.version, tables: row.tables, hasLog: row.hasLog === 1 };
}

/**
 * A read-only connection to a log in WAL mode makes its -wal and -shm files when they are missing, and
 * leaves them behind. Missing, they say that no program has the log open: then a connection that may
 * write but is told to write nothing (query_only) reads it, and removes them on close as the last one out.
 */
function readsWithoutTrace(file: string): boolean {
  if (fs.existsSync(`${file}-wal`) || fs.existsSync(`${file}-shm`)) return false;
  try {
    fs.accessSync(file, fs.constants.R_OK | fs.constants.W_OK);
    // The -wal and -shm files are made beside it: in a folder this user cannot write, a read-only open.
    fs.accessSync(path.dirname(path.resolve(file)), fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * A writer (serve, predict, sync) is refused at once a log it may not write, naming it and why: SQLite would open
 * it read-only without a word and fail later with "attempt to write a readonly database", or, in a folder where
 * it cannot make its -wal and -shm files, with a bare "unable to open database file".
 */
function refuseUnwritable(file: string): void {
  if (!fs.existsSync(file)) return; // made in its folder, which makeDirs proved
  const cannot = (why: string) => new Error(`audit log ${file}: cannot write it (${why})`);
  try {
    fs.accessSync(file, fs.constants.W_OK);
  } catch (e) {
    throw cannot(accessWords(e, 'only its owner may write it'));
  }
  if (fs.existsSync(`${file}-wal`) && fs.existsSync(`${file}-shm`)) {
    // Both there already (SQLite makes them with the log's mode): each must take writes too.
    for (const side of [`${file}-wal`, `${file}-shm`]) {
      try {
        fs.accessSync(side, fs.constants.W_OK);
      } catch (e) {
        throw cannot(accessWords(e, `${path.basename(side)} beside it is not writable by this user`));
      }
    }
    return;
  }
  try {
    fs.accessSync(path.dirname(path.resolve(file)), fs.constants.W_OK);
  } catch (e) {
    throw cannot(accessWords(e, 'its folder is not writable, and SQLite makes its -wal and -shm files there'));
  }
}

/** A failed access check in words: a read-only file system, else `denied`. */
function accessWords(e: unknown, denied: string): string {
  return (e as NodeJS.ErrnoException).code === 'EROFS'
    ? 'it is on a read-only file system'
    : `permission denied: ${denied}`;
}

/**
 * A reader that may not write the log. A log in WAL mode is read through its -shm file, which SQLite makes when
 * missing: on a read-only file system, or in a folder of another user's, it cannot, and the open fails. With no
 * write-ahead log beside it no program has the log open and every row is in the file itself: a copy of it in
 * memory (marked as a rollback-journal database, which needs no -shm) is read instead. With rows in a -wal that
 * cannot be read, the reader is told so rather than shown a log without them.
 */
function openReader(file: string): Database.Database {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    db.pragma('user_version'); // the first read opens the -shm file
    return db;
  } catch (e) {
    db.close();
    // CANTOPEN: the -shm cannot be made (a read-only file system); READONLY_DIRECTORY: not in this folder.
    if (!/^SQLITE_(CANTOPEN|READONLY_DIRECTORY)$/.test((e as { code?: string }).code ?? '')) throw e;
  }
  const wal = fs.statSync(`${file}-wal`, { throwIfNoEntry: false });
  if (wal && wal.size > 0)
    throw new Error(
      `audit log ${file}: cannot read it: its newest rows are in ${file}-wal, which SQLite reads through a -shm file ` +
        'it cannot make there (a read-only file system, or a folder of another user). Read it as the user that ' +
        'writes it, or once that program has closed the log',
    );
  if (fs.statSync(file).size > MAX_COPY_BYTES)
    throw new Error(
      `audit log ${file}: cannot read it here: SQLite cannot make its -shm file beside it, and at over ` +
        `${MAX_COPY_BYTES / 2 ** 30} GiB it is too large to read from memory. Copy it to a folder you may write`,
    );
  const bytes = fs.readFileSync(file);
  // The header's read and write versions (bytes 18, 19): 2 is WAL, 1 the rollback journal, which needs no -shm.
  if (bytes.length >= 20 && bytes[18] === 2 && bytes[19] === 2) bytes[18] = bytes[19] = 1;
  return new Database(bytes, { readonly: true });
}

/** The largest log read from memory when it cannot be read in place (openReader). */
const MAX_COPY_BYTES = 2 * 2 ** 30;

/**
 * An error with a code, for openSqliteStore to hand on (AuditStoreOpenError.code): the file system's for what it
 * checks itself (EISDIR, ENOENT, ...), SQLite's for what it rewords, so that a program branches on a code for every
 * failure rather than on the words.
 */
function coded(message: string, code: string | undefined): Error {
  return Object.assign(new Error(message), { code });
}

function isFolder(file: string): boolean {
  try {
    return fs.statSync(file, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch {
    return false; // not even looked at (no permission on its folder): SQLite's open says why
  }
}

/**
 * Opens (creating if needed) and migrates the file; `:memory:` works for tests. It fails as the PostgreSQL
 * opener does, with an AuditStoreOpenError: the message as the opening said it, the driver's code (SQLITE_BUSY,
 * or a file system's EACCES, ...) for callers that read codes, and whether the log is away for now, decided
 * here on the driver's error.
 */
export function openSqliteStore(file: string, opts: AuditOpenOptions = {}): SqlAuditStore {
  try {
    return openSqlite(file, opts);
  } catch (e) {
    const code = (e as { code?: unknown } | null)?.code;
    const known = typeof code === 'string' ? code : undefined;
    const message = e instanceof Error ? e.message : String(e);
    // The file locked by another program past the wait is away for now, which a polling command waits out, as it
    // does PostgreSQL stopped.
    throw new AuditStoreOpenError(message, known, isSqliteLocked(known));
  }
}

function openSqlite(file: string, opts: AuditOpenOptions): SqlAuditStore {
  if ((opts.readonly || opts.mustExist) && !fs.existsSync(file))
    throw coded(`${file}: no audit log there ('cxr serve' or 'cxr predict' writes one)`, 'ENOENT');
  // SQLite opens a folder read-only and fails later with a bare "disk I/O error".
  if (file !== ':memory:' && isFolder(file))
    throw coded(`audit log ${file}: cannot open it (it is a folder)`, 'EISDIR');
  if (file !== ':memory:' && !opts.readonly) {
    try {
      makeDirs(path.dirname(path.resolve(file)));
    } catch (e) {
      throw coded(`audit log ${file}: cannot write it (${writeFailure(e)})`, (e as NodeJS.ErrnoException).code);
    }
  }
  if (file !== ':memory:' && !opts.readonly) refuseUnwritable(file);
  // A new log is made readable by its owner only, not as the umask says (0644): it holds every film's thumbnail and
  // heat map and who asked, and the default folder and systemd's StateDirectory are open to every local user.
  // SQLite makes the -wal and -shm files with the log's mode. A log there already keeps the mode it has.
  if (file !== ':memory:' && !opts.readonly && !opts.mustExist) {
    try {
      fs.closeSync(fs.openSync(file, 'wx', 0o600));
    } catch {
      // There already, or it cannot be made: SQLite's open below says why.
    }
  }
  const readsOnly = opts.readonly === true && readsWithoutTrace(file);
  let db: Database.Database;
  try {
    db = opts.readonly && !readsOnly ? openReader(file) : new Database(file, { fileMustExist: opts.readonly ?? false });
  } catch (e) {
    // SQLite says "unable to open database file" without the file or the reason: name both.
    if ((e as { code?: string }).code !== 'SQLITE_CANTOPEN') throw e;
    throw coded(`audit log ${file}: cannot open it (${cantOpenReason(file)})`, 'SQLITE_CANTOPEN');
  }
  try {
    db.pragma('busy_timeout = 5000');
    if (readsOnly) db.pragma('query_only = ON');
    if (opts.readonly || opts.mustExist) refuseIfNoLog(file, db);
    else refuseForeign(file, db);
    const version = () => db.pragma('user_version', { simple: true }) as number;
    if (!opts.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      // A pruner (mustExist) writes the log as it is: never migrated (checkUnmigratedVersion says why).
      if (opts.mustExist) checkUnmigratedVersion(file, version(), 'write');
      else migrate(db, file);
      // Past the migration, a write waits this long for a lock another program holds. better-sqlite3
      // waits synchronously, so a server answers nothing else meanwhile: it asks for a short wait, and
      // past it the request gets 503 BUSY (problem.ts) rather than a frozen server.
      if (opts.busyTimeoutMs !== undefined) db.pragma(`busy_timeout = ${Math.round(opts.busyTimeoutMs)}`);
    } else checkUnmigratedVersion(file, version(), 'read');
    return new SqlAuditStore(new SqliteDriver(db, readsOnly), 'sqlite', file);
  } catch (e) {
    db.close();
    if ((e as { code?: string }).code === 'SQLITE_NOTADB')
      throw coded(`${file}: not an SQLite database (--db names the audit log, or a postgres:// URL)`, 'SQLITE_NOTADB');
    throw e;
  }
}

function migrate(db: Database.Database, file: string): void {
  // IMMEDIATE: the write lock is taken before user_version is read, so two processes opening a
  // new file at once apply each migration exactly once (the second waits, then finds it done).
  db.transaction(() => {
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > SCHEMA_VERSION) {
      throw newerSchemaError(file, current);
    }
    for (let v = current; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v](SQLITE));
    if (current < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
