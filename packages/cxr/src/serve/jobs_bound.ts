// The job queue's answers within a bound. BullMQ waits for Redis to come back when it goes away (a worker
// rides out a restart that way), so without a bound a request to /jobs, and a /metrics scrape that reads the
// queue's depth, stayed open for as long as Redis was down. Now they answer 503 QUEUE_UNAVAILABLE after
// QUEUE_TIMEOUT_MS. A film whose submission timed out may still be queued once Redis answers; offering it
// again finds that job (the job id is the film's), so a client's retry is safe.
import { HttpError } from './http_error';
import type { JobsPort } from './routes/jobs';

export const QUEUE_TIMEOUT_MS = 5_000;

/**
 * Whether `work` settled (resolved or failed: for a close, either means it is over) within `ms`. Closing a
 * queue waits for Redis; a caller that must go on stops waiting, and a late failure is not left unhandled.
 */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function boundedJobs<P extends JobsPort>(port: P, ms = QUEUE_TIMEOUT_MS): P {
  const within = <T>(work: Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new HttpError(
              503,
              'QUEUE_UNAVAILABLE',
              `the job queue (Redis) did not answer within ${ms / 1000} s; retry later`,
            ),
          ),
        ms,
      );
    });
    return Promise.race([work, late]).finally(() => clearTimeout(timer));
  };
  return {
    ...port,
    idPattern: port.idPattern,
    submitUpload: (bytes, name, o) => within(port.submitUpload(bytes, name, o)),
    submitOrthanc: (id, o) => within(port.submitOrthanc(id, o)),
    status: (id) => within(port.status(id)),
    depth: () => within(port.depth()),
  };
}
