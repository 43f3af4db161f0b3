// What a worker does with one job: the same work as `cxr predict` (predictFile: the file read, then
// Predictor.predict) for files and uploads, the same as `cxr orthanc sync` (processInstance) for
// Orthanc instances, and one audit row per result. A job can run more than once (its worker killed
// mid-job, the lock expired, another worker took it), so every step is safe to repeat:
// - the audit row is written with insertOnce on (result key, model, operating point); a second
//   run finds it and writes nothing (an upload job that wants a heat map its row lacks writes its
//   own row without a key: answerAgain). A row found by a UID answers only a film of the same bytes:
//   another film with that UID gets a row of its own (film_rows.ts);
// - SR and Secondary Capture have UIDs derived from the film, model and operating point, and
//   processInstance stores only those not in the PACS yet;
// - the row is written before the results are stored, so a run killed in between still leaves
//   its row, and the retry stores the results.
// A throw that is not an UnrecoverableError is retried (retry.ts): an audit log, Orthanc or network
// outage until the service is back, so every call to the audit log names it when it fails.
import { UnrecoverableError } from 'bullmq';
import {
  filmKeyOf,
  type JobData,
  type JobResult,
  type JobSource,
  JobSourceSchema,
  parseJobData,
  resultKeyOf,
} from './job';
import { type FilmRowStore, type FilmSha256, findFilmRow, insertFilmRow } from './film_rows';
import { jobIdOf } from './queue';
import {
  auditLogError,
  CHANGED,
  DEFAULT_RETRY,
  fileReadError,
  filmRefused,
  nextRetryMs,
  type RetryPolicy,
  UNREADABLE,
} from './retry';
import type { UploadStore } from './uploads';
import { type OrthancClient, OrthancError, processInstance } from '../pacs';
import { DecodeError, readErrorCode, readImageFile } from '../data/decode';
import { auditRecordOf } from '../predict/audit_record';
import { InputError } from '../predict/errors';
import { type ApiPrediction, type AuditRecord, predictionSchema } from '../predict/prediction_schema';
import type { Prediction, Predictor } from '../predict/predictor';
import { showsHeatmap, statusOf } from '../predict/verdict';
import type { AuditImages, AuditStore } from '../serve/audit';
import { compactImages } from '../serve/retention';
import { toApi } from '../serve/routes/common';
import { sha256Of } from '../hash';

/**
 * The audit log as the queue needs it: written once per result, found again by its key; named in errors. `insert`
 * writes a row without a key: a film's answer again, with the heat map its keyed row lacks (see filmJob).
 */
export type ResultStore = Pick<AuditStore, 'insert' | 'insertOnce' | 'findByResultKey' | 'location'>;

export interface JobContext {
  predictor: Predictor;
  store: ResultStore;
  uploads: UploadStore;
  /** Needed for Orthanc jobs only. */
  orthanc: OrthancClient | null;
  /** Keep the heat map (and thumbnail) of file and upload jobs in the audit log. */
  storeImages: boolean;
  /** Info lines; `warn` and `error` default to it (the worker gives each its level). */
  log: (line: string) => void;
  /** A failed attempt that will be retried. */
  warn?: (line: string) => void;
  /** A job failed for good; the queue's Redis away. */
  error?: (line: string) => void;
  /**
   * Fault injection for the kill -9 test: wait this long after the audit row is written and
   * before the results are stored (CXR_WORKER_PAUSE_AFTER_AUDIT_MS). Zero in production.
   */
  pauseAfterAuditMs?: number;
}

