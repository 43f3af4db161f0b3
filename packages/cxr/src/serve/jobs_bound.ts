// The job queue's answers within a bound. BullMQ waits for Redis to come back when it goes away (a worker
// rides out a restart that way), so without a bound a request to /jobs, and a /metrics scrape that reads the
// queue's depth, stayed open for as long as Redis was down. Now they answer 503 QUEUE_UNAVAILABLE after
// QUEUE_TIMEOUT_MS. A film whose submission timed out may still be queued once Redis answers; offering it
// again finds that job (the job id is the film's), so a client's retry is safe.
import { LATE, orLate } from '../deadline';
import { HttpError } from './http_error';
import type { JobsPort } from './routes/jobs';

export const QUEUE_TIMEOUT_MS = 5_000;

/** A batch of Orthanc ids is looked up in the PACS first (up to 1000, 8 at a time): a longer bound. */
export const ORTHANC_BATCH_TIMEOUT_MS = 120_000;

export function boundedJobs<P extends JobsPort>(port: P, ms = QUEUE_TIMEOUT_MS): P {
  const within = async <T>(work: Promise<T>, bound = ms, who = 'the job queue (Redis)'): Promise<T> => {
    const r = await orLate(work, bound);
    if (r === LATE)
      throw new HttpError(503, 'QUEUE_UNAVAILABLE', `${who} did not answer within ${bound / 1000} s; retry later`);
    return r;
  };
  return {
    ...port,
    submitUpload: (bytes, name, o) => within(port.submitUpload(bytes, name, o)),
    submitOrthanc: (id, o) => within(port.submitOrthanc(id, o)),
    // Lookups still running past the bound may queue their films later; a retry finds those jobs.
    submitOrthancAll: (ids, o) =>
      within(
        port.submitOrthancAll(ids, o),
        Math.max(ms, ORTHANC_BATCH_TIMEOUT_MS),
        'the PACS (Orthanc) or the job queue (Redis)',
      ),
    status: (id) => within(port.status(id)),
    depth: () => within(port.depth()),
  };
}
