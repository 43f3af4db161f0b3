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
//
// A server that dies (kill -9, a power cut) between holding a film and queueing its job leaves the film held
// for a job that never existed, and its bytes in the total for good. So each holder is stamped with when it
// was added (Redis' clock: servers' clocks may differ), and releaseOrphans lets go of the holders of this
// queue whose job is not there or finished, once their stamp is older than a grace period: another server
// sharing Redis may be between the two steps right now, and its job appears within seconds (its calls give
// up within PRODUCER_WAIT_MS and a few reconnections). A stamp is checked again in the script that lets go,
// so a server holding the film anew meanwhile (a fresh stamp) keeps it, as does a worker's release racing it.
import type { RedisClient } from 'bullmq';
import { queueNameFor } from './job';
import { type JobQueue, redisSelected } from './queue';

const KEY_PREFIX = 'cxr:upload:';
const HOLDERS_PREFIX = 'cxr:upload-holders:';
const TOTAL_KEY = 'cxr:upload-bytes';

/** The field of a film's hash stamping when a holder was added (ms of Redis' clock). */
const SINCE = 'since:';
/** How long a holder whose job is not in the queue is kept: far past the time from holding a film to queueing. */
export const ORPHAN_GRACE_MS = 60_000;

// Redis' clock in ms, as a Lua number (scripts are replicated by their effects since Redis 5: TIME is allowed).
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// KEYS: the film, its holders, the total. ARGV: data, size, cap, the job that wants it.
const PUT = `${NOW}
local stamp = string.format('%.0f', now)
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SADD', KEYS[2], ARGV[4])
  redis.call('HSET', KEYS[1], '${SINCE}' .. ARGV[4], stamp)
  return 0
end
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
if used + tonumber(ARGV[2]) > tonumber(ARGV[3]) then return -1 end
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'size', ARGV[2], 'tracked', '1', '${SINCE}' .. ARGV[4], stamp)
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
if redis.call('SCARD', KEYS[2]) > 0 then
  redis.call('HDEL', KEYS[1], '${SINCE}' .. ARGV[1])
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('DECRBY', KEYS[3], size)
return 1`;

// KEYS as PUT's. ARGV: the grace in ms, then the holders whose job is not there or finished. Each still in the
// set is let go once its stamp is older than the grace; one without a stamp (held by a version before the stamps)
// is stamped now, so that it goes one grace later. The film goes with its last holder. Returns the holders let
// go, the bytes dropped, and the ms until the next of the others may go (-1: none).
const ORPHANS = `
local size = redis.call('HGET', KEYS[1], 'size')
if not size or redis.call('HEXISTS', KEYS[1], 'tracked') == 0 then return {0, 0, -1} end
${NOW}
local grace = tonumber(ARGV[1])
local freed, wait = 0, -1
for i = 2, #ARGV do
  local field = '${SINCE}' .. ARGV[i]
  if redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 1 then
    local since = tonumber(redis.call('HGET', KEYS[1], field) or '')
    if not since then
      since = now
      redis.call('HSET', KEYS[1], field, string.format('%.0f', now))
    end
    local left = since + grace - now
    if left <= 0 then
      redis.call('SREM', KEYS[2], ARGV[i])
      redis.call('HDEL', KEYS[1], field)
      freed = freed + 1
    elseif wait < 0 or left < wait then
      wait = left
    end
  end
end
if redis.call('SCARD', KEYS[2]) > 0 then return {freed, 0, wait} end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('DECRBY', KEYS[3], size)
return {freed, tonumber(size), wait}`;

export type PutOutcome = 'stored' | 'already-there' | 'over-cap';

/** What releaseOrphans let go of. */
export interface OrphanSweep {
  /** Holders whose job was not there (or had finished) let go. */
  holders: number;
  /** Bytes of the films that went with their last holder. */
  droppedBytes: number;
}

/** The states of a job that may still read its film (BullMQ moves a job with retries left to delayed or waiting). */
const LIVE_STATES = ['active', 'waiting', 'prioritized', 'delayed', 'paused', 'waiting-children'] as const;

