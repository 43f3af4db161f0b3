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

export interface AuditRecord {
  id: string;
  createdAt: string;
  input: { sha256: string; kind: string; bytes: number; width: number; height: number };
  model: { name: string; version: string; sha256: string };
  probability: number;
  logit: number;
  threshold: number;
  operatingPoint: string;
  label: string;
  warnings: string[];
  ood: { score: number; threshold: number; outOfDistribution: boolean } | null;
  /** Whether the heat map and thumbnail are stored in the log. */
  hasHeatmap: boolean;
  hasThumbnail: boolean;
  timings: { decodeMs: number; inferMs: number; heatmapMs?: number; totalMs: number };
  /** Wall time in the server from receiving the request to writing this row. */
  latencyMs: number;
  /** The name of the API token that asked; null when the server needs no token. */
  requestedBy: string | null;
}

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

interface Row {
  id: string; created_at: string; input_sha256: string; input_kind: string; input_bytes: number;
  width: number; height: number; model_name: string; model_version: string; model_sha256: string;
  probability: number; logit: number; threshold: number; operating_point: string; label: string;
  warnings: string; ood_score: number | null; ood_threshold: number | null; ood_flag: number | null;
  has_heatmap: number; has_thumbnail: number; decode_ms: number; infer_ms: number; heatmap_ms: number | null; total_ms: number;
  latency_ms: number; requested_by: string | null;
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

  private constructor(db: Database.Database, readonly file: string) {
    this.db = db;
    this.insertRow = db.prepare(`INSERT INTO predictions (id, created_at, input_sha256, input_kind, input_bytes,
        width, height, model_name, model_version, model_sha256, probability, logit, threshold, operating_point,
        label, warnings, warning_count, ood_score, ood_threshold, ood_flag, has_heatmap, has_thumbnail, decode_ms, infer_ms,
        heatmap_ms, total_ms, latency_ms, requested_by)
      VALUES (@id, @created_at, @input_sha256, @input_kind, @input_bytes, @width, @height, @model_name,
        @model_version, @model_sha256, @probability, @logit, @threshold, @operating_point, @label, @warnings,
        @warning_count, @ood_score, @ood_threshold, @ood_flag, @has_heatmap, @has_thumbnail, @decode_ms, @infer_ms, @heatmap_ms,
        @total_ms, @latency_ms, @requested_by)`);
    this.insertImages = db.prepare('INSERT INTO prediction_images (prediction_id, thumbnail_png, heatmap_png) VALUES (?, ?, ?)');
    this.insertBoth = db.transaction((r: AuditRecord, images: AuditImages | null) => {
      this.insertRow.run(toRow(r));
      if (images && (images.thumbnailPng || images.heatmapPng)) {
        this.insertImages.run(r.id, images.thumbnailPng ?? null, images.heatmapPng ?? null);
      }
    });
  }

  /** Opens (creating if needed) and migrates the log; `:memory:` works for tests. */
  static open(file: string, opts: { readonly?: boolean; mustExist?: boolean } = {}): AuditLog {
    if ((opts.readonly || opts.mustExist) && !fs.existsSync(file)) throw new Error(`${file}: no audit log there (run 'cxr serve' first)`);
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
        if (v > SCHEMA_VERSION) throw new Error(`${file}: audit log schema v${v} is newer than this cxr (v${SCHEMA_VERSION})`);
        if (v < SCHEMA_VERSION) throw new Error(`${file}: audit log schema v${v} is older; open it once with 'cxr serve' to migrate`);
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
    const row = this.db.prepare('SELECT * FROM predictions WHERE id = ?').get(id) as Row | undefined;
    return row ? fromRow(row) : null;
  }

  image(id: string, which: 'thumbnail' | 'heatmap'): Buffer | null {
    const col = which === 'thumbnail' ? 'thumbnail_png' : 'heatmap_png';
    const row = this.db.prepare(`SELECT ${col} AS png FROM prediction_images WHERE prediction_id = ?`).get(id) as
      { png: Buffer | null } | undefined;
    return row?.png ?? null;
  }

