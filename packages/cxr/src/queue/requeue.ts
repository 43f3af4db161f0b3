// Retrying a failed job that a producer offers again (queue.ts takeExisting), in one Redis transaction: the offer's
// data, BullMQ's own retry, and the job put back at its priority, which BullMQ's retry of a failed job ignores.
import type { IRedisTransaction, Job, Queue } from 'bullmq';
import type { JobData } from './job';

/** queue.ts's JobQueue, spelled out here: importing it would make the two modules import each other. */
type JobQueue = Queue<JobData, unknown, 'predict'>;

/**
 * Sets a failed job's data and progress only while it is still failed, in one script: the condition of the
 * transaction in retryWithData, which Redis cannot express on its own.
 * KEYS: the job's hash, the failed set. ARGV: job id, data (JSON), progress (JSON).
 */
const SET_IF_FAILED = `
if redis.call('ZSCORE', KEYS[2], ARGV[1]) and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'data', ARGV[2], 'progress', ARGV[3])
  return 1
end
return 0`;

/**
 * Puts a job that BullMQ's retry (reprocessJob) has just pushed onto the wait list among the prioritized jobs,
 * at the more urgent of its own priority and the new offer's, behind the jobs of that priority already there.
 * BullMQ's retry of a failed job ignores its priority, and a worker empties the wait list before it takes any
 * prioritized job: a backfill's film queued again would run ahead of every live film, and a live one ahead of
 * the live films queued before it. Every job queue.ts adds has a priority, so a job of ours on the wait list
 * is one just retried (or one an older cxr retried so, put right as well). The score and the counter are
 * BullMQ's (getPriorityScore in its Lua includes); the marker that wakes a worker is left as reprocessJob set it.
 * KEYS: the job's hash, the wait list, the paused list, the prioritized set, the priority counter.
 * ARGV: job id, the offer's priority. Answers 1 when it moved the job, else 0.
 */
const REPRIORITIZE = `
if redis.call('LREM', KEYS[2], 1, ARGV[1]) == 0 and redis.call('LREM', KEYS[3], 1, ARGV[1]) == 0 then
  return 0
end
local priority = tonumber(ARGV[2])
local own = tonumber(redis.call('HGET', KEYS[1], 'priority')) or 0
if own > 0 and own < priority then priority = own end
local score = priority * 0x100000000 + redis.call('INCR', KEYS[5]) % 0x100000000
redis.call('ZADD', KEYS[4], score, ARGV[1])
redis.call('HSET', KEYS[1], 'priority', priority)
return 1`;

/** The part of an ioredis transaction that retryWithData queues besides BullMQ's own script. */
type EvalTransaction = IRedisTransaction & {
  eval(script: string, numKeys: number, ...args: string[]): IRedisTransaction;
};

/**
 * Retries the failed job with the offer's data, or answers false when it is failed no longer (another producer
 * retried it, a worker took it since, it was removed). One MULTI, which Redis runs with no other client's command
 * in between: the data and the retry cannot be split by another producer's, so exactly one producer retries a
 * failed job and the job runs with that producer's data. In separate steps (updateData, then retry) two producers
 * could both set their data before one retried, and the job ran with the data of the one that lost. `priority`:
 * the offer's, as BullMQ numbers them; the job runs at it where it is more urgent than its own (REPRIORITIZE).
 */
export async function retryWithData(
  queue: JobQueue,
  job: Job<JobData>,
  data: JobData,
  priority: number,
): Promise<boolean> {
  const id = job.id as string;
  const multi = (await queue.client).multi() as EvalTransaction;
  // The offer's data, not the failed job's (BullMQ's retry keeps it): a film moved since it failed, queued again
  // where it is now as the worker said to, would be read at its old path and fail again, and so would a job an
  // older cxr queued that this version refuses (job.ts), queued again as the refusal says. A fresh progress: the
  // retries of an outage start over (retry.ts), as for a new job, and so do its other failures, which the worker
  // counts in the job's progress (BullMQ's retry keeps the progress).
  multi.eval(SET_IF_FAILED, 2, queue.toKey(id), queue.keys.failed, id, JSON.stringify(data), JSON.stringify(0));
  // BullMQ's own retry (Job.retry('failed', { resetAttemptsMade, resetAttemptsStarted })), with its keys and
  // arguments in the order its script takes them (Scripts.reprocessJob of the bullmq version package.json pins).
  queue.scripts.execCommand(multi, 'reprocessJob', [
    queue.toKey(id),
    queue.keys.events,
    queue.keys.failed,
    queue.keys.wait,
    queue.keys.meta,
    queue.keys.paused,
    queue.keys.active,
    queue.keys.marker,
    id,
    `${job.opts.lifo ? 'R' : 'L'}PUSH`,
    'failedReason',
    'failed',
    '1',
    '1',
  ]);
  // Off the wait list where the retry put it, back at its priority; in the MULTI too, so no worker takes it first.
  multi.eval(
    REPRIORITIZE,
    5,
    queue.toKey(id),
    queue.keys.wait,
    queue.keys.paused,
    queue.keys.prioritized,
    queue.keys.pc,
    id,
    String(priority),
  );
  const replies = await multi.exec();
  if (!replies) throw new Error(`retrying job ${id}: Redis discarded the transaction`);
  for (const [e] of replies) if (e) throw e;
  const [[, set], [, retried], [, moved]] = replies;
  // 1: retried; -1 (gone) or -3 (not in the failed set): moved meanwhile, and the data was left alone with it.
  if (retried === 1 && set === 1 && moved === 1) return true;
  if ((retried === -1 || retried === -3) && set === 0) return false;
  throw new Error(`retrying job ${id}: unexpected answers ${set}, ${retried}, ${moved}`);
}