export class UploadStore {
  private defined = false;
  /** The sweep under way: callers arriving meanwhile share it. */
  private sweeping: Promise<OrphanSweep> | null = null;
  /** Before this (Date.now()), a sweep cannot find a holder to let go that the last one did not (see sweep). */
  private nextSweepAt = 0;

  constructor(
    /** The queue of the jobs that read the films: its connection holds them, and legacy films are looked up in it. */
    private readonly queue: JobQueue,
    /** Bytes of all waiting uploads together. */
    readonly capBytes: number,
    /** How old a holder with no job must be before releaseOrphans lets go of it. */
    readonly orphanGraceMs: number = ORPHAN_GRACE_MS,
  ) {}

  private async redis(): Promise<RedisClient> {
    await redisSelected(this.queue); // never database 0 for another number Redis does not have (queue.ts)
    const c = await this.queue.client;
    if (!this.defined) {
      c.defineCommand('cxrUploadPut', { numberOfKeys: 3, lua: PUT });
      c.defineCommand('cxrUploadRelease', { numberOfKeys: 3, lua: RELEASE });
      c.defineCommand('cxrUploadOrphans', { numberOfKeys: 3, lua: ORPHANS });
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

  /**
   * Lets go of the films held for jobs of this queue that are not there, or finished without letting go (their
   * server or worker died in between), once held longer than the grace; a film goes with its last holder. Holders
   * of other models' queues are left to their servers, and films stored by an older version (no 'tracked') to
   * release. A sweep that could find nothing new since the last (no holder it saw can have come of age) is skipped.
   */
  releaseOrphans(): Promise<OrphanSweep> {
    if (Date.now() < this.nextSweepAt) return Promise.resolve({ holders: 0, droppedBytes: 0 });
    this.sweeping ??= this.sweep().finally(() => {
      this.sweeping = null;
    });
    return this.sweeping;
  }

  private async sweep(): Promise<OrphanSweep> {
    const started = Date.now();
    // A holder stamped from now on comes of age one grace later at the earliest, one seen young when it says.
    let soonest = this.orphanGraceMs;
    const out: OrphanSweep = { holders: 0, droppedBytes: 0 };
    const c = await this.redis();
    let cursor = '0';
    do {
      const [next, keys] = await c.scan(cursor, { MATCH: `${KEY_PREFIX}*`, COUNT: 200 });
      cursor = next;
      const found = await Promise.all(keys.map((k) => this.orphansOf(c, k.slice(KEY_PREFIX.length))));
      for (const r of found) {
        if (!r) continue;
        out.holders += r[0];
        out.droppedBytes += r[1];
        if (r[2] >= 0) soonest = Math.min(soonest, r[2]);
      }
    } while (cursor !== '0');
    this.nextSweepAt = started + soonest;
    return out;
  }

  /** The ORPHANS script's answer for one film, or null when each of its holders has a job that can still run. */
  private async orphansOf(c: RedisClient, sha256: string): Promise<[number, number, number] | null> {
    const holders = await c.smembers(HOLDERS_PREFIX + sha256);
    const ours = holders.filter((h) => this.queuesHere(h));
    const states = await Promise.all(ours.map((h) => this.queue.getJobState(h)));
    const gone = ours.filter((_, i) => !(LIVE_STATES as readonly string[]).includes(states[i]));
    // A set emptied meanwhile (its film dropped by a release) is no orphan: the script finds no film.
    if (gone.length === 0 && holders.length > 0) return null;
    const r = (await c.runCommand('cxrUploadOrphans', [
      KEY_PREFIX + sha256,
      HOLDERS_PREFIX + sha256,
      TOTAL_KEY,
      this.orphanGraceMs,
      ...gone,
    ])) as number[];
    return [Number(r[0]), Number(r[1]), Number(r[2])];
  }

  /** Whether job `id` would be in this store's queue: its model is the second part of its id (job.ts jobIdFor). */
  private queuesHere(id: string): boolean {
    const model = id.split('~')[1];
    return model !== undefined && /^[0-9a-f]{64}$/.test(model) && queueNameFor(model) === this.queue.name;
  }

  /** Bytes held by waiting uploads. */
  async totalBytes(): Promise<number> {
    return Number((await (await this.redis()).get(TOTAL_KEY)) ?? 0);
  }
}
