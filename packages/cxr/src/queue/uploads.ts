// Films uploaded to POST /api/v1/jobs wait in Redis until a worker has finished with them: Redis
// is what every worker reaches (a spool folder would tie them to the server's disk), and with its
// append-only file they survive a restart of the server and of Redis. The bytes of all waiting
// uploads together are capped; past the cap the API answers 503 instead of filling Redis' memory.
//
// Each upload is a hash {data (base64), size} under its sha256, and a counter holds the total;
// both change in one Lua script, so concurrent servers and workers keep the counter right. One film
// may be wanted by several jobs (another operating point, a stated age over the bound): a set beside
// it holds the ids of the jobs that still need it, and the film goes when the last of them lets go.
import type { RedisClient } from 'bullmq';

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
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'size', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('INCRBY', KEYS[3], ARGV[2])
return 1`;

// KEYS as PUT's. ARGV: the job that is done with it. 1: dropped; 0: still held by another job; -1: not there.
const RELEASE = `
local size = redis.call('HGET', KEYS[1], 'size')
if not size then return -1 end
redis.call('SREM', KEYS[2], ARGV[1])
if redis.call('SCARD', KEYS[2]) > 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('DECRBY', KEYS[3], size)
return 1`;

export type PutOutcome = 'stored' | 'already-there' | 'over-cap';

export class UploadStore {
  private defined = false;

  constructor(
    private readonly client: Promise<RedisClient>,
    /** Bytes of all waiting uploads together. */
    readonly capBytes: number,
  ) {}

  private async redis(): Promise<RedisClient> {
    const c = await this.client;
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
    const r = Number(
      await (await this.redis()).runCommand('cxrUploadRelease', [
        KEY_PREFIX + sha256,
        HOLDERS_PREFIX + sha256,
        TOTAL_KEY,
        holder,
      ]),
    );
    return r === 1 ? 'dropped' : r === 0 ? 'still-held' : 'not-there';
  }

  /** Bytes held by waiting uploads. */
  async totalBytes(): Promise<number> {
    return Number((await (await this.redis()).get(TOTAL_KEY)) ?? 0);
  }
}
