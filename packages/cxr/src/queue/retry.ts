// What a failed job does next. Three kinds of failure:
// - the film itself (corrupt, not a film, unsupported): UnrecoverableError, never retried (process.ts);
//   so is Orthanc refusing the worker's login, a configuration fault that no retry mends;
// - a shared service away (the audit database, Orthanc, the network, the queue's Redis, the network share
//   a file job's film is on): retried with exponential backoff, capped, for as long as
//   RetryPolicy.retryForMs, so that a restart or a short outage loses nothing;
// - anything else (a bug, a broken install, an answer nobody expected): retried a few times, then failed.
// The producers give every job the OUTAGE_BACKOFF strategy and an attempt bound it never reaches; the
// worker's policy (cxr worker --retry-delay, --retry-max-delay) decides the delays and when to stop.

import { UnrecoverableError } from 'bullmq';
import { FILE_SHARE_ERROR_CODES, NETWORK_ERROR_CODES } from '../network_errors';
import type { InputErrorCode } from '../predict/errors';
import { pgOutage } from '../serve/audit_pg';
import { isRedisDown } from './connection';

/** The name of the custom backoff strategy in a job's options; the worker registers it. */
export const OUTAGE_BACKOFF = 'cxr-outage';

/**
 * Job attempts as BullMQ counts them: high enough that the policy, not this, ends an outage's retries
 * (100,000 waits of --retry-max-delay outlast the day's window for any max delay of 0.9 s or more).
 */
export const MAX_ATTEMPTS = 100_000;

/** Attempts for a failure that is neither the film's fault nor an outage. */
export const OTHER_ATTEMPTS = 3;

export interface RetryPolicy {
  /** The delay after the first failed attempt; doubled after each further one. */
  firstDelayMs: number;
  /** The most any one delay grows to. */
  maxDelayMs: number;
  /** An outage is retried until the delays waited add up to this much. */
  retryForMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  firstDelayMs: 5_000,
  maxDelayMs: 5 * 60_000,
  // A night: an outage that starts after hours is over, and its films done, before anyone is paged.
  retryForMs: 24 * 3600_000,
};

/**
 * Error codes of a service away besides a failed connection (NETWORK_ERROR_CODES): the audit log's own
 * (serve/audit_store.ts AuditUnavailableError), undici's (fetch), SQLite's file locked.
 */
const OUTAGE_CODES = new Set([
  'AUDIT_UNAVAILABLE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_TIMEOUT',
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
]);

/** The name of the error a file job's read throws when its film's storage is away (fileReadError). */
const FILE_SHARE_AWAY = 'FileShareAwayError';

/**
 * What a file job's failed read of its film (a Node file-system error) means for the job: the storage the
 * film is on away (FILE_SHARE_ERROR_CODES: EIO, ESTALE, ENOTCONN, EHOSTDOWN, ETIMEDOUT, ...) is an outage,
 * retried as one; anything else (ENOENT: the file is gone; EACCES) is the film's fault: an UnrecoverableError,
 * which fails the job at once.
 */
export function fileReadError(file: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof code === 'string' && FILE_SHARE_ERROR_CODES.has(code)) {
    const message = `${file}: cannot read (${code}): the disk or network share it is on does not answer; retried`;
    return Object.assign(new Error(message, { cause: err }), { name: FILE_SHARE_AWAY, code });
  }
  const why =
    code === 'ENOENT' || code === 'ENOTDIR'
      ? ': the file is gone (deleted or moved since it was queued); queue it again where it is now'
      : code === 'EACCES' || code === 'EPERM'
        ? ': permission denied (the worker may not read it)'
        : '';
  return filmRefused('READ_FAILED', `${file}: cannot read (${code ?? String(err)})${why}`);
}

/** Where filmRefused keeps its code on the error (the error's name stays UnrecoverableError, as BullMQ reads it). */
const REFUSED_CODE = 'refusedCode';

