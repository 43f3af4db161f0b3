// Films uploaded to POST /api/v1/jobs wait in Redis until a worker has finished with them: Redis
// is what every worker reaches (a spool folder would tie them to the server's disk), and with its
// append-only file they survive a restart of the server and of Redis. The bytes of all waiting
// uploads together are capped; past the cap the API answers 503 instead of filling Redis' memory.
//
// Each upload is a hash {data (base64), size} under its sha256, and a counter holds the total;
// both change in one Lua script, so concurrent servers and workers keep the counter right. One film
// may be wanted by several jobs (another operating point, a stated age outside the population's
// bounds): a set beside it holds the ids of the jobs that still need it, and the film goes when the
// last of them lets go.
//
// A film stored by an older version has no 'tracked' field, and one from before the holder sets may be
// wanted by waiting jobs that no set names (the first to finish used to drop it, failing the others).
// The first release of such a film asks the queue instead: the live jobs (waiting, delayed, active...)
// that name it, read in one atomic call (BullMQ's getRanges script), join its holder set and the film
// becomes tracked, in the same script that lets the releasing job go. From then on it is an ordinary
// film. Two jobs releasing at once, each seeing the other still active, cannot both keep it: only the
// first script converts the film, and the second finds itself the last holder. Not a TTL: an expiring
// key would leave its bytes in the total, shrinking the cap for good. Only this worker's model's queue is
// searched, and an older server still running may queue a job for the film just as it goes: upgrade the
// servers and workers of every model together.
import type { RedisClient } from 'bullmq';
import { type JobQueue, redisSelected } from './queue';

const KEY_PREFIX = 'cxr:upload:';
const HOLDERS_PREFIX = 'cxr:upload-holders:';
const TOTAL_KEY = 'cxr:upload-bytes';

// KEYS: the film, its holders, the total. ARGV: data, size, cap, the job that wants it.
const PUT = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SADD', KEYS[2], ARGV[4])
  return 0
end
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
if used + tonumber(ARGV[2]) > tonumber(ARGV[3]) then return -1 end
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'size', ARGV[2], 'tracked', '1')
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('INCRBY', KEYS[3], ARGV[2])
return 1`;

// KEYS as PUT's. ARGV: the job that is done with it, '1' once the queue was searched for a film stored by an
// older version, then the live jobs that search found naming it. 1: dropped; 0: still held by another job;
// -1: not there; 2: stored by an older version, search the queue first.
const RELEASE = `
local size = redis.call('HGET', KEYS[1], 'size')
if not size then return -1 end
if redis.call('HEXISTS', KEYS[1], 'tracked') == 0 then
  if ARGV[2] ~= '1' then return 2 end
  for i = 3, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
  redis.call('HSET', KEYS[1], 'tracked', '1')
end
redis.call('SREM', KEYS[2], ARGV[1])
if redis.call('SCARD', KEYS[2]) > 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('DECRBY', KEYS[3], size)
return 1`;

export type PutOutcome = 'stored' | 'already-there' | 'over-cap';

/** The states of a job that may still read its film (BullMQ moves a job with retries left to delayed or waiting). */
const LIVE_STATES = ['active', 'waiting', 'prioritized', 'delayed', 'paused', 'waiting-children'] as const;

export class UploadStore {
  private defined = false;

  constructor(
    /** The queue of the jobs that read the films: its connection holds them, and legacy films are looked up in it. */
    private readonly queue: JobQueue,
    /** Bytes of all waiting uploads together. */
    readonly capBytes: number,
  ) {}

  private async redis(): Promise<RedisClient> {
    await redisSelected(this.queue); // never database 0 for another number Redis does not have (queue.ts)
    const c = await this.queue.client;
    if (!this.defined) {
      c.defineCommand('cxrUploadPut', { numberOfKeys: 3, lua: PUT });
      c.defineCommand('cxrUploadRelease', { numberOfKeys: 3, lua: RELEASE });
      this.defined = true;
    }
    return c;
  }

  /** Holds the film for job `holder` (a job id); a film already held gains one more holder. */
  async put(sha256: string, bytes: Buffer, holder: string): Promise<PutOutcome> {
    const c = await this.redis();
    const r = Number(
      await c.runCommand('cxrUploadPut', [
        KEY_PREFIX + sha256,
        HOLDERS_PREFIX + sha256,
        TOTAL_KEY,
        bytes.toString('base64'),
        bytes.length,
        this.capBytes,
        holder,
      ]),
    );
    return r === 1 ? 'stored' : r === 0 ? 'already-there' : 'over-cap';
  }

  async get(sha256: string): Promise<Buffer | null> {
    const data = await (await this.redis()).hget(KEY_PREFIX + sha256, 'data');
    return data === null ? null : Buffer.from(data, 'base64');
  }

  /** Job `holder` is done with the film: removed when no other job holds it ('still-held' otherwise). */
  async release(sha256: string, holder: string): Promise<'dropped' | 'still-held' | 'not-there'> {
    const run = async (searched: readonly string[] | null) =>
      Number(
        await (await this.redis()).runCommand('cxrUploadRelease', [
          KEY_PREFIX + sha256,
          HOLDERS_PREFIX + sha256,
          TOTAL_KEY,
          holder,
          searched ? '1' : '0',
          ...(searched ?? []),
        ]),
      );
    let r = await run(null);
    if (r === 2) r = await run(await this.otherJobsWanting(sha256, holder));
    return r === 1 ? 'dropped' : r === 0 ? 'still-held' : 'not-there';
  }

  /** The ids of the jobs other than `holder` that can still run and read the upload `sha256`. */
  private async otherJobsWanting(sha256: string, holder: string): Promise<string[]> {
    const ids = (await this.queue.getRanges([...LIVE_STATES], 0, -1)).filter((id) => id !== holder);
    const c = await this.redis();
    const wanting: string[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const slice = ids.slice(i, i + 500);
      // Sent together: ioredis writes them without waiting for each answer.
      const batch = await Promise.all(slice.map((id) => c.hget(this.queue.toKey(id), 'data')));
      for (const [j, data] of batch.entries()) {
        if (data === null || !data.includes(sha256)) continue;
        try {
          const source = (JSON.parse(data) as { source?: { kind?: string; sha256?: string } }).source;
          if (source?.kind === 'upload' && source.sha256 === sha256) wanting.push(slice[j]);
        } catch {
          // Not job data this version wrote: it cannot read the film either.
        }
      }
    }
    return wanting;
  }

  /** Bytes held by waiting uploads. */
  async totalBytes(): Promise<number> {
    return Number((await (await this.redis()).get(TOTAL_KEY)) ?? 0);
  }
}
