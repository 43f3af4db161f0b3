// The audit log: one row per answered prediction, written before the answer leaves the server,
// so that every prediction a client was told about survives a crash. Two stores behind one
// interface: an SQLite file (the embedded default) and a PostgreSQL database that several
// servers and workers share. openAuditStore picks by the target (--db / CXR_DB).
//
// Only what the Predictor returns is stored: input hash, kind, size and the result. DICOM
// patient tags never reach this module.
import * as os from 'node:os';
import * as path from 'node:path';
import { openPostgresStore } from './audit_pg';
import type { AuditOpenOptions, AuditStore } from './audit_store';
import { openSqliteStore } from './audit_sqlite';
import { parseAuditTarget } from './audit_target';

export { SCHEMA_VERSION } from './audit_migrations';
export { isPostgresUrl, redactUrl } from './audit_target';
export type { AuditRecord } from '../predict/prediction_schema';
export type { AuditImages, AuditOpenOptions, AuditStore, HistoryFilter, HistoryPage } from './audit_store';

/** defaultDbPath in words, for the commands' --db help. */
export const DEFAULT_DB_WORDS = 'CXR_DB, else $XDG_DATA_HOME/cxr/audit.db, by default ~/.local/share/cxr/audit.db';

/** CXR_DB, else ~/.local/share/cxr/audit.db (XDG_DATA_HOME when set). */
export function defaultDbPath(): string {
  if (process.env.CXR_DB) return process.env.CXR_DB;
  const data = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(data, 'cxr', 'audit.db');
}

/**
 * Opens and migrates the log at `target`: a postgres:// or postgresql:// URL (credentials in the
 * URL, or PGPASSWORD / PGPASSFILE), or the path of an SQLite file (`:memory:` for tests).
 */
export async function openAuditStore(target: string, opts: AuditOpenOptions = {}): Promise<AuditStore> {
  const t = parseAuditTarget(target);
  return t.kind === 'postgres' ? openPostgresStore(t, opts) : openSqliteStore(t.file, opts);
}