  list(filter: HistoryFilter = {}): HistoryPage {
    const where: string[] = [];
    const args: Record<string, unknown> = {};
    if (filter.label) { where.push('label = @label'); args.label = filter.label; }
    if (filter.operatingPoint) { where.push('operating_point = @op'); args.op = filter.operatingPoint; }
    // created_at is stored as toISOString() (fixed width, UTC), so text order is time order.
    if (filter.since) { where.push('created_at >= @since'); args.since = new Date(filter.since).toISOString(); }
    if (filter.until) { where.push('created_at <= @until'); args.until = new Date(filter.until).toISOString(); }
    if (filter.hasWarnings !== undefined) where.push(filter.hasWarnings ? 'warning_count > 0' : 'warning_count = 0');
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const limit = Math.max(1, Math.min(1000, filter.limit ?? 50));
    const page = Math.max(1, filter.page ?? 1);
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM predictions ${clause}`).get(args) as { n: number }).n;
    const rows = this.db.prepare(`SELECT * FROM predictions ${clause} ORDER BY seq DESC LIMIT @limit OFFSET @offset`)
      .all({ ...args, limit, offset: (page - 1) * limit }) as Row[];
    return { items: rows.map(fromRow), total, page, limit };
  }

  /**
   * Removes the heat maps and thumbnails of predictions made before `before` (ISO time); the
   * predictions themselves stay. Returns how many predictions lost their images.
   */
  pruneImages(before: string): number {
    const cutoff = new Date(before).toISOString();
    return this.db.transaction(() => {
      this.db.prepare(`DELETE FROM prediction_images WHERE prediction_id IN
        (SELECT id FROM predictions WHERE created_at < ?)`).run(cutoff);
      return this.db.prepare(`UPDATE predictions SET has_heatmap = 0, has_thumbnail = 0
        WHERE created_at < ? AND (has_heatmap = 1 OR has_thumbnail = 1)`).run(cutoff).changes;
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

function toRow(r: AuditRecord): Row & { warning_count: number } {
  return {
    id: r.id, created_at: r.createdAt, input_sha256: r.input.sha256, input_kind: r.input.kind,
    input_bytes: r.input.bytes, width: r.input.width, height: r.input.height, model_name: r.model.name,
    model_version: r.model.version, model_sha256: r.model.sha256, probability: r.probability, logit: r.logit,
    threshold: r.threshold, operating_point: r.operatingPoint, label: r.label, warnings: JSON.stringify(r.warnings),
    warning_count: r.warnings.length, ood_score: r.ood?.score ?? null, ood_threshold: r.ood?.threshold ?? null,
    ood_flag: r.ood ? Number(r.ood.outOfDistribution) : null, has_heatmap: Number(r.hasHeatmap),
    has_thumbnail: Number(r.hasThumbnail),
    decode_ms: r.timings.decodeMs, infer_ms: r.timings.inferMs, heatmap_ms: r.timings.heatmapMs ?? null,
    total_ms: r.timings.totalMs, latency_ms: r.latencyMs, requested_by: r.requestedBy ?? null,
  };
}

function fromRow(row: Row): AuditRecord {
  const timings: AuditRecord['timings'] = { decodeMs: row.decode_ms, inferMs: row.infer_ms, totalMs: row.total_ms };
  if (row.heatmap_ms !== null) timings.heatmapMs = row.heatmap_ms;
  return {
    id: row.id,
    createdAt: row.created_at,
    input: { sha256: row.input_sha256, kind: row.input_kind, bytes: row.input_bytes, width: row.width, height: row.height },
    model: { name: row.model_name, version: row.model_version, sha256: row.model_sha256 },
    probability: row.probability,
    logit: row.logit,
    threshold: row.threshold,
    operatingPoint: row.operating_point,
    label: row.label,
    warnings: JSON.parse(row.warnings) as string[],
    ood: row.ood_score === null ? null
      : { score: row.ood_score, threshold: row.ood_threshold ?? 0, outOfDistribution: row.ood_flag === 1 },
    hasHeatmap: row.has_heatmap === 1,
    hasThumbnail: row.has_thumbnail === 1,
    timings,
    latencyMs: row.latency_ms,
    requestedBy: row.requested_by ?? null,
  };
}