/**
 * Why a film is refused: an input error's code, or one of the two below. A closed union, not a string: the code is
 * a label value of the worker's metrics (queue/metrics.ts), whose series must stay a known, bounded set.
 */
export type RefusedCode = InputErrorCode | typeof UNREADABLE | typeof CHANGED;

/**
 * The film's fault (corrupt, unsupported, not a chest X-ray under --ood-policy refuse, gone): failed at once, no
 * retry, and counted by `cxr worker --metrics-port` as refused under `code` (an input error code, queue/metrics.ts).
 */
export function filmRefused(code: RefusedCode, message: string): UnrecoverableError {
  return Object.assign(new UnrecoverableError(message), { [REFUSED_CODE]: code });
}

/** Refusal codes besides the input errors': an Orthanc instance the model cannot read, a film changed since queued. */
export const UNREADABLE = 'UNREADABLE';
export const CHANGED = 'CHANGED';

/**
 * A refused job's failure as BullMQ keeps it (its failedReason is the error's message): the code in brackets before
 * the words, so that GET /jobs/:id answers both (refusedReasonParts) and the worker's log line carries the code.
 */
export function refusedReason(code: RefusedCode, message: string): string {
  return `[${code}] ${message}`;
}

/** A failedReason's code and words: the code of a refusedReason, or null (any other failure, an older worker's). */
export function refusedReasonParts(reason: string): { code: string | null; message: string } {
  const m = /^\[([A-Z][A-Z0-9_]*)\] ([\s\S]*)$/.exec(reason);
  return m ? { code: m[1], message: m[2] } : { code: null, message: reason };
}

/** The code of a filmRefused error; null for any other error. */
export function refusedCodeOf(err: unknown): RefusedCode | null {
  const code = (err as Record<string, unknown> | null)?.[REFUSED_CODE];
  // Only filmRefused sets it, from its typed argument.
  return typeof code === 'string' ? (code as RefusedCode) : null;
}

function isOutageItself(e: unknown): boolean {
  if (!e || typeof e !== 'object') return false;
  const err = e as { name?: unknown; code?: unknown; message?: unknown; outage?: unknown };
  // pacs/client.ts says which of its errors are the PACS being away.
  if (err.name === 'OrthancError') return err.outage === true;
  const code = err.code;
  if (typeof code === 'string' && (NETWORK_ERROR_CODES.has(code) || OUTAGE_CODES.has(code))) return true;
  // A file job's film on a share that is away (process.ts keeps the read's own error, with its code).
  if (err.name === FILE_SHARE_AWAY && typeof code === 'string' && FILE_SHARE_ERROR_CODES.has(code)) return true;
  // The job queue's own Redis (an upload's bytes read by a worker, a producer's call): connection.ts.
  if (isRedisDown(e)) return true;
  // PostgreSQL away, shutting down, full or refusing: what the audit log's own 503 calls an outage.
  return pgOutage(e) !== null;
}

/**
 * Whether `err` is a shared service being away rather than a fault of the job: looks through `cause`
 * and an AggregateError's `errors` (Node reports a refused connection to each address of a host so).
 */
export function isOutage(err: unknown, depth = 0): boolean {
  if (isOutageItself(err)) return true;
  if (depth > 4 || !err || typeof err !== 'object') return false;
  const e = err as { cause?: unknown; errors?: unknown };
  if (isOutage(e.cause, depth + 1)) return true;
  return Array.isArray(e.errors) && e.errors.some((x) => isOutage(x, depth + 1));
}

/** The error of an audit log call, naming the log (its location is shown with the password hidden). */
export function auditLogError(location: string, err: unknown): Error {
  const message = err instanceof Error ? err.message : String(err);
  // The store's own errors name it already (AuditUnavailableError: "the audit log (...) does not answer").
  if (/^(the )?audit log/.test(message)) return err instanceof Error ? err : new Error(message);
  const text = isOutage(err)
    ? `audit log ${location} is unavailable (${message})`
    : `audit log ${location}: ${message}`;
  return Object.assign(new Error(text, { cause: err }), { name: 'AuditLogError' });
}

