// Where the job queue's Redis is: CXR_REDIS_URL (scripts/stack.sh writes it), a JSON config file
// {"url": ...} (mode 600), or --redis. A password belongs in the first two: a command line is
// readable by every user in the process list, so a --redis URL holding one earns a warning.
import type { ConnectionOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { z } from 'zod';
import { LATE, orLate } from '../deadline';
import { NETWORK_ERROR_CODES } from '../network_errors';
import { readConfigFile, warnIfOpen } from '../config_file';
import { redactUrl } from '../redact_url';

/** Whether decodeURIComponent takes `s` (every % followed by two hex digits, making UTF-8). */
function decodes(s: string): boolean {
  try {
    decodeURIComponent(s);
    return true;
  } catch {
    return false;
  }
}

const UrlSchema = z
  .string()
  .trim()
  .refine((s) => URL.canParse(s) && /^rediss?:$/.test(new URL(s).protocol), {
    message: 'must be a redis:// or rediss:// URL (redis://:PASSWORD@HOST:PORT/DB)',
    // zod runs the checks after a failed one too, and the next ones' `new URL(s)` threw TypeError "Invalid URL" for a
    // value that is no URL at all (`redis//host`), instead of this message.
    abort: true,
  })
  .refine((s) => /^\/?\d*$/.test(new URL(s).pathname), { message: 'the path must be a database number, e.g. /0' })
  // redisConnection decodes the login: a bare % in it (a password `pa%ss`) threw "URI malformed" there, from every
  // command, naming neither the URL nor the password. Said here, as the audit log's and Orthanc's URLs say it.
  .refine((s) => decodes(new URL(s).username) && decodes(new URL(s).password), {
    message: 'the user name or password is not valid percent-encoding (write a % in it as %25)',
  });

const FileSchema = z.object({ url: UrlSchema }).strict();

export interface RedisSources {
  /** --redis on the command line. */
  url?: string;
  /** --redis-config: a JSON file {"url": "redis://..."}. */
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  warn?: (line: string) => void;
}

/** The Redis URL from the flag, the config file or CXR_REDIS_URL (in that order); throws when none. */
export function loadRedisUrl(src: RedisSources): string {
  const env = src.env ?? process.env;
  if (src.url !== undefined) {
    const r = UrlSchema.safeParse(src.url);
    if (!r.success) throw new Error(`--redis: ${r.error.issues[0].message}`);
    if (new URL(r.data).password) {
      src.warn?.(
        'warning: --redis holds a password, which other users can read in the process list; use CXR_REDIS_URL',
      );
    }
    return r.data;
  }
  if (src.configFile) {
    const { url } = readConfigFile(src.configFile, 'Redis', FileSchema);
    warnIfOpen(src.configFile, !!new URL(url).password, src.warn);
    return url;
  }
  const fromEnv = env.CXR_REDIS_URL;
  if (!fromEnv) {
    throw new Error(
      'no job queue configured: set CXR_REDIS_URL (scripts/stack.sh writes it to .stack/env), or give --redis-config',
    );
  }
  const r = UrlSchema.safeParse(fromEnv);
  if (!r.success) throw new Error(`CXR_REDIS_URL ${r.error.issues[0].message}`);
  return r.data;
}

/**
 * Who holds a connection. A worker's connections block on Redis and must wait for it through a restart
 * (BullMQ requires it of them). A producer's (cxr enqueue, cxr orthanc sync --queue, cxr serve's /jobs, the
 * uploads a worker reads) give up on a call after a few reconnections, and queue.ts bounds each of its
 * operations in time: a call made while Redis is away would otherwise wait for it without a word, and a
 * command asked to stop could not until Redis came back.
 */
export type RedisRole = 'worker' | 'producer';

/** Reconnections a producer's call waits through before it fails (ioredis' maxRetriesPerRequest). */
export const PRODUCER_RETRIES = 2;

/** The database number of a Redis URL (its path; 0 when it has none). */
export function redisDatabase(url: string): number {
  return Number(new URL(url).pathname.replace('/', '') || '0');
}

/**
 * ioredis options for BullMQ, parsed from the URL (no password is logged or kept elsewhere). ioredis selects the
 * database on every connection and, when Redis refuses it (a number past its `databases`), only emits an error and
 * goes on in database 0, another environment's queue: checkRedis and the producers' calls (queue.ts onRedis) select
 * it themselves, so that the refusal stops them.
 */
export function redisConnection(url: string, role: RedisRole = 'worker'): ConnectionOptions {
  const u = new URL(url);
  const db = redisDatabase(url);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: Number(u.port || 6379),
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    ...(role === 'worker'
      ? // BullMQ's workers block on Redis; they must wait for it, not fail a command after N retries.
        { maxRetriesPerRequest: null }
      : { maxRetriesPerRequest: PRODUCER_RETRIES }),
  };
}

