// The consumer side: a BullMQ worker running processJob. A job is locked by its worker while it
// runs; a worker that dies (kill -9, a lost machine) stops renewing the lock, and after
// lockDuration any other worker's stalled-job check puts the job back to be retried. Short
// durations make a retry come sooner and cost lock renewals; but the lock is renewed from the
// thread that runs the model, so one shorter than a few predictions expires under a job that is
// still running and every job runs twice: `cxr worker` takes no less than MIN_LOCK_DURATION_MS
// (tests that call startWorker directly use ~1 s with the tiny model).
// A job that fails is retried by the worker's RetryPolicy (retry.ts): an outage until it is over.
// Log levels: a job's progress is info, a failed attempt that will be retried warn, a job failed for
// good and the queue's Redis failing error (what an operator's alerts watch for). Redis going away is
// one error line, however many connections and reconnections report it, and its return one info line.
import { type RedisClient, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { isConnectionError, redactRedisUrl, redisConnection } from './connection';
import { type JobResult, queueNameFor } from './job';
import type { JobEnd, JobObserver } from './metrics';
import { type JobContext, letGoOfFailed, processJob } from './process';
import { openQueue } from './queue';
import {
  countOtherFailure,
  DEFAULT_RETRY,
  isOutage,
  nextRetryMs,
  otherFailuresOf,
  refusedCodeOf,
  refusedReason,
  type RetryPolicy,
  retryDelayMs,
} from './retry';
import { UploadStore } from './uploads';
import { resultText } from '../pacs';

/**
 * What startWorker needs: a job's context, where `uploads` may be left out (a program embedding the worker has no
 * upload store of its own: the worker then opens one on the queue's Redis, as `cxr worker` does, and closes it with
 * itself), and `orthanc` and `storeImages` default to none and true.
 */
export type WorkerContext = Omit<JobContext, 'uploads' | 'orthanc' | 'storeImages'> &
  Partial<Pick<JobContext, 'uploads' | 'orthanc' | 'storeImages'>>;

export interface WorkerOptions {
  redisUrl: string;
  /** Jobs run at once by this process (decodes overlap with inference). */
  concurrency: number;
  /** How long a job's lock lasts without renewal (default 30 s). */
  lockDurationMs?: number;
  /** How often stalled jobs are looked for (default: half the lock duration). */
  stalledIntervalMs?: number;
  /** Times a job may be found stalled before it is failed (default 3). */
  maxStalledCount?: number;
  /** The delays between attempts of a failed job, and how long an outage is retried (default DEFAULT_RETRY). */
  retry?: RetryPolicy;
  /** Told how each job ends and how long it took (`cxr worker --metrics-port`: queue/metrics.ts). */
  observer?: JobObserver;
}

/**
 * The shortest lock `cxr worker` takes. Inference and Grad-CAM hold the worker's thread for up to a second or two
 * per film on a busy CPU (an ensemble longer), and BullMQ renews a lock at half its duration from that thread: a
 * lock of a few predictions' length is the least that is renewed in time.
 */
export const MIN_LOCK_DURATION_MS = 5_000;

export interface RunningWorker {
  worker: Worker;
  /** Finishes the jobs in progress, takes no more, closes the connections. */
  close(): Promise<void>;
}

const seconds = (ms: number) => (ms >= 10_000 ? String(Math.round(ms / 1000)) : (ms / 1000).toFixed(1));

/** How a job that failed for good ended, as the metrics count it: the film's fault, or why else. */
function failedEnd(err: Error): JobEnd {
  const refused = refusedCodeOf(err);
  if (refused !== null) return { outcome: 'refused', code: refused };
  if (err.name === 'UnrecoverableError') return { outcome: 'failed', code: 'UNRECOVERABLE' };
  return { outcome: 'failed', code: isOutage(err) ? 'OUTAGE' : 'ATTEMPTS' };
}

/**
 * The observer's calls made so that none can fail a job: a count that throws (a metrics bug) is a warning and the
 * job goes on. Unguarded, a throw after a job's work failed the finished job, which then ran again.
 */
function guarded(observer: JobObserver | undefined, warn: (line: string) => void): JobObserver | undefined {
  if (!observer) return undefined;
  const call = (f: () => void) => {
    try {
      f();
    } catch (e) {
      warn(`metrics: a job's count failed (${(e as Error).message}); the job itself is not affected`);
    }
  };
  return { ended: (end, s) => call(() => observer.ended(end, s)), running: (d) => call(() => observer.running(d)) };
}

export async function startWorker(given: WorkerContext, o: WorkerOptions): Promise<RunningWorker> {
  // Checked before anything opens: BullMQ's Worker throws on these, and the queue opened below would be left open.
  if (o.concurrency !== undefined && (!Number.isInteger(o.concurrency) || o.concurrency < 1)) {
    throw new TypeError(`startWorker: concurrency must be an integer >= 1, not ${o.concurrency}`);
  }
  // The upload store shares a queue connection: the worker's own when the caller gave none, closed with it.
  const ownQueue = given.uploads ? null : openQueue(o.redisUrl, given.predictor.model.sha256);
  const ctx: JobContext = {
    ...given,
    uploads: given.uploads ?? new UploadStore(ownQueue!, 0),
    orthanc: given.orthanc ?? null,
    storeImages: given.storeImages ?? true,
  };
  const lockDuration = o.lockDurationMs ?? 30_000;
  const policy = o.retry ?? DEFAULT_RETRY;
  const warn = ctx.warn ?? ctx.log;
  const error = ctx.error ?? ctx.log;
  const observer = guarded(o.observer, warn);
  // How long the attempt that threw each error took, for the 'failed' handler, which decides how it ended.
  const took = new WeakMap<object, number>();
  // How each running job's attempt ended here, for a job whose keys Redis then lost (lostJobs).
  const settled = new Map<string, string>();
  // The jobs whose attempt is running here now.
  const active = new Set<string>();
  let worker: Worker<unknown, JobResult>;
  // Defined once the worker is (it asks Redis through it); a job's processor, which calls it, runs only after.
  let lost: ReturnType<typeof lostJobs>;
  const settle = (id: string, ended: string) => {
    // Emptied by 'completed'/'failed' and by lostJobs; a job that ends in neither (its lock taken over, Redis down
    // as it ends) would stay: a bound, as for lostJobs' `said`, so a long outage cannot grow it without end.
    if (settled.size >= 10_000) settled.delete(settled.keys().next().value as string);
    settled.set(id, ended);
    lost.ended(id);
  };
  try {
    worker = new Worker<unknown, JobResult>(
      queueNameFor(ctx.predictor.model.sha256),
      async (job) => {
        ctx.log(`job ${job.id}: started (attempt ${job.attemptsStarted})`);
        let r: JobResult;
        const started = performance.now();
        const elapsed = () => (performance.now() - started) / 1000;
        observer?.running(1);
        if (job.id) active.add(job.id);
        try {
          // Its own id: a job queued by an older version holds its upload under the id that version gave it.
          r = await processJob(ctx, job.data, job.id);
        } catch (e) {
          if (job.id) settle(job.id, 'failed');
          if (e && typeof e === 'object') took.set(e, elapsed());
          // The film's fault: its code goes with the words BullMQ keeps (the job's failedReason), for GET /jobs/:id.
          const code = refusedCodeOf(e);
          if (code !== null && e instanceof Error) e.message = refusedReason(code, e.message);
          // Counted before BullMQ reads it for the retry. A count Redis does not store still decides this attempt
          // (BullMQ sets it on the job first); the next attempt may then read one fewer, one retry more at most.
          await countOtherFailure(job, e).catch(() => {});
          throw e;
        } finally {
          if (job.id) active.delete(job.id);
          observer?.running(-1);
        }
        if (job.id) settle(job.id, r.outcome);
        observer?.ended({ outcome: 'done', code: r.outcome }, elapsed());
        ctx.log(`job ${job.id}: ${r.outcome}${r.prediction ? ` ${resultText(r.prediction)}` : ''}`);
        return r;
      },
      {
        connection: redisConnection(o.redisUrl),
        concurrency: o.concurrency,
        lockDuration,
        stalledInterval: o.stalledIntervalMs ?? Math.max(500, Math.round(lockDuration / 2)),
        maxStalledCount: o.maxStalledCount ?? 3,
        // The jobs' OUTAGE_BACKOFF (the only custom strategy their producers set).
        settings: {
          backoffStrategy: (attemptsMade, _type, err, job) =>
            retryDelayMs(policy, attemptsMade, err, job ? otherFailuresOf(job) : null),
        },
        autorun: false,
      },
    );
  } catch (e) {
    // An option BullMQ refuses: the own queue opened above is closed, not left holding the process.
    await ownQueue?.close().catch(() => {});
    throw e;
  }
  lost = lostJobs(worker, active, settled, error);
  worker.on('completed', (job) => settled.delete(job.id ?? ''));
  worker.on('failed', (job, err) => {
    if (job?.id) settled.delete(job.id);
    if (!job) {
      error(`job ?: failed: ${err.message}`);
      return;
    }
    const next = nextRetryMs(policy, job, err);
    const attempt = took.get(err) ?? null;
    if (next !== null) {
      observer?.ended({ outcome: 'retried', code: isOutage(err) ? 'OUTAGE' : 'OTHER' }, attempt);
      warn(`job ${job.id}: attempt ${job.attemptsMade} failed: ${err.message}; retrying in ${seconds(next)} s`);
      return;
    }
    observer?.ended(failedEnd(err), attempt);
    const after = job.attemptsMade > 1 ? ` (after ${job.attemptsMade} attempts)` : '';
    error(`job ${job.id}: failed${after}: ${err.message}`);
    letGoOfFailed(ctx.uploads, job, err, policy).catch((e: unknown) =>
      warn(`job ${job.id}: its uploaded film could not be let go: ${(e as Error).message}`),
    );
  });
  worker.on('stalled', (id) => warn(`job ${id}: its worker stopped answering; queued again`));
  // BullMQ's connection errors (Redis refused, lost, a wrong password) say nothing of where: named here.
  const redis = redactRedisUrl(o.redisUrl);
  const outage = watchOutage(redis, { log: ctx.log, error });
  worker.on('error', (err) => {
    if (!lost.seen(err, outage.error)) outage.error(err);
  });
  // The two connections BullMQ's worker holds (commands, and the one that blocks waiting for jobs).
  try {
    outage.watch(await worker.waitUntilReady(), await worker.client);
  } catch (e) {
    // Its connections are closed with it (not only the own queue's), else they keep the process alive.
    await worker.close().catch(() => {});
    await ownQueue?.close().catch(() => {});
    throw e;
  }
  void worker.run();
  let closing: Promise<void> | null = null;
  const closeAll = async () => {
    await worker.close();
    await ownQueue?.close();
  };
  return { worker, close: () => (closing ??= closeAll()) };
}

// BullMQ's words for a job whose hash (key) or lock is gone from Redis (scripts.js finishedErrors; lock-manager.js).
const MISSING_KEY = /^Missing key for job (\S+)\. /;
const MISSING_LOCK = /^(?:Missing lock for job (\S+)\. |could not renew lock for job (\S+)$)/;

/** What the audit log holds of a job's attempt here, by how it ended (`settled`: a JobResult outcome, or failed). */
function auditStand(ended: string | undefined): string {
  if (ended === undefined) return 'it is still running: its result goes to the audit log, but the queue keeps none';
  if (ended === 'failed')
    return 'its attempt here failed, so no result of it is in the audit log: queue the film again';
  if (ended === 'predicted' || ended === 'reused')
    return `its result is in the audit log (${ended}): only the queue's record of the job is lost`;
  return `it had ended (${ended}): nothing of it is missing from the audit log`;
}

/**
 * A job whose keys Redis lost (a FLUSHALL, a restart without persistence) is said in words, once per job: BullMQ
 * says only "Missing key for job ..." or "Missing lock for job ...", at error level, several times per job (the
 * lock's renewals, the move to completed, then to failed). A lost lock alone is also what a job that stalled and
 * went to another worker shows: said so only when the job's hash is gone too. A job still running here is said when
 * its attempt ends (`ended`), which tells where the audit log stands. `seen` returns whether `err` was such a line
 * (`otherwise` then gets the ones that were not, after the check).
 */
function lostJobs(
  worker: Worker,
  active: ReadonlySet<string>,
  settled: Map<string, string>,
  error: (line: string) => void,
): { seen: (err: Error, otherwise: (err: Error) => void) => boolean; ended: (id: string) => void } {
  const said = new Set<string>();
  const running = new Set<string>();
  const say = (id: string, now = false) => {
    if (said.has(id)) return;
    if (!now && active.has(id)) {
      running.add(id);
      return;
    }
    running.delete(id);
    // Bounded: a worker running for months meets many losses only if Redis keeps losing its data.
    if (said.size >= 10_000) said.clear();
    said.add(id);
    error(
      `job ${id}: Redis lost this job's keys (a FLUSHALL, or a restart without persistence): the queue no longer ` +
        `knows the job, and it will not be retried; ${auditStand(settled.get(id))}. See docs/deployment.md ` +
        '"If Redis loses its data" for what to queue again',
    );
    settled.delete(id);
  };
  const seen = (err: Error, otherwise: (err: Error) => void) => {
    const key = MISSING_KEY.exec(err.message);
    if (key) {
      say(key[1]);
      return true;
    }
    const lock = MISSING_LOCK.exec(err.message);
    if (!lock) return false;
    const id = lock[1] ?? lock[2];
    if (said.has(id)) return true;
    worker.client
      // The worker's client is ioredis' (redisConnection), whose EXISTS BullMQ's narrower type leaves out.
      .then((c) => (c as unknown as Pick<Redis, 'exists'>).exists(worker.toKey(id)))
      .then(
        (n) => (n === 0 ? say(id) : otherwise(err)),
        () => otherwise(err),
      );
    return true;
  };
  return { seen, ended: (id) => running.has(id) && say(id, true) };
}

/**
 * The worker's Redis errors as lines: one error when Redis goes away (a worker's two connections each report every
 * failed reconnection, about once a second, which filled the log with pairs of the same line), nothing more while
 * it stays away, and one info line once every connection answers again. An error while all connections are up (a
 * command Redis refused) is logged as it comes.
 */
function watchOutage(
  redis: string,
  say: { log: (line: string) => void; error: (line: string) => void },
): { error: (err: Error) => void; watch: (...clients: RedisClient[]) => void } {
  const clients: RedisClient[] = [];
  let since: number | null = null;
  const allReady = () => clients.every((c) => c.status === 'ready');
  return {
    error: (err) => {
      if (since !== null) return; // said already, when it went away
      if (!isConnectionError(err) && (clients.length === 0 || allReady())) {
        say.error(`job queue (Redis at ${redis}): ${err.message}`);
        return;
      }
      since = Date.now();
      say.error(
        `job queue (Redis at ${redis}): ${err.message}: Redis does not answer; reconnecting, no job is taken ` +
          'until it answers (one line says when)',
      );
    },
    watch: (...watched) => {
      clients.push(...watched);
      for (const c of watched) {
        c.on('ready', () => {
          if (since === null || !allReady()) return;
          const seconds = Math.round((Date.now() - since) / 1000);
          since = null;
          say.log(`job queue (Redis at ${redis}) answers again, after ${seconds} s`);
        });
      }
    },
  };
}
