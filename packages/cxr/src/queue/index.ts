// The job queue (BullMQ on Redis): `cxr enqueue` and POST /api/v1/jobs add jobs, `cxr worker`
// runs them (see docs/deployment.md, "Many workers").
export { queueApi, type QueueApi, type QueueApiOptions } from './api';
export {
  checkRedis,
  isRedisDown,
  loadRedisUrl,
  QUEUE_UNAVAILABLE,
  QueueUnavailableError,
  redactRedisUrl,
  redisConnection,
  RedisDatabaseError,
  type RedisRole,
  type RedisSources,
} from './connection';
export { type FilmRowStore, type FilmRowWritten, findFilmRow, insertFilmRow } from './film_rows';
export {
  AGE_OVER_BOUND,
  AGE_UNDER_BOUND,
  byteKeyOf,
  canonicalJobId,
  filmKeyOf,
  JobDataSchema,
  jobIdFor,
  JOB_ID_PATTERN,
  ORTHANC_JOB_PREFIX,
  parseJobData,
  parseJobResult,
  queueNameFor,
  resultKeyOf,
  type JobData,
  type JobResult,
  JobResultSchema,
} from './job';
export {
  DONE_CODES,
  FAILED_CODES,
  type FailedCode,
  type JobEnd,
  type JobObserver,
  type MetricsEndpoint,
  QUEUE_STATES,
  type QueueStates,
  queueStates,
  serveWorkerMetrics,
  WorkerMetrics,
} from './metrics';
export {
  type FailedJob,
  type JobContext,
  letGoOfFailed,
  processJob,
  type ResultStore,
} from './process';
export {
  countOutcome,
  emptyCounts,
  connectQueue,
  enqueue,
  type EnqueueCounts,
  type EnqueueOptions,
  type EnqueueOutcome,
  jobIdOf,
  type JobQueue,
  openQueue,
  type Priority,
  queueDepth,
  type QueueDepth,
} from './queue';
export {
  allInstances,
  checkInstance,
  enqueueFile,
  enqueueInstance,
  enqueueUpload,
  type InstanceCheck,
  type JobSpec,
  NotAFilmError,
  ORTHANC_AGE,
  queueInstance,
  syncHandler,
} from './sources';
export {
  auditLogError,
  CHANGED,
  countOtherFailure,
  DEFAULT_RETRY,
  filmRefused,
  isOutage,
  MAX_ATTEMPTS,
  nextRetryMs,
  OTHER_ATTEMPTS,
  otherFailuresOf,
  OUTAGE_BACKOFF,
  refusedCodeOf,
  refusedReason,
  refusedReasonParts,
  type RetriedJob,
  retryDelayMs,
  type RetryPolicy,
  UNREADABLE,
} from './retry';
export { UploadStore } from './uploads';
export { MIN_LOCK_DURATION_MS, type RunningWorker, startWorker, type WorkerOptions } from './worker';
