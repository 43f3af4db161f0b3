// The audit row of one prediction, built in one place for every way a prediction is made: the
// server's POST /predictions, `cxr predict` and the queue's workers write the same fields.
import * as crypto from 'node:crypto';
import type { AuditRecord, PredictionResult } from './prediction_schema';

export interface AuditRecordContext {
  model: { name: string; version: string; sha256: string };
  /** Wall time from receiving the input to writing the row. */
  latencyMs: number;
  /** The API token's name; null from the command line or a server without tokens. */
  requestedBy: string | null;
  /** Whether the heat map / thumbnail are stored with the row. */
  hasHeatmap?: boolean;
  hasThumbnail?: boolean;
  /** The queue's result key (SOP Instance UID, else sha256:<hex>); null for a direct prediction. */
  resultKey?: string | null;
}

export function auditRecordOf(r: PredictionResult, c: AuditRecordContext): AuditRecord {
  return {
    id: crypto.randomUUID(),
    createdAt: new Date().toISOString(),
    input: r.input,
    model: { name: c.model.name, version: c.model.version, sha256: c.model.sha256 },
    probability: r.probability,
    logit: r.logit,
    threshold: r.threshold,
    operatingPoint: r.operatingPoint,
    // The log keeps the model's label of every answer in a column that takes no NULL (prediction_schema.ts
    // storedLabelSchema); readers show none for a cannot-assess answer (verdict.ts shownLabel).
    label: r.label ?? (r.probability >= r.threshold ? 'PNEUMONIA' : 'NORMAL'),
    warnings: r.warnings,
    ood: r.ood,
    hasHeatmap: c.hasHeatmap ?? false,
    hasThumbnail: c.hasThumbnail ?? false,
    timings: r.timings,
    latencyMs: c.latencyMs,
    requestedBy: c.requestedBy,
    resultKey: c.resultKey ?? null,
    verdict: r.verdict,
  };
}
