// The HTTP API's view of the queue (serve/routes/jobs.ts's JobsPort): uploads are held in Redis
// and queued at normal priority; Orthanc instances are queued by id, all of a request's ids checked
// in the PACS before any is queued; a job's state and result are read back from BullMQ. Redis or
// Orthanc being away answers 503 (with Retry-After), an id the PACS does not have 422, never 500.
import type { Job } from 'bullmq';
import { type OrthancClient, OrthancError } from '../pacs';
import { HttpError } from '../serve/http_error';
import { type JobOptions, type JobState, type JobsPort, overJobUploadCap, type Submitted } from '../serve/routes/jobs';
import { isRedisDown, QUEUE_UNAVAILABLE, RedisDatabaseError } from './connection';
import { canonicalJobId, type JobData, type JobResult, parseJobResult, resultKeyOf } from './job';
import { offersOf, recordOffer } from './job_offers';
import { refusedReasonParts } from './retry';
import { shownLabel } from '../predict/verdict';
import { enqueue, type JobQueue, jobIdOf, queueDepth, redisSelected } from './queue';
import {
  checkInstance,
  dataFor,
  type InstanceCheck,
  type JobSpec,
  type OrthancOutcome,
  queueInstance,
} from './sources';
import { UploadStore } from './uploads';
import { sha256Of } from '../hash';

/**
 * Retry-After of a 503 for the PACS refusing the server's login, or for a URL with no Orthanc under its path:
 * a configuration to fix, not a blip.
 */
export const PACS_LOGIN_RETRY_AFTER_S = 300;

export interface QueueApiOptions {
  queue: JobQueue;
  model: { sha256: string; defaultOperatingPoint: string };
  /** For JSON bodies of Orthanc instance ids; without it they answer 503. */
  orthanc: OrthancClient | null;
  /** Bytes of uploads held for workers, all together (default 1 GiB). */
  uploadCapBytes?: number;
  /** How long an upload held for a job that is not in the queue is kept (uploads.ts ORPHAN_GRACE_MS). */
  orphanGraceMs?: number;
  /** The server's log, for what a 503 does not tell the client (Orthanc's own words, its URL). */
  log?: (line: string) => void;
}

export interface QueueApi extends JobsPort {
  /**
   * Queues every instance named, or none: all are looked up in the PACS first (HttpError 422 naming the ids it
   * does not have, 503 when it is away, refuses this server's login or has no Orthanc under the URL's path),
   * then queued. Once `signal` aborts, lookups under way are cut off and nothing more is queued: the call
   * throws the signal's reason.
   */
  submitOrthancAll(instanceIds: readonly string[], o: JobOptions, signal?: AbortSignal): Promise<Submitted[]>;
  close(): Promise<void>;
}

/** Instances looked up in the PACS at once by one request (each lookup is two or three HTTP calls). */
const CHECKS_AT_ONCE = 8;
/** Unknown ids named in one answer. */
const NAMED_AT_MOST = 10;

/**
 * The API's answer to a call that failed because Redis is away, or refuses the database of the server's URL (a
 * configuration to fix: Retry-After as for a refused PACS login); anything else is left as it is.
 */
function queueAnswer(e: unknown, log?: (line: string) => void): unknown {
  if (e instanceof RedisDatabaseError) {
    log?.(`/jobs: ${e.message}`);
    return new HttpError(
      503,
      QUEUE_UNAVAILABLE,
      "the job queue (Redis) has no database of the number in this server's CXR_REDIS_URL: its administrator " +
        'must fix the URL; nothing was queued',
      PACS_LOGIN_RETRY_AFTER_S,
    );
  }
  if (e instanceof HttpError || !isRedisDown(e)) return e;
  return new HttpError(503, QUEUE_UNAVAILABLE, 'the job queue (Redis) does not answer; retry later');
}

