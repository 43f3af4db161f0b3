// Turning what `cxr enqueue`, `cxr orthanc sync --queue` and the API name into jobs: files (read
// once for their result key), Orthanc instances (their tags say whether they are chest films and
// give the SOP Instance UID; a film whose SR and SC are already in the PACS counts as done, and one
// whose results are missing is queued even when an earlier job for it finished).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { filmFormat } from '../data/dicom';
import { classifyInstance, type OrthancClient, storedResults } from '../pacs';
import type { InstanceOutcome } from '../pacs/sync';
import { type JobData, resultKeyOf } from './job';
import { enqueue, type EnqueueOutcome, type JobQueue, type Priority } from './queue';
import { sha256Of } from '../hash';

/** The model and options every job of one run shares. */
export interface JobSpec {
  modelSha256: string;
  operatingPoint: string;
  heatmap: boolean;
  requestedBy: string | null;
  priority: Priority;
  /** Years, stated for films whose header gives none (JPEG, PNG); not for Orthanc instances. */
  patientAge?: number;
}

/** A job's data: what to read, its result key, and the run's model and options. */
export function dataFor(spec: JobSpec, source: JobData['source'], resultKey: string): JobData {
  return {
    source,
    resultKey,
    model: { sha256: spec.modelSha256 },
    operatingPoint: spec.operatingPoint,
    heatmap: spec.heatmap,
    requestedBy: spec.requestedBy,
    ...(spec.patientAge !== undefined ? { patientAge: spec.patientAge } : {}),
  };
}

/** A file that the decoder would not read as a film: refused before it is queued. */
export class NotAFilmError extends Error {
  constructor(readonly file: string) {
    super(`${file}: not a JPEG, PNG or DICOM image; not queued`);
    this.name = 'NotAFilmError';
  }
}

/**
 * Queues one file by its absolute path (workers may run elsewhere in the same folder tree). Throws
 * NotAFilmError for a file the decoder would not read, rather than leaving it to fail on a worker.
 */
export async function enqueueFile(queue: JobQueue, spec: JobSpec, file: string): Promise<EnqueueOutcome> {
  return (await enqueueFileJob(queue, spec, file)).outcome;
}

/** enqueueFile, with the job's id (for GET /api/v1/jobs/ID: `cxr enqueue` prints it). */
export async function enqueueFileJob(
  queue: JobQueue,
  spec: JobSpec,
  file: string,
): Promise<{ id: string; outcome: EnqueueOutcome }> {
  const abs = path.resolve(file);
  const bytes = await fs.promises.readFile(abs);
  if (!filmFormat(bytes)) throw new NotAFilmError(file);
  const key = resultKeyOf(bytes, spec.patientAge);
  const data = dataFor(spec, { kind: 'file', path: abs }, key);
  return enqueue(queue, data, spec.priority, { filmSha256: sha256Of(bytes) });
}

/**
 * Queues an uploaded film whose bytes are already held (queue/uploads.ts). Its `name` is not kept in the job
 * (job.ts JobSourceSchema).
 */
export function enqueueUpload(
  queue: JobQueue,
  spec: JobSpec,
  upload: { sha256: string; name?: string; resultKey: string },
): Promise<{ id: string; outcome: EnqueueOutcome }> {
  return enqueue(
    queue,
    dataFor(spec, { kind: 'upload', sha256: upload.sha256, name: '' }, upload.resultKey),
    spec.priority,
  );
}

/** Why a stated age is refused with Orthanc instances. */
export const ORTHANC_AGE =
  "a stated patient age is not taken for films in the PACS: their DICOM header's PatientAge is read";

/**
 * What the PACS says of one instance: not a chest film (ownResult: one of cxr's own results, which `cxr enqueue`
 * counts apart from the films it skips), or a chest film and whether its results are stored.
 */
export type InstanceCheck =
  | { accept: false; reason: string; ownResult?: true }
  | { accept: true; sopInstanceUid: string; resultsStored: boolean };

