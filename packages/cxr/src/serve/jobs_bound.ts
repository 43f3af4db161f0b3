// The job queue's answers within a bound. BullMQ waits for Redis to come back when it goes away (a worker
// rides out a restart that way), so without a bound a request to /jobs, and a /metrics scrape that reads the
// queue's depth, stayed open for as long as Redis was down. Now they answer 503 QUEUE_UNAVAILABLE after
// QUEUE_TIMEOUT_MS. A film whose submission timed out may still be queued once Redis answers; offering it
// again finds that job (the job id is the film's), so a client's retry is safe.
//
// Orthanc ids are different: their lookups in the PACS are cut off when the bound fires (an AbortSignal down
// to the PACS client's requests), and the 503 is sent once the request's work has stopped, so that a slow PACS
// does not have films queued after the client was told to try again.
import { LATE, orLate, settlesWithin } from '../deadline';
import { HttpError } from './http_error';
import type { JobsPort } from './routes/jobs';

export const QUEUE_TIMEOUT_MS = 5_000;

/** A batch of Orthanc ids is looked up in the PACS first (up to 1000, 8 at a time): a longer bound. */
export const ORTHANC_BATCH_TIMEOUT_MS = 120_000;

/**
 * How long a 503 for Orthanc ids waits for the stopped work to settle. The lookups end at once when aborted;
 * a film being queued at that moment ends within the producer's own bound on Redis (queue.ts, 5 s).
 */
const STOP_WAIT_MS = 6_000;

/**
 * `port` with each call answered within `ms` (a batch of Orthanc ids within `batchMs`, never less than `ms`), or
 * an HttpError 503 QUEUE_UNAVAILABLE.
 */
export function boundedJobs<P extends JobsPort>(port: P, ms = QUEUE_TIMEOUT_MS, batchMs = ORTHANC_BATCH_TIMEOUT_MS): P {
  const late = (who: string, bound: number) =>
    new HttpError(503, 'QUEUE_UNAVAILABLE', `${who} did not answer within ${bound / 1000} s; retry later`);
  const within = async <T>(work: Promise<T>, bound = ms, who = 'the job queue (Redis)'): Promise<T> => {
    const r = await orLate(work, bound);
    if (r === LATE) throw late(who, bound);
    return r;
  };
  /** `start(signal)` within `bound`; past it the signal aborts, and the 503 waits for the work to stop. */
  const stopping = async <T>(
    start: (signal: AbortSignal) => Promise<T>,
    callerSignal: AbortSignal | undefined,
    bound: number,
    who: string,
  ): Promise<T> => {
    const bounded = new AbortController();
    const signal = callerSignal ? AbortSignal.any([callerSignal, bounded.signal]) : bounded.signal;
    const work = start(signal);
    const r = await orLate(work, bound);
    if (r !== LATE) return r;
    const answer = late(who, bound);
    bounded.abort(answer);
    await settlesWithin(work, STOP_WAIT_MS);
    throw answer;
  };
  const pacsOrRedis = 'the PACS (Orthanc) or the job queue (Redis)';
  const batchBound = Math.max(ms, batchMs);
  return {
    ...port,
    submitUpload: (bytes, name, o) => within(port.submitUpload(bytes, name, o)),
    submitOrthanc: (id, o, signal) =>
      stopping((s) => port.submitOrthanc(id, o, s), signal, ms, 'the job queue (Redis)'),
    submitOrthancAll: (ids, o, signal) =>
      stopping((s) => port.submitOrthancAll(ids, o, s), signal, batchBound, pacsOrRedis),
    status: (id) => within(port.status(id)),
    depth: () => within(port.depth()),
  };
}
