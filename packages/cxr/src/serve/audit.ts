// The audit log: one SQLite row per answered prediction, written synchronously before the answer
// leaves the server, so that every prediction a client was told about survives a crash (WAL
// with synchronous=FULL: a committed row is on disk when insert() returns).
//
// Only what the Predictor returns is stored: input hash, kind, size and the result. DICOM
// patient tags never reach this module.
import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AuditRecord } from '../predict/prediction_schema';
import { type AuditRow, fromRow, INSERT_SQL, toRow } from './audit_columns';

/** Schema changes, in order; user_version = how many have been applied. Never edit a shipped one. */
const MIGRATIONS: string[] = [
  `CREATE TABLE predictions (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL UNIQUE,
     created_at TEXT NOT NULL,
     input_sha256 TEXT NOT NULL,
     input_kind TEXT NOT NULL,
     input_bytes INTEGER NOT NULL,
     width INTEGER NOT NULL,
     height INTEGER NOT NULL,
     model_name TEXT NOT NULL,
     model_version TEXT NOT NULL,
     model_sha256 TEXT NOT NULL,
     probability REAL NOT NULL,
     logit REAL NOT NULL,
     threshold REAL NOT NULL,
     operating_point TEXT NOT NULL,
     label TEXT NOT NULL,
     warnings TEXT NOT NULL,
     warning_count INTEGER NOT NULL,
     ood_score REAL,
     ood_threshold REAL,
     ood_flag INTEGER,
     has_heatmap INTEGER NOT NULL,
     has_thumbnail INTEGER NOT NULL,
     decode_ms REAL NOT NULL,
     infer_ms REAL NOT NULL,
     heatmap_ms REAL,
     total_ms REAL NOT NULL,
     latency_ms REAL NOT NULL
   );
   CREATE INDEX predictions_created_at ON predictions (created_at);
   CREATE TABLE prediction_images (
     prediction_id TEXT PRIMARY KEY REFERENCES predictions (id) ON DELETE CASCADE,
     thumbnail_png BLOB,
     heatmap_png BLOB
   );`,
  // v2: who asked (the API token's name; NULL when the server needs no token, and for older rows).
  'ALTER TABLE predictions ADD COLUMN requested_by TEXT;',
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export type { AuditRecord } from '../predict/prediction_schema';

export interface AuditImages {
  thumbnailPng?: Buffer;
  heatmapPng?: Buffer;
}

export interface HistoryFilter {
  label?: string;
  operatingPoint?: string;
  /** ISO 8601 bounds on createdAt, inclusive. */
  since?: string;
  until?: string;
  hasWarnings?: boolean;
  page?: number;
  limit?: number;
}

export interface HistoryPage {
  items: AuditRecord[];
  total: number;
  page: number;
  limit: number;
}

/** CXR_DB, else ~/.local/share/cxr/audit.db (XDG_DATA_HOME when set). */
export function defaultDbPath(): string {
  if (process.env.CXR_DB) return process.env.CXR_DB;
  const data = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(data, 'cxr', 'audit.db');
}

export class AuditLog {
  private readonly db: Database.Database;
  private readonly insertRow: Database.Statement;
  private readonly insertImages: Database.Statement;
  private readonly insertBoth: (r: AuditRecord, images: AuditImages | null) => void;

  private constructor(
    db: Database.Database,
    readonly file: string,
  ) {
    this.db = db;
    this.insertRow = db.prepare(INSERT_SQL);
    this.insertImages = db.prepare(
      'INSERT INTO prediction_images (prediction_id, thumbnail_png, heatmap_png) VALUES (?, ?, ?)',
    );
    this.insertBoth = db.transaction((r: AuditRecord, images: AuditImages | null) => {
      this.insertRow.run(toRow(r));
      if (images && (images.thumbnailPng || images.heatmapPng)) {
        this.insertImages.run(r.id, images.thumbnailPng ?? null, images.heatmapPng ?? null);
      }
    });
  }

  /** Opens (creating if needed) and migrates the log; `:memory:` works for tests. */
  static open(file: string, opts: { readonly?: boolean; mustExist?: boolean } = {}): AuditLog {
    if ((opts.readonly || opts.mustExist) && !fs.existsSync(file))
      throw new Error(`${file}: no audit log there (run 'cxr serve' first)`);
    if (file !== ':memory:' && !opts.readonly) fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
    try {
      db.pragma('busy_timeout = 5000');
      if (!opts.readonly) {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = FULL');
        db.pragma('foreign_keys = ON');
        migrate(db);
      } else {
        const v = db.pragma('user_version', { simple: true }) as number;
        if (v > SCHEMA_VERSION)
          throw new Error(`${file}: audit log schema v${v} is newer than this cxr (v${SCHEMA_VERSION})`);
        if (v < SCHEMA_VERSION)
          throw new Error(`${file}: audit log schema v${v} is older; open it once with 'cxr serve' to migrate`);
      }
      return new AuditLog(db, file);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  /** Commits the row (and images) durably; returns only once it is on disk. */
  insert(record: AuditRecord, images: AuditImages | null): void {
    this.insertBoth(record, images);
  }

  get(id: string): AuditRecord | null {
    const row = this.db.prepare('SELECT * FROM predictions WHERE id = ?').get(id) as AuditRow | undefined;
    return row ? fromRow(row) : null;
  }

  image(id: string, which: 'thumbnail' | 'heatmap'): Buffer | null {
    const col = which === 'thumbnail' ? 'thumbnail_png' : 'heatmap_png';
    const row = this.db.prepare(`SELECT ${col} AS png FROM prediction_images WHERE prediction_id = ?`).get(id) as
      | { png: Buffer | null }
      | undefined;
    return row?.png ?? null;
  }

  list(filter: HistoryFilter = {}): HistoryPage {
    const where: string[] = [];
    const args: Record<string, unknown> = {};
    if (filter.label) {
      where.push('label = @label');
      args.label = filter.label;
    }
    if (filter.operatingPoint) {
      where.push('operating_point = @op');
      args.op = filter.operatingPoint;
    }
    // created_at is stored as toISOString() (fixed width, UTC), so text order is time order.
    if (filter.since) {
      where.push('created_at >= @since');
      args.since = new Date(filter.since).toISOString();
    }
    if (filter.until) {
      where.push('created_at <= @until');
      args.until = new Date(filter.until).toISOString();
    }
    if (filter.hasWarnings !== undefined) where.push(filter.hasWarnings ? 'warning_count > 0' : 'warning_count = 0');
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const limit = Math.max(1, Math.min(1000, filter.limit ?? 50));
    const page = Math.max(1, filter.page ?? 1);
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM predictions ${clause}`).get(args) as { n: number }).n;
    const rows = this.db
      .prepare(`SELECT * FROM predictions ${clause} ORDER BY seq DESC LIMIT @limit OFFSET @offset`)
      .all({ ...args, limit, offset: (page - 1) * limit }) as AuditRow[];
    return { items: rows.map(fromRow), total, page, limit };
  }

  /**
   * Removes the heat maps and thumbnails of predictions made before `before` (ISO time); the
   * predictions themselves stay. Returns how many predictions lost their images.
   */
  pruneImages(before: string): number {
    const cutoff = new Date(before).toISOString();
    return this.db.transaction(() => {
      this.db
        .prepare(`DELETE FROM prediction_images WHERE prediction_id IN
        (SELECT id FROM predictions WHERE created_at < ?)`)
        .run(cutoff);
      return this.db
        .prepare(`UPDATE predictions SET has_heatmap = 0, has_thumbnail = 0
        WHERE created_at < ? AND (has_heatmap = 1 OR has_thumbnail = 1)`)
        .run(cutoff).changes;
    })();
  }

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM predictions').get() as { n: number }).n;
  }

  /** Checkpoints the WAL into the main file and closes; the next open finds a tidy database. */
  close(): void {
    if (!this.db.open) return;
    if (!this.db.readonly) this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`audit log schema v${current} is newer than this cxr understands (v${MIGRATIONS.length})`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