/**
 * Reads an instance's tags and looks for its SR and SC in the PACS; a lateral view is skipped unless `lateral` is
 * 'read' (a film a request names, classifyInstance). Throws OrthancError (HTTP 404 for an id the
 * PACS does not have, `outage` for the PACS away).
 */
export async function checkInstance(
  client: OrthancClient,
  spec: JobSpec,
  id: string,
  opts: { lateral?: 'skip' | 'read' } = {},
): Promise<InstanceCheck> {
  // Its SR and SC are named by film, model and operating point alone: one result per instance.
  if (spec.patientAge !== undefined) throw new Error(ORTHANC_AGE);
  const tags = await client.instanceTags(id);
  const verdict = classifyInstance(tags, opts);
  if (!verdict.accept)
    return { accept: false, reason: verdict.reason, ...(verdict.ownResult ? { ownResult: true } : {}) };
  const ref = {
    studyInstanceUid: String(tags.StudyInstanceUID).trim(),
    sopInstanceUid: String(tags.SOPInstanceUID).trim(),
  };
  const stored = await storedResults(client, ref, { sha256: spec.modelSha256 }, spec.operatingPoint);
  return { accept: true, sopInstanceUid: ref.sopInstanceUid, resultsStored: stored.done };
}

export type OrthancOutcome = EnqueueOutcome | 'skipped';

/**
 * Queues a checked instance when it is a chest film. With checkPacs (a backfill, the sync), a film whose SR
 * and SC are in the PACS counts as done without a job; the API always gets a job, so that its id can be
 * followed. A film whose results are missing is queued even when a job for it finished (its results were
 * deleted since): such a job does not count as done.
 */
export async function queueInstance(
  queue: JobQueue,
  spec: JobSpec,
  id: string,
  check: InstanceCheck,
  opts: { checkPacs?: boolean; log?: (line: string) => void } = {},
): Promise<{ outcome: OrthancOutcome; id: string | null; reason?: string; ownResult?: true }> {
  if (!check.accept) {
    opts.log?.(`skip ${id}: ${check.reason}`);
    return { outcome: 'skipped', id: null, reason: check.reason, ...(check.ownResult ? { ownResult: true } : {}) };
  }
  if (check.resultsStored && (opts.checkPacs ?? true)) return { outcome: 'already-done', id: null };
  const data = dataFor(spec, { kind: 'orthanc', instanceId: id }, check.sopInstanceUid);
  return enqueue(queue, data, spec.priority, { resultsMissing: !check.resultsStored });
}

/** checkInstance, then queueInstance. */
export async function enqueueInstance(
  queue: JobQueue,
  client: OrthancClient,
  spec: JobSpec,
  id: string,
  opts: { checkPacs?: boolean; log?: (line: string) => void } = {},
): Promise<{ outcome: OrthancOutcome; id: string | null; reason?: string; ownResult?: true }> {
  return queueInstance(queue, spec, id, await checkInstance(client, spec, id), opts);
}

/**
 * For syncOnce's handleInstance: queued counts as processed, done elsewhere as already done. `seen` hears each
 * film's outcome with its job or reason (`cxr orthanc sync --queue` counts and says them).
 */
export function syncHandler(
  queue: JobQueue,
  client: OrthancClient,
  spec: JobSpec,
  seen?: (id: string, r: Awaited<ReturnType<typeof enqueueInstance>>) => void,
): (id: string) => Promise<InstanceOutcome> {
  return async (id) => {
    const r = await enqueueInstance(queue, client, spec, id);
    seen?.(id, r);
    const o = r.outcome;
    return o === 'skipped' ? 'skipped' : o === 'queued' || o === 'requeued' ? 'processed' : 'already-done';
  };
}

/** Every instance in the PACS, page by page (a backfill of the archive). */
export async function* allInstances(client: OrthancClient, pageSize = 500): AsyncGenerator<string> {
  for (let since = 0; ; since += pageSize) {
    const page = await client.instances(since, pageSize);
    yield* page;
    if (page.length < pageSize) return;
  }
}
