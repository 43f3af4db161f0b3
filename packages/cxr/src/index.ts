// The library API of @cxr/app: what a program needs to use cxr without its command line.
// Everything here is also what the CLI commands call, so a program and `cxr` compute the same numbers.
//
//   import { Predictor } from '@cxr/app';
//   const predictor = await Predictor.load('/path/to/cxr/models/default'); // the package carries no model
//   const p = await predictor.predict(fs.readFileSync('film.dcm'), { heatmap: true });
//   console.log(p.verdict.status, p.probability, p.label);
//
// dcmjs ships no types: its declarations (dicom_out/dcmjs.d.ts) are referenced here so that this file's emitted
// declarations carry them to a program that compiles against them (else dcmjs's types are `any` there, or
// TS7016 without skipLibCheck). tsc writes the path relative to dist/src, pointing at the shipped src file.
/// <reference path="./dicom_out/dcmjs.d.ts" preserve="true" />
// What a program that only predicts needs; also its own, lighter entry `@cxr/app/predict` (predict_entry.ts).
export * from './predict_entry';
// The audit log `cxr serve`, `cxr predict` and the queue's workers write, and the record of one prediction as
// they write it. A row keeps the model's label of every answer: show it through shownLabel, as `cxr history`
// and the API do (none for a cannot-assess answer).
export {
  openAuditStore,
  defaultDbPath,
  type AuditImages,
  type AuditOpenOptions,
  type AuditRecord,
  type AuditStore,
  type HistoryFilter,
  type HistoryPage,
} from './serve/audit';
// AuditUnavailableError: what an open store's calls reject with while the log is away (PostgreSQL down, a disk
// full, a read-only file); `code` AUDIT_UNAVAILABLE, worth a retry later.
export { AuditCloseError, AuditStoreOpenError, AuditUnavailableError } from './serve/audit_store';
export { auditRecordOf, type AuditRecordContext } from './predict/audit_record';
// The HTTP API and page of `cxr serve` (docs/api.md), with its options (apiToken, tokens...).
export { startServer, type RunningServer, type ServerOptions } from './serve/server';
// The logger startServer's `log` takes: its level, and `destination` ({ write(line) }) for a program's own log.
export { createLogger, type CreateLoggerOptions, type Logger, type LogLevel } from './log';
export { buildApp, defaultWebDir, type AppOptions } from './serve/app';
export { ApiTokenError, type ApiTokenErrorCode, type NamedToken } from './serve/auth';
// A bad trustProxy list (startServer, buildApp): `code` is 'BAD_TRUST_PROXY'.
export { TrustProxyError } from './serve/trust_proxy';
export type { ServePredictor } from './serve/predictor_port';
export { loadModel, readMeta, type LoadedModel } from './models/io';
export { ModelMeta, parseMeta } from './models/metadata';
export { evaluate, type Metrics } from './eval';
export {
  runEvaluation,
  type EvaluateRunOptions,
  type EvaluationResult,
  type ScoredFilms,
  type UnreadableFile,
} from './cli/evaluate_run';
// What runEvaluation refuses with besides ModelLoadError and DatasetLayoutError: `code` says which refusal.
export { EvaluationRefused, type EvaluationRefusedCode } from './cli/evaluation_refused';
export type { SetAsideFiles } from './eval/metrics_schema';
export { runTraining, resolveRecipe, type RunOptions } from './train/run';
export type { TrainResult } from './train/trainer';
export { RECIPES, DEFAULT_RECIPE } from './train/presets';
export { recalibrate } from './train/calibrate';
export { runRobustness } from './robustness/run';
export { adaptModel, AdaptRefused } from './adapt/adapt';
// Hospital integration: results written back as DICOM (SR + Secondary Capture), and the job queue
// (BullMQ on Redis) that `cxr enqueue` / `cxr worker` use, for programs that feed archives to it.
export { buildResults, buildSr, buildSecondaryCapture, readSource, type SourceImage } from './dicom_out';
export { SourceError, type SourceErrorCode } from './dicom_out/source';
export type { DicomObject, ResultInput, ResultModel } from './dicom_out/result';
export {
  enqueueFile,
  openQueue,
  queueDepth,
  redisConnection,
  startWorker,
  QueueUnavailableError,
  UploadStore,
  type EnqueueOutcome,
  type JobContext,
  type JobQueue,
  type JobSpec,
  type Priority,
  type ResultStore,
  type RunningWorker,
  type WorkerOptions,
} from './queue';
export type { WorkerContext } from './queue/worker';
