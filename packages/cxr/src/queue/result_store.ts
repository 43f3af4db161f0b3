// The workers' audit store: the audit log (serve/audit.ts, the one `cxr serve` and `cxr history`
// use), plus which row answers which result key, so that a job run twice writes one row.
//
// Interim: a side table in the same SQLite file, written in the same transaction as the row,
// until the audit store has insertOnce/findByResultKey itself (branch pgaudit).
import Database from 'better-sqlite3';
import { AuditLog, type AuditImages } from '../serve/audit';
import { type AuditRow, fromRow, INSERT_SQL, toRow } from '../serve/audit_columns';
import type { AuditRecord } from '../predict/prediction_schema';
import type { ResultStore } from './process';

export interface ClosableResultStore extends ResultStore {
  readonly location: string;
  count(): Promise<number>;
  close(): Promise<void>;
}

export function openResultStore(file: string): ClosableResultStore {
  AuditLog.open(file).close(); // creates and migrates the log as cxr serve would
  const db = new Database(file);
  db.pragma('busy_timeout = 10000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`CREATE TABLE IF NOT EXISTS queue_results (
    result_key TEXT NOT NULL, model_sha256 TEXT NOT NULL, operating_point TEXT NOT NULL,
    prediction_id TEXT NOT NULL REFERENCES predictions (id),
    PRIMARY KEY (result_key, model_sha256, operating_point))`);
  const insertRow = db.prepare(INSERT_SQL);
  const insertImages = db.prepare(
    'INSERT INTO prediction_images (prediction_id, thumbnail_png, heatmap_png) VALUES (?, ?, ?)',
  );
  const insertKey = db.prepare(
    'INSERT INTO queue_results (result_key, model_sha256, operating_point, prediction_id) VALUES (?, ?, ?, ?)',
  );
  const hasKey = db.prepare(
    'SELECT 1 FROM queue_results WHERE result_key = ? AND model_sha256 = ? AND operating_point = ?',
  );
  const find = db.prepare(`SELECT p.* FROM queue_results q JOIN predictions p ON p.id = q.prediction_id
    WHERE q.result_key = ? AND q.model_sha256 = ? AND q.operating_point = ?`);
  const once = db.transaction((r: AuditRecord, images: AuditImages | null, key: string): 'inserted' | 'exists' => {
    // Run as BEGIN IMMEDIATE: the write lock is held from the check on, so two workers cannot both insert.
    if (hasKey.get(key, r.model.sha256, r.operatingPoint)) return 'exists';
    insertRow.run(toRow(r));
    if (images && (images.thumbnailPng || images.heatmapPng))
      insertImages.run(r.id, images.thumbnailPng ?? null, images.heatmapPng ?? null);
    insertKey.run(key, r.model.sha256, r.operatingPoint, r.id);
    return 'inserted';
  });
  return {
    location: file,
    insertOnce: async (r, images, key) => once.immediate(r, images, key),
    findByResultKey: async (key, model, op) => {
      const row = find.get(key, model, op) as AuditRow | undefined;
      return row ? fromRow(row) : null;
    },
    count: async () => (db.prepare('SELECT COUNT(*) AS n FROM predictions').get() as { n: number }).n,
    close: async () => {
      if (db.open) db.close();
    },
  };
}