/**
 * Why a film named by a request is answered `already-done` though a job was queued for it now: the sync (or a
 * backfill's job, since removed) stored its results, which `cxr enqueue --orthanc-all` counts as done. It still gets
 * a job, so that its prediction can be followed; the worker finds the results and predicts nothing again.
 */
export const RESULTS_IN_PACS_REASON =
  'its report and heat map are in the PACS already: nothing is predicted again; its job reads the prediction ' +
  'back from the audit log';

/** One instance's answer: a film whose results are in the PACS is done, whatever its job's state. */
function answered(check: InstanceCheck, r: { id: string | null; outcome: OrthancOutcome; reason?: string }): Submitted {
  const fresh = r.outcome === 'queued' || r.outcome === 'requeued';
  if (check.accept && check.resultsStored && fresh)
    return { id: r.id, status: 'already-done', reason: RESULTS_IN_PACS_REASON };
  return { id: r.id, status: r.outcome, ...(r.reason ? { reason: r.reason } : {}) };
}

export function queueApi(o: QueueApiOptions): QueueApi {
  /** `work` on the queue's database (queue.ts redisSelected: never database 0 for a number Redis lacks). */
  async function answering<T>(work: () => Promise<T>): Promise<T> {
    try {
      await redisSelected(o.queue);
      return await work();
    } catch (e) {
      throw queueAnswer(e, o.log);
    }
  }

  const capBytes = o.uploadCapBytes ?? 1024 ** 3;
  const uploads = new UploadStore(o.queue, capBytes, o.orphanGraceMs);
  /** Whether this server looked for the uploads left by a server that died before queueing their jobs. */
  let swept = false;
  const spec = (opts: JobOptions): JobSpec => ({
    modelSha256: o.model.sha256,
    operatingPoint: opts.operatingPoint ?? o.model.defaultOperatingPoint,
    heatmap: opts.heatmap,
    requestedBy: opts.requestedBy,
    priority: 'normal',
    ...(opts.patientAge !== undefined ? { patientAge: opts.patientAge } : {}),
  });

  async function submitUpload(bytes: Buffer, name: string, opts: JobOptions): Promise<Submitted> {
    // Past the whole cap a film never fits: 413 rather than a 503 retried for ever (the route checks every film
    // of a request first; this holds for any other caller).
    if (bytes.length > capBytes) throw overJobUploadCap(name, bytes.length, capBytes);
    const s = spec(opts);
    const sha256 = sha256Of(bytes);
    // The file name is the request's (routes/jobs.ts answers with it); the job data keeps none (job.ts).
    const data = dataFor(s, { kind: 'upload', sha256, name: '' }, resultKeyOf(bytes, s.patientAge));
    // The bytes first: a worker never sees a job whose film is not held. A finished job's
    // film is not held again (the result stands).
    const existing = await o.queue.getJob(jobIdOf(data));
    const state = existing ? await existing.getState() : null;
    if (state !== 'completed' && !(await hold(sha256, bytes, jobIdOf(data)))) {
      throw new HttpError(503, 'BUSY', 'too many uploaded films are waiting for a worker; retry later');
    }
    const r = await enqueue(o.queue, data, 'normal');
    if (opts.requestedBy !== null) await recordOffer(o.queue, r.id, opts.requestedBy);
    return { id: r.id, status: r.outcome };
  }

  /**
   * Holds the film for job `id`; false when the held uploads are over the cap even without those that no job
   * holds. Those are what a server that died between holding a film and queueing its job leaves, and would take
   * the cap's room for good: they are looked for once the cap is found full, and at this server's first upload.
   */
  async function hold(sha256: string, bytes: Buffer, id: string): Promise<boolean> {
    // A sweep that fails says so in the log only: the film is answered as it would be without it.
    const sweep = () =>
      uploads.releaseOrphans().catch((e: unknown) => {
        o.log?.(`/jobs: could not look for uploaded films that no job holds (${(e as Error).message})`);
        return { droppedBytes: 0 };
      });
    if (!swept) {
      swept = true;
      void sweep();
    }
    if ((await uploads.put(sha256, bytes, id)) !== 'over-cap') return true;
    if ((await sweep()).droppedBytes === 0) return false;
    return (await uploads.put(sha256, bytes, id)) !== 'over-cap';
  }

  /** Every instance looked up, CHECKS_AT_ONCE at a time; the PACS's refusals as the API answers them. */
  async function checkAll(client: OrthancClient, s: JobSpec, ids: readonly string[]): Promise<InstanceCheck[]> {
    const checks: InstanceCheck[] = new Array(ids.length);
    const unknown: number[] = [];
    let next = 0;
    // A URL without Orthanc under its path (a proxy's prefix left out) makes every lookup a 404: the first 404
    // asks whether Orthanc is there at all, once for the whole request, before any id is called unknown.
    let wrongPath: Promise<OrthancError | null> | undefined;
    const lookUp = async () => {
      for (let i = next++; i < ids.length; i = next++) {
        try {
          try {
            // Named by the request: a lateral view is answered too (its report says why it cannot be assessed).
            checks[i] = await checkInstance(client, s, ids[i], { lateral: 'read' });
          } catch (e) {
            if (!(e instanceof OrthancError && e.status === 404)) throw e;
            const bad = await (wrongPath ??= client.wrongPathError());
            if (bad) throw bad;
            unknown.push(i);
          }
        } catch (e) {
          next = ids.length; // the other lookups stop: the request is answered with this
          throw e;
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(CHECKS_AT_ONCE, ids.length) }, lookUp));
    } catch (e) {
      throw pacsAnswer(e);
    }
    if (unknown.length > 0) {
      // Named in the order they were sent (the lookups finish in any order).
      const named = unknown
        .sort((a, b) => a - b)
        .slice(0, NAMED_AT_MOST)
        .map((i) => ids[i])
        .join(', ');
      const more = unknown.length > NAMED_AT_MOST ? ` and ${unknown.length - NAMED_AT_MOST} more` : '';
      throw new HttpError(
        422,
        'UNKNOWN_INSTANCE',
        `the PACS has no instance ${named}${more}: nothing in this request was queued`,
      );
    }
    return checks;
  }

  /** A failure of the PACS as the API answers it: 503, with Orthanc's own words in the server's log only. */
  function pacsAnswer(e: unknown): unknown {
    if (!(e instanceof OrthancError)) return e;
    o.log?.(`POST /jobs: ${e.message}`);
    const login = e.status === 401 || e.status === 403;
    const path = e.code === 'ORTHANC_BAD_PATH';
    return new HttpError(
      503,
      'PACS_UNAVAILABLE',
      login
        ? "the PACS (Orthanc) refuses this server's login: its administrator must check CXR_ORTHANC_USER and " +
            'CXR_ORTHANC_PASSWORD; nothing in this request was queued'
        : path
          ? "the path of this server's PACS (Orthanc) URL looks wrong: no Orthanc answers under it, so every " +
            'instance would read as unknown. Its administrator must check CXR_ORTHANC_URL (behind a proxy it ' +
            "includes the proxy's path, e.g. https://host/pacs); nothing in this request was queued"
          : `the PACS (Orthanc) ${e.outage ? 'does not answer' : 'gave an unexpected answer'}; ` +
            'nothing in this request was queued, retry later',
      // A refused login or a wrong URL lasts until someone fixes it: clients should not retry every second.
      login || path ? PACS_LOGIN_RETRY_AFTER_S : undefined,
    );
  }

  async function submitOrthancAll(
    ids: readonly string[],
    opts: JobOptions,
    signal?: AbortSignal,
  ): Promise<Submitted[]> {
    if (!o.orthanc) {
      // Retry-After as for a refused login: none until the server is restarted with one (1 s had clients ask on).
      throw new HttpError(
        503,
        'NO_PACS',
        'this server has no Orthanc configured (CXR_ORTHANC_URL or --orthanc-config): send the films',
        PACS_LOGIN_RETRY_AFTER_S,
      );
    }
    const s = spec(opts);
    // The signal cuts off the lookups under way (a slow PACS past the request's bound) rather than letting
    // them run on and queue films after the request was answered.
    const checks = await checkAll(signal ? o.orthanc.withSignal(signal) : o.orthanc, s, ids);
    const out: Submitted[] = [];
    for (const [i, id] of ids.entries()) {
      signal?.throwIfAborted(); // answered already: nothing more is queued
      const r = await answering(async () => {
        const q = await queueInstance(o.queue, s, id, checks[i], { checkPacs: false });
        if (q.id !== null && opts.requestedBy !== null) await recordOffer(o.queue, q.id, opts.requestedBy);
        return q;
      });
      out.push(answered(checks[i], r));
    }
    return out;
  }

  /**
   * A finished job's result, checked (job.ts JobResultSchema): null when it stored none, else the result or why
   * it cannot be read. Nothing of a result that does not match is answered: the job's answer says so.
   */
  function storedResult(id: string, value: unknown): { result: JobResult | null; unreadable: string | null } {
    if (value === null || value === undefined) return { result: null, unreadable: null };
    try {
      return { result: parseJobResult(value), unreadable: null };
    } catch (e) {
      o.log?.(`GET /jobs/${id}: ${(e as Error).message}`);
      return {
        result: null,
        unreadable:
          `the job finished, but the result it stored does not match what this server reads ` +
          `(${(e as Error).message}): it was written by another version of cxr, or not by cxr. ` +
          'Its prediction, if one was made, is in the audit log (GET /api/v1/predictions)',
      };
    }
  }

  async function status(id: string): Promise<JobState | null> {
    let job = (await o.queue.getJob(id)) as Job<JobData, unknown> | undefined;
    if (!job) return null;
    const state = await job.getState();
    // Read again once finished: the first read may predate the result.
    if (state === 'completed' || state === 'failed') job = ((await o.queue.getJob(id)) as typeof job) ?? job;
    const status = state === 'completed' || state === 'failed' || state === 'active' ? state : 'waiting';
    const { result, unreadable } =
      status === 'completed' ? storedResult(id, job.returnvalue) : { result: null, unreadable: null };
    const prediction = result?.prediction ?? null;
    const failed = status === 'failed' ? refusedReasonParts(job.failedReason || 'failed') : null;
    // A job waiting out an outage (retry.ts) keeps its last attempt's failure: said, so that a job waiting for
    // Orthanc or the audit log does not read as one merely queued. A job queued again after it failed has none.
    const lastTry = status === 'waiting' && job.attemptsMade > 0 && job.failedReason ? job.failedReason : null;
    const waitingWhy = lastTry
      ? `waiting to be tried again: attempt ${job.attemptsMade} failed (${refusedReasonParts(lastTry).message})`
      : null;
    return {
      id,
      status,
      requestedBy: job.data.requestedBy ?? null,
      offeredBy: await offersOf(o.queue, id),
      outcome: result?.outcome ?? null,
      // A result stored before the label rule (kept 7 days), or by a worker not yet upgraded, kept the model
      // label of a cannot-assess answer: read through the same rule as every other answer (verdict.ts).
      prediction: prediction && { ...prediction, label: shownLabel(prediction) },
      error: failed ? failed.message : (unreadable ?? waitingWhy),
      errorCode: failed?.code ?? null,
    };
  }

  return {
    modelSha256: o.model.sha256,
    uploadCapBytes: capBytes,
    canonicalId: canonicalJobId,
    depth: () => queueDepth(o.queue),
    submitUpload: (bytes, name, opts) => answering(() => submitUpload(bytes, name, opts)),
    submitOrthanc: async (instanceId, opts, signal) => (await submitOrthancAll([instanceId], opts, signal))[0],
    submitOrthancAll,
    status: (id) => answering(() => status(id)),
    close: () => o.queue.close(),
  };
}