/**
 * The URL without its password (shown as *****, as every credential cxr prints), for log lines: redact_url.ts's,
 * as the audit log's and Orthanc's URLs are shown (a ?password= parameter hidden too; never a throw).
 */
export function redactRedisUrl(url: string): string {
  return redactUrl(url);
}

/** The code of a job queue call that failed because Redis is away (and of the API's 503 for it). */
export const QUEUE_UNAVAILABLE = 'QUEUE_UNAVAILABLE';

/**
 * Whether `err` is a Redis call that failed because Redis is away: ioredis gave up reconnecting for it
 * (MaxRetriesPerRequestError), it timed out, or the connection was closed; or a QueueUnavailableError. ioredis
 * gives most of these no code, only their class name or message.
 */
export function isRedisDown(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { name?: unknown; message?: unknown; code?: unknown };
  if (e.code === QUEUE_UNAVAILABLE || e.name === 'MaxRetriesPerRequestError') return true;
  return (
    typeof e.message === 'string' && /^(Command timed out|Connection is closed|Stream isn't writeable)/.test(e.message)
  );
}

/**
 * Whether `err`, reported by a connection to Redis, is the connection failing (refused, reset, timed out, closed)
 * rather than a command Redis refused.
 */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return isRedisDown(err) || (typeof code === 'string' && NETWORK_ERROR_CODES.has(code));
}

/**
 * A call to the job queue that failed because Redis is away: names Redis (password hidden) and the cause. Its
 * code makes it an outage (retry.ts): a polling sync tries again at its next poll, a worker's job waits for it.
 */
export class QueueUnavailableError extends Error {
  readonly code = QUEUE_UNAVAILABLE;

  constructor(where: string, cause: unknown) {
    super(
      `the job queue (Redis at ${where}) does not answer (${(cause as Error)?.message ?? String(cause)}): ` +
        'is it running and reachable?',
      { cause },
    );
    this.name = 'QueueUnavailableError';
  }
}

/**
 * `err` as a QueueUnavailableError when it is Redis being away (isRedisDown), else unchanged. `cause`, when
 * given, is what the message says (the connection's own error: refused, a wrong password).
 */
export function queueCallError(where: string, err: unknown, cause: unknown = err): unknown {
  return isRedisDown(err) && !(err instanceof QueueUnavailableError) ? new QueueUnavailableError(where, cause) : err;
}

/** How long the command-line tools wait for Redis before saying it cannot be reached. */
export const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Redis refusing the URL's database number (SELECT): a configuration to fix, not an outage. Redis has the databases
 * 0 to `databases` - 1 of its redis.conf (16 by default); it never silently stands for database 0.
 */
export class RedisDatabaseError extends Error {
  constructor(
    readonly where: string,
    readonly db: number,
    reply: string,
  ) {
    super(
      `Redis at ${where} has no database ${db} (SELECT ${db}: ${reply}): give a database number it has in the ` +
        "URL's path (0 up to its `databases` setting less one, 0 to 15 by default)",
    );
    this.name = 'RedisDatabaseError';
  }
}

/**
 * Selects the URL's database on `client` (which ioredis does not fail on: see redisConnection): a
 * RedisDatabaseError when Redis refuses the number; other failures (Redis away) as they came.
 */
export async function selectDatabase(client: { select(db: number): Promise<unknown> }, url: string): Promise<void> {
  const db = redisDatabase(url);
  try {
    await client.select(db);
  } catch (e) {
    // Redis' own reply ("ERR DB index is out of range"); a connection's failure has no such name.
    if ((e as Error).name === 'ReplyError') throw new RedisDatabaseError(redactRedisUrl(url), db, (e as Error).message);
    throw e;
  }
}

/**
 * Connects once, without retrying, selects the URL's database and pings: an error naming the server (password
 * hidden) and the cause (refused, timed out, wrong password, no such database) when Redis does not answer within
 * `timeoutMs` or refuses.
 */
export async function checkRedis(url: string, timeoutMs = CONNECT_TIMEOUT_MS): Promise<void> {
  const client = new Redis({
    ...(redisConnection(url) as RedisOptions),
    lazyConnect: true,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
  // The cause, for the message below (the rejection itself only says the connection closed).
  let cause = '';
  client.on('error', (e: Error) => {
    cause ||= e.message;
  });
  try {
    if (
      (await orLate(
        client
          .connect()
          .then(() => selectDatabase(client, url))
          .then(() => client.ping()),
        timeoutMs,
      )) === LATE
    )
      throw new Error(`no answer within ${timeoutMs / 1000} s`);
  } catch (e) {
    if (e instanceof RedisDatabaseError) throw e;
    throw new Error(
      `cannot reach Redis at ${redactRedisUrl(url)} (${cause || (e as Error).message}): ` +
        'is it running, and is the URL right?',
    );
  } finally {
    client.disconnect();
  }
}