const delayOf = (p: RetryPolicy, attempt: number) => Math.min(p.maxDelayMs, p.firstDelayMs * 2 ** (attempt - 1));

/**
 * The delay before the next attempt after `attemptsMade` attempts (the last one failing with `err`),
 * or -1 to fail the job for good (BullMQ's convention for a custom backoff strategy). `otherFailures`:
 * how many of those attempts failed neither as an outage nor as the film's fault (otherFailuresOf), so that
 * a job that waited out a night's outage still has its few tries at anything else; unknown (a job whose
 * worker did not count them), the attempts made stand in for it.
 */
export function retryDelayMs(
  policy: RetryPolicy,
  attemptsMade: number,
  err: unknown,
  otherFailures: number | null = null,
): number {
  if (!isOutage(err)) {
    const others = otherFailures ?? attemptsMade;
    return others >= OTHER_ATTEMPTS ? -1 : delayOf(policy, others);
  }
  let waited = 0;
  for (let k = 1; k < attemptsMade; k++) {
    waited += delayOf(policy, k);
    if (waited >= policy.retryForMs) return -1;
  }
  return delayOf(policy, attemptsMade);
}

/** What of a failed BullMQ job decides whether it runs again. */
export interface RetriedJob {
  /** Attempts made, the failed one included (as a job reads in the worker's 'failed' event). */
  attemptsMade: number;
  opts: { attempts?: number; backoff?: number | { type: string; delay?: number } };
  /** Where the worker counts a job's other failures (countOtherFailure); BullMQ keeps it with the job. */
  progress?: unknown;
}

/**
 * The other failures a job has had (neither an outage nor the film's fault), as the worker counted them in the
 * job's progress, which the job data's schema does not constrain and older workers leave alone; null when
 * never counted.
 */
export function otherFailuresOf(job: { progress?: unknown }): number | null {
  const p = job.progress as { otherFailures?: unknown } | null | undefined;
  const n = p && typeof p === 'object' ? p.otherFailures : undefined;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : null;
}

/**
 * Keeps the count of a job's other failures in the job, before BullMQ decides its retry: one more when `err` is
 * neither an outage nor the film's fault, and 0 written on an outage's first failure, so that the count is known
 * (not read as the attempts made) when something else fails after a long outage.
 */
export async function countOtherFailure(
  job: { progress?: unknown; updateProgress(p: object): Promise<void> },
  err: unknown,
): Promise<void> {
  if ((err as Error | null)?.name === 'UnrecoverableError') return;
  const before = otherFailuresOf(job);
  const other = !isOutage(err);
  if (before !== null && !other) return;
  await job.updateProgress({ otherFailures: (before ?? 0) + (other ? 1 : 0) });
}

/**
 * The delay before a failed job runs again, or null when it will not (unrecoverable, out of attempts,
 * or the policy gave up): what BullMQ decided, worked out again for the log and for its uploaded film.
 * Jobs queued by an older cxr (3 attempts, exponential from 5 s) are read by their own options.
 */
export function nextRetryMs(policy: RetryPolicy, job: RetriedJob, err: Error): number | null {
  if (err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1)) return null;
  const backoff = job.opts.backoff;
  if (backoff === undefined) return 0;
  if (typeof backoff === 'number') return backoff;
  if (backoff.type === OUTAGE_BACKOFF) {
    const ms = retryDelayMs(policy, job.attemptsMade, err, otherFailuresOf(job));
    return ms < 0 ? null : ms;
  }
  const delay = backoff.delay ?? 0;
  return backoff.type === 'exponential' ? Math.round(2 ** (job.attemptsMade - 1) * delay) : delay;
}