/** The record as POST /predictions answers it: the Prediction schema's fields, nothing more. */
function apiView(record: AuditRecord, verdict?: Prediction['verdict']): ApiPrediction {
  const full: Record<string, unknown> = {
    ...toApi(record, record.hasHeatmap, record.hasThumbnail),
    ...(verdict ? { verdict } : {}),
  };
  return Object.fromEntries(
    Object.keys(predictionSchema.properties)
      .filter((k) => full[k] !== undefined)
      .map((k) => [k, full[k]]),
  ) as ApiPrediction;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The audit log as film_rows.ts uses it: each failure names the log (and an outage is retried). */
function rowsOf(ctx: JobContext): FilmRowStore {
  const named = <T>(p: Promise<T>) =>
    p.catch((e: unknown) => {
      throw auditLogError(ctx.store.location, e);
    });
  return {
    insertOnce: (record, images, key) => named(ctx.store.insertOnce(record, images, key)),
    findByResultKey: (key, model, op) => named(ctx.store.findByResultKey(key, model, op)),
  };
}

/** The stored row of the job's film (of these bytes: film_rows.ts), or null. */
function findRow(ctx: JobContext, data: JobData, filmSha256: FilmSha256): Promise<AuditRecord | null> {
  return findFilmRow(rowsOf(ctx), data.resultKey, data.model.sha256, data.operatingPoint, filmSha256);
}

/**
 * A file job's film, read as `cxr predict` reads it (data/decode.ts readImageFile: a regular file, refused over
 * the input limit before it is read), its file-system error classified: a share that is away is waited out, a
 * file that is gone is the film's fault (retry.ts fileReadError).
 */
async function readFilm(file: string): Promise<Buffer> {
  try {
    return await readImageFile(file);
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    if (readErrorCode(e) !== undefined) throw fileReadError(file, e.cause);
    throw filmRefused(e.code, e.message); // not a regular file, over the limit
  }
}

/**
 * Whether a stored row answers this job: always, unless the job asks for a heat map the worker keeps and the row
 * has none although its film could have one. The PACS path (Orthanc jobs, cxr orthanc sync) keeps its heat map in
 * the PACS (the Secondary Capture) and writes rows without images; an upload's client reads the heat map from the
 * API, as POST /predictions gives it.
 */
function answersJob(ctx: JobContext, data: JobData, row: AuditRecord): boolean {
  if (!data.heatmap || !ctx.storeImages || row.hasHeatmap) return true;
  return !showsHeatmap(statusOf(row)); // a film the model cannot assess has no heat map anywhere
}

/**
 * Writes the row once; when another run wrote it first, that row is the result, unless it lacks the heat map this
 * run made for the job (a PACS row written meanwhile): then the result is a row of its own (answerAgain).
 */
async function recordOnce(
  ctx: JobContext,
  data: JobData,
  prediction: Prediction,
  latencyMs: number,
  images: AuditImages | null,
): Promise<AuditRecord> {
  const record = auditRecordOf(prediction, {
    model: ctx.predictor.model,
    latencyMs,
    requestedBy: data.requestedBy,
    hasHeatmap: !!images?.heatmapPng,
    hasThumbnail: !!images?.thumbnailPng,
    resultKey: data.resultKey,
  });
  const written = await insertFilmRow(rowsOf(ctx), record, images, data.resultKey);
  if (written.written === 'inserted') return written.record;
  const first = written.row;
  if (!first) throw new Error(`audit log: ${data.resultKey} was reported present and then not found`);
  if (answersJob(ctx, data, first) || !images?.heatmapPng) return first;
  return answerAgain(ctx, { ...record, resultKey: null }, images);
}

/**
 * The audit log keeps one keyed row per (result key, model, operating point) (a unique index, audit_migrations.ts
 * v3): the film's answer, written once however many runs and workers race on it, and found by a job that runs
 * again. When that row has no heat map and an upload job asks for one, the answer is made again, with its images,
 * and written as a row without a key, as POST /predictions writes every answer: the keyed row stays the film's one
 * answer (the index forbids a second, and changing a logged row is not the audit log's way), and the new row is
 * this request's own record, with its token. A job that runs twice may write two such rows; nothing else is lost.
 */
async function answerAgain(ctx: JobContext, record: AuditRecord, images: AuditImages): Promise<AuditRecord> {
  try {
    await ctx.store.insert(record, images);
  } catch (e) {
    throw auditLogError(ctx.store.location, e);
  }
  return record;
}

/** A file job's sha256 of the film as it was queued (the film part of its id: queue.ts jobIdOf), if there. */
const queuedSha256 = (jobId: string) => /^sha256-([0-9a-f]{64})/.exec(jobId)?.[1] ?? null;

/** The bytes of an upload job's film; a film no longer held cannot be predicted by any retry. */
async function heldFilm(ctx: JobContext, sha256: string): Promise<Buffer> {
  const held = await ctx.uploads.get(sha256);
  if (!held) throw new UnrecoverableError(`the uploaded film ${sha256} is no longer held (upload it again)`);
  return held;
}

async function filmJob(ctx: JobContext, data: JobData, jobId: string): Promise<JobResult> {
  const { source } = data;
  if (source.kind === 'orthanc') throw new Error('filmJob: not a film');
  const what = source.kind === 'file' ? source.path : 'the upload';
  // A file is read first: the row of its UID answers it only when made from the same bytes (film_rows.ts). An
  // upload's source names its bytes, which are fetched only when they are predicted.
  let bytes: Buffer | null = null;
  let sha256: string;
  if (source.kind === 'file') {
    bytes = await readFilm(source.path);
    sha256 = sha256Of(bytes);
  } else sha256 = source.sha256;
  const queued = source.kind === 'file' ? queuedSha256(jobId) : null;
  if (queued && queued !== sha256) throw filmRefused(CHANGED, `${what} changed since it was queued`);
  const known = await findRow(ctx, data, sha256);
  if (known && answersJob(ctx, data, known)) {
    if (source.kind === 'upload') await ctx.uploads.release(source.sha256, jobId);
    return { outcome: 'reused', resultKey: data.resultKey, prediction: apiView(known) };
  }
  if (!bytes) {
    bytes = await heldFilm(ctx, sha256);
    // Held under its digest, but Redis is written by other programs too: bytes that are not the film queued would
    // be predicted and audited under its key (and that row then answer the film).
    if (sha256Of(bytes) !== sha256)
      throw new UnrecoverableError('the held upload is not the film queued (upload it again)');
  }
  // Thumbnails for uploads only, as cxr serve keeps them; a file job does what cxr predict does.
  const opts = {
    operatingPoint: data.operatingPoint,
    heatmap: data.heatmap,
    thumbnail: ctx.storeImages && source.kind === 'upload',
    patientAge: data.patientAge,
  };
  const started = performance.now();
  let prediction: Prediction;
  try {
    prediction = await ctx.predictor.predict(bytes, opts);
  } catch (e) {
    // Never retried: the worker's 'failed' handler lets the film go (letGoOfFailed).
    if (e instanceof InputError) throw filmRefused(e.code, e.message);
    throw e;
  }
  const latencyMs = performance.now() - started;
  // A bare DICOM data set queued by an older version was keyed by its bytes' sha256 (it is keyed by its
  // UID now): the same bytes are the same film.
  const queuedKey = filmKeyOf(data.resultKey);
  if (resultKeyOf(bytes) !== queuedKey && queuedKey !== `sha256:${sha256}`) {
    throw filmRefused(CHANGED, `${what} changed since it was queued`);
  }
  const images = ctx.storeImages
    ? await compactImages({ heatmapPng: prediction.heatmapPng, thumbnailPng: prediction.thumbnailPng })
    : null;
  const record = await recordOnce(ctx, data, prediction, latencyMs, images);
  if (ctx.pauseAfterAuditMs) await pause(ctx.pauseAfterAuditMs);
  if (source.kind === 'upload') await ctx.uploads.release(source.sha256, jobId);
  return { outcome: 'predicted', resultKey: data.resultKey, prediction: apiView(record, prediction.verdict) };
}

/** What `letGoOfFailed` reads of a BullMQ job (attemptsMade counts the attempt that failed). */
export interface FailedJob {
  id?: string;
  data: unknown;
  attemptsMade: number;
  opts: { attempts?: number; backoff?: number | { type: string; delay?: number } };
}

/**
 * A failed job that will not run again (unrecoverable, out of attempts, or an outage longer than the
 * worker's `policy` retries) lets go of its uploaded film, as a finished one does; otherwise its bytes
 * would stay in Redis for good and fill the upload cap. Another job for the same film keeps it. True
 * when the film was let go.
 */
export async function letGoOfFailed(
  uploads: UploadStore,
  job: FailedJob,
  err: Error,
  policy: RetryPolicy = DEFAULT_RETRY,
): Promise<boolean> {
  if (nextRetryMs(policy, job, err) !== null || !job.id) return false;
  const source = jobSourceOf(job.data);
  if (source?.kind !== 'upload') return false;
  await uploads.release(source.sha256, job.id);
  return true;
}

/**
 * The job's source, read from the whole job data or, when that is refused, from its `source` alone: a job
 * whose other fields no longer parse (queued before an upgrade that changed the rules for its result key)
 * fails unrecoverably, and its uploaded film must still be let go. Null when the source itself is unusable.
 */
function jobSourceOf(raw: unknown): JobSource | null {
  try {
    return parseJobData(raw).source;
  } catch {
    const alone = JobSourceSchema.safeParse((raw as { source?: unknown } | null)?.source);
    return alone.success ? alone.data : null;
  }
}

/**
 * Orthanc refusing the worker's login (HTTP 401/403, OrthancError code ORTHANC_AUTH): a configuration fault, the
 * same for every job, that no retry mends. The job fails at once, saying what to fix, rather than after three
 * silent attempts; the worker checks the login at start too (cli/worker.ts), so this is a login changed since.
 */
function loginRefused(e: unknown): UnrecoverableError | null {
  if (!(e instanceof OrthancError) || (e.status !== 401 && e.status !== 403)) return null;
  return new UnrecoverableError(
    `Orthanc refused this worker's login (${e.message}): not retried. Fix the worker's CXR_ORTHANC_USER and ` +
      'CXR_ORTHANC_PASSWORD (or --orthanc-config), restart it, and queue the film again (cxr enqueue --orthanc-all)',
  );
}

/**
 * An instance deleted from Orthanc since it was queued (a study sent by mistake and removed, a backfill job that
 * waited hours) answers 404: the film's absence, as a file job's ENOENT, which no retry mends. Without this the
 * job was tried 3 times and failed with Orthanc's raw 404 body and no errorCode. Only when the instance itself is
 * confirmed gone: a 404 from elsewhere (a STOW to an Orthanc without its DICOMweb plugin) stays a retried error.
 */
async function instanceGone(client: OrthancClient, instanceId: string, e: unknown): Promise<UnrecoverableError | null> {
  if (!(e instanceof OrthancError) || e.status !== 404) return null;
  try {
    await client.instanceTags(instanceId);
    return null;
  } catch (again) {
    if (!(again instanceof OrthancError) || again.status !== 404) return null;
  }
  return filmRefused(
    'READ_FAILED',
    `instance ${instanceId} is no longer in Orthanc (deleted since it was queued): not retried; ` +
      'queue the film again if it is sent again',
  );
}

async function orthancJob(ctx: JobContext, data: JobData, instanceId: string): Promise<JobResult> {
  if (!ctx.orthanc) {
    throw new UnrecoverableError(
      'an Orthanc job, and this worker has no Orthanc configured (CXR_ORTHANC_URL or --orthanc-config)',
    );
  }
  let made: { record: AuditRecord; verdict: Prediction['verdict'] } | null = null;
  let outcome: Awaited<ReturnType<typeof processInstance>>;
  // Why a film failed, for the job's error: what an API client reads (GET /jobs/:id), the worker's log being on
  // another machine.
  let why: string | null = null;
  try {
    // A film the model cannot read is 'failed'; anything else that goes wrong (a bug, a broken install: not the
    // film's fault) is thrown (pacs/sync.ts ProcessingError) and retried as retry.ts says.
    outcome = await processInstance(ctx.orthanc, ctx.predictor, instanceId, {
      operatingPoint: data.operatingPoint,
      log: ctx.log,
      // Queued only when a request named it (the sync and backfills skip lateral views): it is answered.
      lateral: 'read',
      onFailed: (reason) => {
        why = reason;
      },
      onPrediction: async (prediction, film) => {
        if (film.sopInstanceUid !== data.resultKey) {
          throw new UnrecoverableError(`instance ${instanceId} is now ${film.sopInstanceUid}, not ${data.resultKey}`);
        }
        // The heat map lives in the PACS (the Secondary Capture); the row keeps the numbers.
        made = { record: await recordOnce(ctx, data, prediction, film.latencyMs, null), verdict: prediction.verdict };
        if (ctx.pauseAfterAuditMs) await pause(ctx.pauseAfterAuditMs);
      },
    });
  } catch (e) {
    throw loginRefused(e) ?? (await instanceGone(ctx.orthanc, instanceId, e)) ?? e;
  }
  if (outcome === 'failed') {
    throw filmRefused(
      UNREADABLE,
      `instance ${instanceId} is not a film the model can read${why ? `: ${why}` : " (the worker's log says why)"}`,
    );
  }
  if (outcome === 'skipped') return { outcome: 'skipped', resultKey: data.resultKey, prediction: null };
  const m = made as { record: AuditRecord; verdict: Prediction['verdict'] } | null;
  if (m) return { outcome: 'predicted', resultKey: data.resultKey, prediction: apiView(m.record, m.verdict) };
  // Done before (its SR and SC in the PACS): the row of its UID answers only if made from this instance's bytes,
  // which are fetched to tell (only when there is such a row). An instance deleted since its tags were read fails
  // here as at the read (READ_FAILED, at once); it was tried 3 times with Orthanc's raw 404.
  const orthanc = ctx.orthanc;
  const instanceSha256 = () =>
    orthanc.instanceFile(instanceId).then(sha256Of, async (e: unknown) => {
      throw loginRefused(e) ?? (await instanceGone(orthanc, instanceId, e)) ?? e;
    });
  const known = await findRow(ctx, data, instanceSha256);
  return { outcome: 'already-done', resultKey: data.resultKey, prediction: known ? apiView(known) : null };
}

/**
 * Runs one job's data; throws UnrecoverableError for what a retry cannot fix. `jobId`: the job's id in the queue
 * (an upload lets go of its film under it); by default the one this version gives the data (queue.ts jobIdOf).
 */
export async function processJob(ctx: JobContext, raw: unknown, jobId?: string): Promise<JobResult> {
  let data: JobData;
  try {
    data = parseJobData(raw);
  } catch (e) {
    throw new UnrecoverableError((e as Error).message);
  }
  if (data.model.sha256 !== ctx.predictor.model.sha256) {
    throw new UnrecoverableError(
      `the job is for model ${data.model.sha256.slice(0, 12)}…, this worker serves ` +
        `${ctx.predictor.model.name} ${ctx.predictor.model.sha256.slice(0, 12)}… (run a worker with that model)`,
    );
  }
  if (!Object.hasOwn(ctx.predictor.model.meta.operatingPoints, data.operatingPoint)) {
    throw new UnrecoverableError(`unknown operating point '${data.operatingPoint}'`);
  }
  if (data.source.kind === 'orthanc') return orthancJob(ctx, data, data.source.instanceId);
  return filmJob(ctx, data, jobId ?? jobIdOf(data));
}
