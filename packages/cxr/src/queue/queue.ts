// The producer side: opening the queue, adding jobs (deduplicated by their result id) and how
// deep the queue is. Jobs are kept after they finish, so that queueing the same film again finds
// the finished job instead of predicting it twice.
import { type Job, Queue } from 'bullmq';
import { checkRedis, redisConnection } from './connection';
import { type JobData, jobIdFor, queueNameFor } from './job';
import { MAX_ATTEMPTS, OUTAGE_BACKOFF } from './retry';

export type Priority = 'low' | 'normal';

/** BullMQ priorities: a lower number is served first. A backfill must not delay new films. */
const PRIORITY: Record<Priority, number> = { normal: 1, low: 100 };

/** How long finished jobs (and their results) stay in Redis; the audit log keeps them for good. */
const KEEP_COMPLETED_S = 7 * 24 * 3600;
const KEEP_FAILED_S = 30 * 24 * 3600;

export type JobQueue = Queue<JobData, unknown, 'predict'>;

/** The queue of the model with this sha256. */
export function openQueue(redisUrl: string, modelSha256: string): JobQueue {
  return new Queue<JobData, unknown, 'predict'>(queueNameFor(modelSha256), { connection: redisConnection(redisUrl) });
}

/**
 * The queue, once Redis answers (connection.ts checkRedis): BullMQ's connections retry for ever (a worker
 * rides out a Redis restart that way), so a command started against a Redis that is not there would otherwise
 * wait without a word.
 */
export async function connectQueue(redisUrl: string, modelSha256: string): Promise<JobQueue> {
  await checkRedis(redisUrl);
  return openQueue(redisUrl, modelSha256);
}

/** What happened to one film offered to the queue. */
export type EnqueueOutcome = 'queued' | 'already-queued' | 'already-done' | 'requeued';

export interface EnqueueCounts {
  /** New jobs. */
  queued: number;
  /** A job for the same result is waiting or running. */
  alreadyQueued: number;
  /** A job for the same result has finished: its result stands. */
  alreadyDone: number;
  /** A job for the same result had failed: it was retried. */
  requeued: number;
}

export function emptyCounts(): EnqueueCounts {
  return { queued: 0, alreadyQueued: 0, alreadyDone: 0, requeued: 0 };
}

export function countOutcome(c: EnqueueCounts, o: EnqueueOutcome): void {
  if (o === 'queued') c.queued++;
  else if (o === 'already-queued') c.alreadyQueued++;
  else if (o === 'already-done') c.alreadyDone++;
  else c.requeued++;
}

/** The job id of `data`: its result key, model and operating point. */
export function jobIdOf(data: JobData): string {
  return jobIdFor(data.resultKey, data.model.sha256, data.operatingPoint);
}

/**
 * Adds the job unless one with its id exists: a waiting or running one is left alone, a finished
 * one stands, a failed one is retried. Safe when several producers offer the same film at once
 * (BullMQ adds one job per id).
 */
export async function enqueue(
  queue: JobQueue,
  data: JobData,
  priority: Priority = 'normal',
): Promise<{ id: string; outcome: EnqueueOutcome }> {
  const id = jobIdOf(data);
  const existing = (await queue.getJob(id)) as Job<JobData> | undefined;
  if (existing) {
    const state = await existing.getState();
    if (state === 'completed') return { id, outcome: 'already-done' };
    if (state === 'failed') {
      // A fresh count: the retries of an outage start over (retry.ts), as for a new job.
      await existing.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return { id, outcome: 'requeued' };
    }
    if (state !== 'unknown') return { id, outcome: 'already-queued' };
  }
  await queue.add('predict', data, {
    jobId: id,
    priority: PRIORITY[priority],
    // The audit log, the PACS or the network being away is retried until it is back, with the
    // worker's backoff (retry.ts); a film that cannot be read is not (the worker marks those
    // unrecoverable).
    attempts: MAX_ATTEMPTS,
    backoff: { type: OUTAGE_BACKOFF },
    // BullMQ keeps every failed attempt's stack in the job: a day of retries would hold ~300 of them per
    // job in Redis, for each film of a backfill. The last few say what went wrong.
    stackTraceLimit: 3,
    removeOnComplete: { age: KEEP_COMPLETED_S },
    removeOnFail: { age: KEEP_FAILED_S },
  });
  return { id, outcome: 'queued' };
}

export interface QueueDepth {
  /** Waiting to start (incl. prioritized and delayed retries). */
  waiting: number;
  active: number;
  completed: number;
  /** Failed for good (kept 30 days): a film that cannot be read, or an outage longer than the retries. */
  failed: number;
}

/** Jobs per state; for /metrics (branch ops) and `cxr enqueue --json`. */
export async function queueDepth(queue: JobQueue): Promise<QueueDepth> {
  const c = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed');
  return {
    waiting: (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0),
    active: c.active ?? 0,
    completed: c.completed ?? 0,
    failed: c.failed ?? 0,
  };
}
