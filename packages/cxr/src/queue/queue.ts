// The producer side: opening the queue, adding jobs (deduplicated by their result id) and how
// deep the queue is. Jobs are kept after they finish, so that queueing the same film again finds
// the finished job instead of predicting it twice; unless the caller found the job's results missing
// (an Orthanc film whose SR or SC is not in the PACS): then the finished job is replaced by a new one.
// A producer's calls fail within a bound while Redis is away (connection.ts), as QueueUnavailableError.
import { type Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { LATE, orLate } from '../deadline';
import {
  checkRedis,
  QueueUnavailableError,
  queueCallError,
  redactRedisUrl,
  redisConnection,
  redisDatabase,
  selectDatabase,
} from './connection';
import { byteKeyOf, type JobData, jobIdFor, queueNameFor } from './job';
import { retryWithData } from './requeue';
import { MAX_ATTEMPTS, OUTAGE_BACKOFF } from './retry';

export type Priority = 'low' | 'normal';

/** BullMQ priorities: a lower number is served first. A backfill must not delay new films. */
const PRIORITY: Record<Priority, number> = { normal: 1, low: 100 };

/** How long finished jobs (and their results) stay in Redis; the audit log keeps them for good. */
const KEEP_COMPLETED_S = 7 * 24 * 3600;
const KEEP_FAILED_S = 30 * 24 * 3600;

export type JobQueue = Queue<JobData, unknown, 'predict'>;

/**
 * How long one producer operation (an enqueue, a depth) waits for Redis: it answers in milliseconds when it is
 * there. Past it the operation fails (QueueUnavailableError); its commands may still run once Redis is back,
 * which is safe (a job id is added once).
 */
export const PRODUCER_WAIT_MS = 5_000;
/** How long closing a producer's queue waits for Redis to take its QUIT before dropping the connection. */
const CLOSE_WAIT_MS = 2_000;

/**
 * Where each queue's Redis is (password hidden), and the last error of its connection (refused, a wrong
 * password...): for the errors of its calls, which ioredis words as "max retries reached". `selected`: the
 * URL's database, selected once on the queue's connection before its first call (see databaseSelected).
 */
interface QueueRedis {
  where: string;
  lastError: string | null;
  select: () => Promise<void>;
  selected: Promise<void> | null;
}
const REDIS = new WeakMap<object, QueueRedis>();

class ProducerQueue extends Queue<JobData, unknown, 'predict'> {
  /**
   * Never throws, and never waits long. A Redis that is away cannot take the QUIT (ioredis holds it behind
   * the calls that failed, until Redis is back): then the connection is dropped at once, or after
   * CLOSE_WAIT_MS when Redis accepts and does not answer. A command stopping on SIGTERM while Redis is gone
   * stops then, instead of failing or hanging in its last step.
   */
  override async close(): Promise<void> {
    const client = await orLate(this.client, CLOSE_WAIT_MS).catch(() => LATE);
    if (typeof client !== 'symbol' && client.status !== 'ready') {
      client.disconnect();
      return;
    }
    const closing = super.close().catch(() => {});
    if ((await orLate(closing, CLOSE_WAIT_MS)) === LATE)
      await orLate(
        this.disconnect().catch(() => {}),
        500,
      );
  }
}

/** The queue of the model with this sha256, with a producer's connection (connection.ts). */
export function openQueue(redisUrl: string, modelSha256: string): JobQueue {
  const queue = new ProducerQueue(queueNameFor(modelSha256), { connection: redisConnection(redisUrl, 'producer') });
  const redis: QueueRedis = {
    where: redactRedisUrl(redisUrl),
    lastError: null,
    // Database 0 always exists; another number is selected by the caller itself (connection.ts redisConnection).
    select:
      redisDatabase(redisUrl) === 0
        ? async () => {}
        : // BullMQ's client is a proxy over the ioredis one, whose commands it has, SELECT included.
          async () => selectDatabase((await queue.client) as unknown as Pick<Redis, 'select'>, redisUrl),
    selected: null,
  };
  REDIS.set(queue, redis);
  // Kept for the next call's error rather than logged: a producer says it when a call fails (onRedis).
  queue.on('error', (e: Error) => {
    redis.lastError = e.message;
  });
  queue.client.then(
    (c) =>
      c.on('ready', () => {
        redis.lastError = null;
      }),
    () => {},
  );
  return queue;
}

/**
 * `work` on `queue`'s Redis, within PRODUCER_WAIT_MS; a failure because Redis is away is thrown as
 * QueueUnavailableError, naming it.
 */
export async function onRedis<T>(queue: JobQueue, work: () => Promise<T>): Promise<T> {
  const redis = REDIS.get(queue);
  const where = redis?.where ?? 'its configured URL';
  const cause = (e: unknown) =>
    redis?.lastError && !(e instanceof Error && e.name === 'ReplyError') ? new Error(redis.lastError) : e;
  let r: T | typeof LATE;
  try {
    r = await orLate(databaseSelected(redis).then(work), PRODUCER_WAIT_MS);
  } catch (e) {
    throw queueCallError(where, e, cause(e));
  }
  if (r === LATE) {
    throw new QueueUnavailableError(where, cause(new Error(`no answer within ${PRODUCER_WAIT_MS / 1000} s`)));
  }
  return r;
}

/**
 * The URL's database, selected on the queue's connection before its first call, the answer kept once it is a
 * success: a Redis without that database (redis://.../99 on one with 16) fails every call with RedisDatabaseError
 * rather than have the first ones run in database 0 (cxr serve starts without checking Redis, and a worker's
 * connection is not this one). A failure is asked again by the next call: Redis may only have been away.
 */
function databaseSelected(redis: QueueRedis | undefined): Promise<void> {
  if (!redis) return Promise.resolve();
  redis.selected ??= redis.select().catch((e: unknown) => {
    redis.selected = null;
    throw e;
  });
  return redis.selected;
}

/** databaseSelected for the callers that use the queue's connection directly (uploads.ts, api.ts reads). */
export function redisSelected(queue: JobQueue): Promise<void> {
  return databaseSelected(REDIS.get(queue));
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

/**
 * The job id of `data`: its film, model and operating point, and whether its results go to the PACS. An upload's
 * film is its bytes (their sha256 is its source), a file's too when `filmSha256` gives them (enqueueFile does):
 * two films with one SOP Instance UID are two jobs (job.ts). An Orthanc job's is the UID (one instance per UID).
 */
export function jobIdOf(data: JobData, filmSha256?: string): string {
  const { source } = data;
  const sha = source.kind === 'upload' ? source.sha256 : source.kind === 'file' ? filmSha256 : undefined;
  const key = sha ? byteKeyOf(data.resultKey, sha) : data.resultKey;
  return jobIdFor(key, data.model.sha256, data.operatingPoint, source.kind);
}

export interface EnqueueOptions {
  /**
   * The caller looked where the job's results go (the PACS) and found them missing: a finished job of the same
   * id (its results deleted since) does not count as done, and is replaced by this one.
   */
  resultsMissing?: boolean;
  /** A file job's film: the sha256 of its bytes, for its job id (jobIdOf). */
  filmSha256?: string;
}

/** States in which a job will still run (or is running). */
const LIVE = new Set(['waiting', 'prioritized', 'delayed', 'active', 'waiting-children', 'paused']);

/**
 * An Orthanc job for the same film that a cxr before the `orthanc-` job ids queued, and that is still to run:
 * it stores the results as a new one would. A finished one is not looked for: it is the job id that the file
 * and upload jobs of the film share, so its being done says nothing of the PACS.
 */
async function liveLegacyOrthancJob(queue: JobQueue, data: JobData): Promise<string | null> {
  const id = jobIdFor(data.resultKey, data.model.sha256, data.operatingPoint);
  const job = (await queue.getJob(id)) as Job<JobData> | undefined;
  if (job?.data?.source?.kind !== 'orthanc') return null;
  return LIVE.has(await job.getState()) ? id : null;
}

/**
 * Adds the job unless one with its id exists: a waiting or running one is left alone, a finished one stands
 * (unless `opts.resultsMissing`: then it is replaced), a failed one is retried (requeue.ts), at the more urgent
 * of its own priority and `priority`. Safe when several producers offer the same film at once (BullMQ adds one
 * job per id). While Redis is away it throws QueueUnavailableError within seconds.
 */
export function enqueue(
  queue: JobQueue,
  data: JobData,
  priority: Priority = 'normal',
  opts: EnqueueOptions = {},
): Promise<{ id: string; outcome: EnqueueOutcome }> {
  return onRedis(queue, () => addOnce(queue, data, priority, opts));
}

/** The job moved between our reading its state and acting on it: read it again. */
const RACED = Symbol('raced');

/**
 * What the job already under `id` means for this offer: an outcome; 'absent' (none: add one), 'gone' (one was
 * there, removed now or vanishing: add one), or RACED.
 */
async function takeExisting(
  queue: JobQueue,
  id: string,
  data: JobData,
  priority: Priority,
  opts: EnqueueOptions,
): Promise<{ id: string; outcome: EnqueueOutcome } | 'absent' | 'gone' | typeof RACED> {
  const existing = (await queue.getJob(id)) as Job<JobData> | undefined;
  if (!existing) return 'absent';
  const state = await existing.getState();
  if (state === 'completed') {
    if (!opts.resultsMissing) return { id, outcome: 'already-done' };
    // Replaced, not retried: the film may have another Orthanc id now (stored again after a deletion), and
    // the new job carries it. A job removed and added again meanwhile by another producer is one job still.
    // 0: locked, i.e. another producer's replacement is running on a worker already.
    return (await queue.remove(id)) === 1 ? 'gone' : RACED;
  }
  if (state === 'failed') {
    return (await retryWithData(queue, existing, data, PRIORITY[priority])) ? { id, outcome: 'requeued' } : RACED;
  }
  return state === 'unknown' ? 'gone' : { id, outcome: 'already-queued' };
}

async function addOnce(
  queue: JobQueue,
  data: JobData,
  priority: Priority,
  opts: EnqueueOptions,
): Promise<{ id: string; outcome: EnqueueOutcome }> {
  const id = jobIdOf(data, opts.filmSha256);
  // Two producers offering the same finished film at once both read its state, and the second to act finds the
  // job moved by the first: it reads the job again (then waiting or running: already queued) instead of failing.
  let found = await takeExisting(queue, id, data, priority, opts);
  if (found === RACED) found = await takeExisting(queue, id, data, priority, opts);
  // Moved under us twice: other producers are re-queueing it this very moment, so it is queued.
  if (found === RACED) return { id, outcome: 'already-queued' };
  if (typeof found === 'object') return found;
  if (found === 'absent' && data.source.kind === 'orthanc') {
    const legacy = await liveLegacyOrthancJob(queue, data);
    if (legacy) return { id: legacy, outcome: 'already-queued' };
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
  const c = await onRedis(queue, () =>
    queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed'),
  );
  return {
    waiting: (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0),
    active: c.active ?? 0,
    completed: c.completed ?? 0,
    failed: c.failed ?? 0,
  };
}
