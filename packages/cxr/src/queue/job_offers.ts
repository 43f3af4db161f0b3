// The API tokens that offered a job's film to POST /api/v1/jobs. A job is keyed by its film, model and operating
// point, so a second token offering a film gets the job another token queued: a token limited to the `jobs` scope
// follows only the jobs it queued or offered (serve/routes/jobs.ts), and this set is how the server knows it
// offered one it did not queue. A set beside the job, not a field of its data: job data is checked strictly by
// the workers of every version (job.ts), and a set takes any number of offers without rewriting the job.
import type { Redis } from 'ioredis';
import { type JobQueue, redisSelected } from './queue';

const OFFERS_PREFIX = 'cxr:job-offered-by:';
/** As long as a failed job is kept (queue.ts KEEP_FAILED_S); a finished one goes sooner, its set with it later. */
const OFFERS_KEEP_S = 30 * 24 * 3600;

/** BullMQ's client is the ioredis connection, typed by BullMQ with the commands it uses only. */
async function redisOf(queue: JobQueue): Promise<Redis> {
  await redisSelected(queue);
  return (await queue.client) as unknown as Redis;
}

/** Records that token `name` offered job `id`'s film (kept 30 days from the last offer). */
export async function recordOffer(queue: JobQueue, id: string, name: string): Promise<void> {
  const key = OFFERS_PREFIX + id;
  await (await redisOf(queue)).multi().sadd(key, name).expire(key, OFFERS_KEEP_S).exec();
}

/** The names of the tokens that offered job `id`'s film ([] for a job queued before offers were recorded). */
export async function offersOf(queue: JobQueue, id: string): Promise<string[]> {
  return (await redisOf(queue)).smembers(OFFERS_PREFIX + id);
}
