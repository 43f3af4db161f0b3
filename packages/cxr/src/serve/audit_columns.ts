// The audit table's columns and the record field each one holds: the one place where the SQL
// names meet the names of predict/prediction_schema.ts. Rows are written and read through this
// table alone, and the compiler refuses a record field without a column (and a column naming a
// field the schema lacks), so the log cannot silently drop a field of the prediction.
import { type AuditRecord, auditRecordSchema } from '../predict/prediction_schema';

/** How a field is stored: as is (text, number), 0/1 (bool), or JSON text (json). */
type Storage = 'value' | 'bool' | 'json';

/** Dotted paths to the scalar and array fields of T ('input.sha256', 'warnings'). */
type LeafPath<T, P extends string = ''> = {
  [K in keyof T & string]-?: NonNullable<T[K]> extends readonly unknown[] | string | number | boolean
    ? `${P}${K}`
    : LeafPath<NonNullable<T[K]>, `${P}${K}.`>;
}[keyof T & string];

interface Column {
  column: string;
  field: LeafPath<AuditRecord>;
  as: Storage;
}

/** column ↔ field. A NULL column is an absent optional field, or a null one (ood: all three NULL). */
export const COLUMNS = [
  { column: 'id', field: 'id', as: 'value' },
  { column: 'created_at', field: 'createdAt', as: 'value' },
  { column: 'input_sha256', field: 'input.sha256', as: 'value' },
  { column: 'input_kind', field: 'input.kind', as: 'value' },
  { column: 'input_bytes', field: 'input.bytes', as: 'value' },
  { column: 'width', field: 'input.width', as: 'value' },
  { column: 'height', field: 'input.height', as: 'value' },
  { column: 'model_name', field: 'model.name', as: 'value' },
  { column: 'model_version', field: 'model.version', as: 'value' },
  { column: 'model_sha256', field: 'model.sha256', as: 'value' },
  { column: 'probability', field: 'probability', as: 'value' },
  { column: 'logit', field: 'logit', as: 'value' },
  { column: 'threshold', field: 'threshold', as: 'value' },
  { column: 'operating_point', field: 'operatingPoint', as: 'value' },
  { column: 'label', field: 'label', as: 'value' },
  { column: 'warnings', field: 'warnings', as: 'json' },
  { column: 'ood_score', field: 'ood.score', as: 'value' },
  { column: 'ood_threshold', field: 'ood.threshold', as: 'value' },
  { column: 'ood_flag', field: 'ood.outOfDistribution', as: 'bool' },
  { column: 'has_heatmap', field: 'hasHeatmap', as: 'bool' },
  { column: 'has_thumbnail', field: 'hasThumbnail', as: 'bool' },
  { column: 'decode_ms', field: 'timings.decodeMs', as: 'value' },
  { column: 'infer_ms', field: 'timings.inferMs', as: 'value' },
  { column: 'heatmap_ms', field: 'timings.heatmapMs', as: 'value' },
  { column: 'total_ms', field: 'timings.totalMs', as: 'value' },
  { column: 'latency_ms', field: 'latencyMs', as: 'value' },
  { column: 'requested_by', field: 'requestedBy', as: 'value' },
  { column: 'result_key', field: 'resultKey', as: 'value' },
  { column: 'verdict_status', field: 'verdict.status', as: 'value' },
  { column: 'verdict_reasons', field: 'verdict.reasons', as: 'json' },
] as const satisfies readonly Column[];

// Compile-time: every field of the record has a column (this line fails to build otherwise).
type Unmapped = Exclude<LeafPath<AuditRecord>, (typeof COLUMNS)[number]['field']>;
const everyFieldHasAColumn: [Unmapped] extends [never] ? true : Unmapped = true;
void everyFieldHasAColumn;

type SqlValue = string | number | null;
export type AuditRow = Record<(typeof COLUMNS)[number]['column'], SqlValue>;

/** Written alongside the columns, never read back: lets history filter on warnings in SQL. */
const DERIVED = { warning_count: (r: AuditRecord): number => r.warnings.length };

const written = [...COLUMNS.map((c) => c.column), ...Object.keys(DERIVED)];
export const INSERT_SQL =
  `INSERT INTO predictions (${written.join(', ')}) ` + `VALUES (${written.map((c) => `@${c}`).join(', ')})`;

type Json = { [k: string]: unknown };

export function toRow(r: AuditRecord): Record<string, SqlValue> {
  const row: Record<string, SqlValue> = {};
  for (const c of COLUMNS) {
    const v = c.field
      .split('.')
      .reduce<unknown>((o, k) => (o === null || o === undefined ? undefined : (o as Json)[k]), r);
    row[c.column] =
      v === undefined || v === null
        ? null
        : c.as === 'bool'
          ? Number(v)
          : c.as === 'json'
            ? JSON.stringify(v)
            : (v as SqlValue);
  }
  for (const [column, f] of Object.entries(DERIVED)) row[column] = f(r);
  return row;
}

export function fromRow(row: AuditRow): AuditRecord {
  const out: Json = {};
  for (const c of COLUMNS) {
    const v = row[c.column];
    if (v === null) continue;
    const keys = c.field.split('.');
    const leaf = keys.pop()!;
    let o = out;
    for (const k of keys) o = (o[k] ??= {}) as Json;
    o[leaf] = c.as === 'bool' ? v === 1 : c.as === 'json' ? jsonCell(row.id, c.column, v) : v;
    const allowed = schemaAt(c.field).enum;
    if (allowed && !allowed.includes(v)) {
      throw new Error(`audit log row ${row.id}: ${c.column} is '${v}', not one of ${allowed.join(', ')}`);
    }
  }
  // A field that may be null (ood, requestedBy, resultKey) is null when its columns are.
  for (const [name, s] of Object.entries(auditRecordSchema.properties)) {
    if (!(name in out) && Array.isArray(s.type) && (s.type as readonly string[]).includes('null')) out[name] = null;
  }
  // Built column by column from the table above, which covers every field (checked at compile time).
  return out as AuditRecord;
}

/** A JSON column's value: a cell changed outside cxr is an error naming the row and column, as an enum's is. */
function jsonCell(id: SqlValue, column: string, v: SqlValue): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(String(v));
  } catch {
    throw new Error(`audit log row ${id}: ${column} is not JSON (the row was changed outside cxr)`);
  }
  // Both JSON columns hold arrays (warnings, verdict reasons).
  if (!Array.isArray(parsed)) throw new Error(`audit log row ${id}: ${column} is not a JSON array`);
  return parsed;
}

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  enum?: readonly unknown[];
  type?: unknown;
}

function schemaAt(field: string): SchemaNode {
  return field.split('.').reduce<SchemaNode>((s, k) => s.properties?.[k] ?? {}, auditRecordSchema as SchemaNode);
}
