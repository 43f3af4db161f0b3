// The two audit stores as test backends, so that one test body runs against both: an SQLite file
// in a temporary folder, and a PostgreSQL database of a server started with scripts/stack.sh
// (skipped, with the reason, on a machine where it cannot start). Each `fresh()` is an empty log:
// a new file, or the database's public schema dropped and made again.
import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { postgresUnavailable, type Stack, startStack, stopStack } from './stack-fixture';
import { tempDir } from './serve-fixtures';

export interface AuditBackend {
  name: 'sqlite' | 'postgres';
  /** Why this backend's tests are skipped here, or false. */
  skip: string | false;
  /** The target (file or URL) of a new, empty audit log. */
  fresh(): Promise<string>;
  /** Runs SQL on the log directly (to fake old or damaged logs); the rows of the last statement. */
  raw(target: string, sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** The schema version the log records. */
  version(target: string): Promise<number>;
  /** Pretends a newer cxr wrote the log. */
  setVersion(target: string, v: number): Promise<void>;
  columns(target: string): Promise<string[]>;
  done(): void;
}

export function sqliteBackend(): AuditBackend {
  const dir = tempDir('audit');
  let n = 0;
  const withDb = <T>(file: string, f: (db: Database.Database) => T): T => {
    const db = new Database(file);
    try {
      return f(db);
    } finally {
      db.close();
    }
  };
  return {
    name: 'sqlite',
    skip: false,
    fresh: async () => path.join(dir, `log-${++n}`, 'audit.db'),
    raw: async (file, sql, params = []) =>
      withDb(file, (db) => {
        const s = db.prepare(sql.replace(/\$\d+/g, '?'));
        if (s.reader) return s.all(...params) as Record<string, unknown>[];
        s.run(...params);
        return [];
      }),
    version: async (file) => withDb(file, (db) => db.pragma('user_version', { simple: true }) as number),
    setVersion: async (file, v) => withDb(file, (db) => void db.pragma(`user_version = ${v}`)),
    columns: async (file) =>
      withDb(file, (db) =>
        (db.prepare("SELECT name FROM pragma_table_info('predictions')").all() as { name: string }[]).map(
          (c) => c.name,
        ),
      ),
    done: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

let pgStack: Stack | undefined;
let pgSkip: string | false | undefined;

/** Starts PostgreSQL through scripts/stack.sh once per test file (synchronously, before tests are declared). */
function pgUrl(): string | null {
  if (pgSkip === undefined) {
    pgSkip = postgresUnavailable() ?? false;
    if (!pgSkip) {
      try {
        pgStack = startStack('audit-pg', ['postgresql']);
      } catch (e) {
        pgSkip = `PostgreSQL did not start: ${(e as Error).message.slice(0, 2000)}`;
      }
    }
    if (pgSkip) console.log(`# PostgreSQL audit tests skipped: ${pgSkip}`);
  }
  return pgStack?.env.CXR_DB ?? null;
}

export function postgresBackend(): AuditBackend {
  const url = pgUrl();
  const query = async (target: string, sql: string, params: unknown[] = []) => {
    const c = new Client({ connectionString: target });
    await c.connect();
    try {
      return (await c.query(sql, params)).rows as Record<string, unknown>[];
    } finally {
      await c.end();
    }
  };
  return {
    name: 'postgres',
    skip: url ? false : (pgSkip as string),
    fresh: async () => {
      await query(url!, 'DROP SCHEMA public CASCADE; CREATE SCHEMA public');
      return url!;
    },
    raw: query,
    version: async (target) =>
      Number((await query(target, 'SELECT MAX(version) AS v FROM audit_schema_migrations'))[0].v),
    setVersion: async (target, v) =>
      void (await query(target, 'INSERT INTO audit_schema_migrations VALUES ($1, $2)', [v, new Date().toISOString()])),
    columns: async (target) =>
      (
        await query(
          target,
          "SELECT column_name AS name FROM information_schema.columns WHERE table_name = 'predictions' " +
            "AND table_schema = 'public'",
        )
      ).map((r) => String(r.name)),
    done: () => {
      stopStack(pgStack);
      pgStack = undefined;
    },
  };
}
