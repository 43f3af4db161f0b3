// The HTTP API's view of the queue (serve/routes/jobs.ts's JobsPort): uploads are held in Redis
// and queued at normal priority; Orthanc instances are queued by id; a job's state and result are
// read back from BullMQ.
import type { Job } from 'bullmq';
import type { OrthancClient } from '../pacs';
import { HttpError } from '../serve/http_error';
import type { JobOptions, JobState, JobsPort, Submitted } from '../serve/routes/jobs';
import { canonicalJobId, type JobData, resultKeyOf, sha256Of } from './job';
import type { JobResult } from './process';
import { enqueue, type JobQueue, jobIdOf, queueDepth } from './queue';
import { dataFor, enqueueInstance, type JobSpec } from './sources';
import { UploadStore } from './uploads';

export interface QueueApiOptions {
  queue: JobQueue;
  model: { sha256: string; defaultOperatingPoint: string };
  /** For JSON bodies of Orthanc instance ids; without it they answer 503. */
  orthanc: OrthancClient | null;
  /** Bytes of uploads held for workers, all together (default 1 GiB). */
  uploadCapBytes?: number;
}

export interface QueueApi extends JobsPort {
  close(): Promise<void>;
}

export function queueApi(o: QueueApiOptions): QueueApi {
  const uploads = new UploadStore(o.queue, o.uploadCapBytes ?? 1024 ** 3);
  const spec = (opts: JobOptions): JobSpec => ({
    modelSha256: o.model.sha256,
    operatingPoint: opts.operatingPoint ?? o.model.defaultOperatingPoint,
    heatmap: opts.heatmap,
    requestedBy: opts.requestedBy,
    priority: 'normal',
    ...(opts.patientAge !== undefined ? { patientAge: opts.patientAge } : {}),
  });
  return {
    canonicalId: canonicalJobId,
    depth: () => queueDepth(o.queue),
    async submitUpload(bytes, name, opts): Promise<Submitted> {
      const s = spec(opts);
      const sha256 = sha256Of(bytes);
      const data = dataFor(s, { kind: 'upload', sha256, name }, resultKeyOf(bytes, s.patientAge));
      // The bytes first: a worker never sees a job whose film is not held. A finished job's
      // film is not held again (the result stands).
      const existing = await o.queue.getJob(jobIdOf(data));
      const state = existing ? await existing.getState() : null;
      if (state !== 'completed' && (await uploads.put(sha256, bytes, jobIdOf(data))) === 'over-cap') {
        throw new HttpError(503, 'BUSY', 'too many uploaded films are waiting for a worker; retry later');
      }
      const r = await enqueue(o.queue, data, 'normal');
      return { id: r.id, status: r.outcome };
    },
    async submitOrthanc(instanceId, opts): Promise<Submitted> {
      if (!o.orthanc) {
        throw new HttpError(503, 'NO_PACS', 'this server has no Orthanc configured (CXR_ORTHANC_URL): send the films');
      }
      const r = await enqueueInstance(o.queue, o.orthanc, spec(opts), instanceId, { checkPacs: false });
      return { id: r.id, status: r.outcome, ...(r.reason ? { reason: r.reason } : {}) };
    },
    async status(id): Promise<JobState | null> {
      let job = (await o.queue.getJob(id)) as Job<JobData, JobResult> | undefined;
      if (!job) return null;
      const state = await job.getState();
      // Read again once finished: the first read may predate the result.
      if (state === 'completed' || state === 'failed') job = ((await o.queue.getJob(id)) as typeof job) ?? job;
      const status = state === 'completed' || state === 'failed' || state === 'active' ? state : 'waiting';
      const result = status === 'completed' ? (job.returnvalue as JobResult | null) : null;
      return {
        id,
        status,
        outcome: result?.outcome ?? null,
        prediction: (result?.prediction as Record<string, unknown> | null | undefined) ?? null,
        error: status === 'failed' ? job.failedReason || 'failed' : null,
      };
    },
    close: () => o.queue.close(),
  };
}
