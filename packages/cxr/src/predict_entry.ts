// The package's lighter entry, `@cxr/app/predict`, for a program that only predicts.
// It holds the Predictor, its errors and types, batch prediction and decoding in worker threads, without the server
// (fastify), the audit log's drivers (pg, better-sqlite3) or the queue (bullmq, ioredis) that the full entry
// (index.ts) loads with them: about 0.7 s on an idle machine and seconds on a busy one, for a program that never
// uses them (test/package-predict-entry.test.ts).
// The full entry re-exports all of this, so a value is the same object from either (instanceof holds).
//
//   import { Predictor, InputError } from '@cxr/app/predict';
export { initEngine } from './engine';
export { defaultModelDir } from './paths';
export {
  Predictor,
  type OodPolicy,
  type Prediction,
  type PredictOptions,
  type PredictorOptions,
  type Screening,
} from './predict/predictor';
export { InputError, PredictorDisposedError, type InputErrorCode, type InputErrorStatus } from './predict/errors';
export { ModelLoadError, type ModelLoadErrorCode } from './models/load_error';
export { DatasetLayoutError, type DatasetLayoutErrorCode } from './data/dataset';
export type { DecodeLimits } from './data/decode';
export type { InputDecoder } from './predict/decode_input';
// Decoding in worker threads (Predictor.decodeIn), so a slow film does not hold the program's event loop.
export { createDecodePool, type DecodePool, type DecodePoolOptions } from './serve/decode_pool';
export type { DecoderPool } from './predict/predictor';
export {
  shownLabel,
  VERDICT_REASON_CODES,
  type AnswerAge,
  type Verdict,
  type VerdictReason,
  type VerdictReasonCode,
  type VerdictStatus,
} from './predict/verdict';
export { AGE_SOURCES, type PredictionLabel } from './predict/prediction_schema';
export {
  runBatch,
  expandPaths,
  type BatchOptions,
  type BatchResult,
  type BatchRow,
  type BatchJob,
} from './predict/batch';
