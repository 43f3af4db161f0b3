// Films uploaded to POST /api/v1/jobs wait in Redis until a worker has finished with them: Redis
// is what every worker reaches (a spool folder would tie them to the server's disk), and with its
// append-only file they survive a restart of the server and of Redis. The bytes of all waiting
// uploads together are capped; past the cap the API answers 503 instead of filling Redis' memory.
//
// Each upload is a hash {data (base64), size} under its sha256, and a counter holds the total;
// both change in one Lua script, so concurrent servers and workers keep the counter right.
import type { RedisClient } from 'bullmq';

const KEY_PREFIX = 'cxr:upload:';
const TOTAL_KEY = 'cxr:upload-bytes';

const PUT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if used + tonumber(ARGV[2]) > tonumber(ARGV[3]) then return -1 end
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'size', ARGV[2])
redis.call('INCRBY', KEYS[2], ARGV[2])
return 1`;

const DROP = `
local size = redis.call('HGET', KEYS[1], 'size')
if not size then return 0 end
redis.call('DEL', KEYS[1])
redis.call('DECRBY', KEYS[2], size)
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
      c.defineCommand('cxrUploadPut', { numberOfKeys: 2, lua: PUT });
      c.defineCommand('cxrUploadDrop', { numberOfKeys: 2, lua: DROP });
      this.defined = true;
    }
    return c;
  }

  async put(sha256: string, bytes: Buffer): Promise<PutOutcome> {
    const c = await this.redis();
    const r = Number(
      await c.runCommand('cxrUploadPut', [
        KEY_PREFIX + sha256,
        TOTAL_KEY,
        bytes.toString('base64'),
        bytes.length,
        this.capBytes,
      ]),
    );
    return r === 1 ? 'stored' : r === 0 ? 'already-there' : 'over-cap';
  }

  async get(sha256: string): Promise<Buffer | null> {
    const data = await (await this.redis()).hget(KEY_PREFIX + sha256, 'data');
    return data === null ? null : Buffer.from(data, 'base64');
  }

  /** Removes a finished upload; false when it was not there (already dropped). */
  async drop(sha256: string): Promise<boolean> {
    return Number(await (await this.redis()).runCommand('cxrUploadDrop', [KEY_PREFIX + sha256, TOTAL_KEY])) === 1;
  }

  /** Bytes held by waiting uploads. */
  async totalBytes(): Promise<number> {
    return Number((await (await this.redis()).get(TOTAL_KEY)) ?? 0);
  }
}
