// The job queue (BullMQ on Redis): `cxr enqueue` and POST /api/v1/jobs add jobs, `cxr worker`
// runs them (see docs/deployment.md, "Many workers").
export { queueApi, type QueueApi, type QueueApiOptions } from './api';
export { checkRedis, loadRedisUrl, redactRedisUrl, redisConnection, type RedisSources } from './connection';
export {
  AGE_OVER_BOUND,
  canonicalJobId,
  filmKeyOf,
  JobDataSchema,
  jobIdFor,
  JOB_ID_PATTERN,
  parseJobData,
  queueNameFor,
  resultKeyOf,
  type JobData,
} from './job';
export {
  type FailedJob,
  type JobContext,
  type JobResult,
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
  enqueueFile,
  enqueueInstance,
  enqueueUpload,
  type JobSpec,
  NotAFilmError,
  ORTHANC_AGE,
  syncHandler,
} from './sources';
export {
  auditLogError,
  DEFAULT_RETRY,
  isOutage,
  MAX_ATTEMPTS,
  nextRetryMs,
  OTHER_ATTEMPTS,
  OUTAGE_BACKOFF,
  type RetriedJob,
  retryDelayMs,
  type RetryPolicy,
} from './retry';
export { UploadStore } from './uploads';
export { type RunningWorker, startWorker, type WorkerOptions } from './worker';
