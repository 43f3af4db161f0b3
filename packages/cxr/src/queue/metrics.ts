// What `cxr worker --metrics-port` exposes at /metrics, in Prometheus text format (prom-client, as cxr serve's
// serve/metrics.ts). A worker on a host of its own is otherwise seen only through its log: its throughput, the
// films it refused, the jobs that failed for good and the queue's depth are what an operator's alerts watch.
// Labels come from closed sets only (a job's outcome, an error code, a queue state): never a job id, a path or a
// UID, which would grow the series without bound and could carry patient data.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { LATE } from '../deadline';
import { MISNAMED_DEFAULT_GAUGES, QUEUE_SCRAPE_WAIT_MS, withoutNaN } from '../serve/metrics';
import { queueProbe } from '../serve/queue_probe';
import type { JobResult } from './job';
import { type JobQueue, onRedis } from './queue';
import type { RefusedCode } from './retry';

/** Seconds: a file job with the tiny model takes tens of ms, an Orthanc job with STOW seconds. */
const JOB_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** A finished job's codes (job.ts JobResult's outcome): made now, from the audit log, from the PACS, no chest film. */
export const DONE_CODES = [
  'predicted',
  'reused',
  'already-done',
  'skipped',
] as const satisfies readonly JobResult['outcome'][];

/**
 * Every refusal code, each once. A Record, not a list: a code added to InputErrorCode fails to compile here until
 * it is added, so that every refused series exists at 0 before its first refusal.
 */
const REFUSAL_CODES: Record<RefusedCode, null> = {
  EMPTY: null,
  READ_FAILED: null,
  TOO_LARGE: null,
  TOO_MANY_PIXELS: null,
  UNSUPPORTED_FORMAT: null,
  CORRUPT: null,
  TRUNCATED: null,
  INVALID_RAW: null,
  NOT_DICOM: null,
  UNSUPPORTED_TRANSFER_SYNTAX: null,
  UNSUPPORTED_PIXEL_FORMAT: null,
  NO_PIXEL_DATA: null,
  TRANSFER_SYNTAX_MISMATCH: null,
  UNKNOWN_OPERATING_POINT: null,
  BAD_PATIENT_AGE: null,
  BAD_OPTION: null,
  NOT_A_CHEST_XRAY: null,
  DECODE_TIMEOUT: null,
  UNREADABLE: null,
  CHANGED: null,
};
export const REFUSED_CODES = Object.keys(REFUSAL_CODES) as readonly RefusedCode[];

/**
 * Why a job failed for good, other than its film: an outage the retries did not outlast, other failures once
 * their attempts were spent, or a failure no retry mends (a job for another model, Orthanc refusing the login, an
 * upload no longer held, a film changed since it was queued).
 */
export const FAILED_CODES = ['OUTAGE', 'ATTEMPTS', 'UNRECOVERABLE'] as const;
export type FailedCode = (typeof FAILED_CODES)[number];

/** The queue's states as cxr_worker_queue_jobs labels them (waiting includes prioritized jobs). */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
export type QueueStates = Record<(typeof QUEUE_STATES)[number], number>;

/**
 * Why an attempt is retried (cxr_worker_retries_total's reason): upper case, as FAILED_CODES and the refusal codes,
 * for a code that names a failure (OUTAGE is the same outage in both); a result, an outcome or a state is lower case.
 */
export const RETRY_REASONS = ['OUTAGE', 'OTHER'] as const;
export type RetryReason = (typeof RETRY_REASONS)[number];

/** How a job ended for this worker, as the metrics count it. */
export type JobEnd =
  | { outcome: 'done'; code: JobResult['outcome'] }
  /** The film's fault (corrupt, unsupported, not a chest X-ray under --ood-policy refuse): an input error code. */
  | { outcome: 'refused'; code: RefusedCode }
  | { outcome: 'failed'; code: FailedCode }
  /** An attempt that failed and will run again: an outage, or another failure with attempts left. */
  | { outcome: 'retried'; code: RetryReason };

/** The worker's jobs as metrics see them (queue/worker.ts calls it); `seconds` is null when no attempt was timed. */
export interface JobObserver {
  ended(end: JobEnd, seconds: number | null): void;
  running(delta: 1 | -1): void;
}

/** The job counts by state of one model's queue, read from Redis. */
export async function queueStates(queue: JobQueue): Promise<QueueStates> {
  const c = await onRedis(queue, () => queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'failed'));
  return {
    waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
    active: c.active ?? 0,
    delayed: c.delayed ?? 0,
    failed: c.failed ?? 0,
  };
}

export class WorkerMetrics implements JobObserver {
  readonly registry = new Registry();
  private readonly jobs: Counter<'outcome' | 'code'>;
  private readonly retries: Counter<'reason'>;
  private readonly duration: Histogram<'outcome'>;
  private inProgress = 0;

  constructor(opts: { defaultMetrics?: boolean; concurrency?: number } = {}) {
    const registers = [this.registry];
    this.jobs = new Counter({
      name: 'cxr_worker_jobs_total',
      help:
        'Jobs this worker finished, by outcome: done (code: predicted, reused, already-done, skipped), refused (the ' +
        "film's fault; code: the input error, e.g. TRUNCATED, NOT_A_CHEST_XRAY) or failed for good (code: OUTAGE, " +
        'ATTEMPTS, UNRECOVERABLE)',
      labelNames: ['outcome', 'code'],
      registers,
    });
    // Present from the start at 0: rate() and increase() need a series before its first event (the first refusal of
    // a kind, else, would be the series' first sample, and increase() would see no change).
    for (const code of DONE_CODES) this.jobs.inc({ outcome: 'done', code }, 0);
    for (const code of REFUSED_CODES) this.jobs.inc({ outcome: 'refused', code }, 0);
    for (const code of FAILED_CODES) this.jobs.inc({ outcome: 'failed', code }, 0);
    this.retries = new Counter({
      name: 'cxr_worker_retries_total',
      help: 'Attempts that failed and will run again, by reason: OUTAGE (audit log, Orthanc, network) or OTHER',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of RETRY_REASONS) this.retries.inc({ reason }, 0);
    this.duration = new Histogram({
      name: 'cxr_worker_job_duration_seconds',
      help: 'Time one attempt of a job took on this worker, by how it ended (done, refused, failed, retried)',
      labelNames: ['outcome'],
      buckets: JOB_BUCKETS,
      registers,
    });
    const running = () => this.inProgress;
    new Gauge({
      name: 'cxr_worker_jobs_running',
      help: 'Jobs running on this worker now',
      registers,
      collect() {
        this.set(running());
      },
    });
    if (opts.concurrency !== undefined) {
      const concurrency = opts.concurrency;
      new Gauge({
        name: 'cxr_worker_concurrency',
        help: 'Jobs this worker runs at once at most (--concurrency)',
        registers,
        collect() {
          this.set(concurrency);
        },
      });
    }
    if (opts.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry });
      for (const name of MISNAMED_DEFAULT_GAUGES) this.registry.removeSingleMetric(name);
    }
  }

  ended(end: JobEnd, seconds: number | null): void {
    if (end.outcome === 'retried') this.retries.inc({ reason: end.code });
    else this.jobs.inc({ outcome: end.outcome, code: end.code });
    if (seconds !== null) this.duration.observe({ outcome: end.outcome }, seconds);
  }

  running(delta: 1 | -1): void {
    this.inProgress = Math.max(0, this.inProgress + delta);
  }

  /**
   * The queue's depth by state (cxr_worker_queue_jobs), read when Prometheus scrapes, and whether Redis answered
   * within `waitMs` (cxr_worker_queue_available). A Redis that is away never answers: past `waitMs` the depth has
   * no samples (a gap, not a made-up 0), and a read still pending serves the next scrape (serve/queue_probe.ts).
   */
  watchQueue(read: () => Promise<QueueStates>, waitMs = QUEUE_SCRAPE_WAIT_MS): void {
    const probe = queueProbe(read, waitMs);
    const states = async (): Promise<QueueStates | null> => {
      const r = await probe();
      return r !== LATE && r.ok ? r.value : null;
    };
    new Gauge<'state'>({
      name: 'cxr_worker_queue_jobs',
      help: "Jobs in this worker's model's queue, by state (waiting, active, delayed: waiting to be retried, failed)",
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        const s = await states();
        this.reset();
        if (s) for (const state of QUEUE_STATES) this.set({ state }, s[state]);
      },
    });
    new Gauge({
      name: 'cxr_worker_queue_available',
      help: `1 when the job queue (Redis) answered this scrape within ${waitMs} ms, else 0`,
      registers: [this.registry],
      async collect() {
        this.set((await states()) ? 1 : 0);
      },
    });
  }

  async text(): Promise<string> {
    return withoutNaN(await this.registry.metrics());
  }
}

export interface MetricsEndpoint {
  /** http://host:port/metrics, the port the system gave for port 0. */
  url: string;
  /** The HTTP server itself (tests reach its events through it). */
  server: http.Server;
  close(): Promise<void>;
}

/**
 * How long a scrape's request may take to arrive, its headers included (Node's requestTimeout and headersTimeout,
 * 300 s and 60 s by default, the headers checked only every 30 s): a client that dribbles them holds one of the few
 * connections no longer than this. Prometheus sends its request at once.
 */
export const SCRAPE_REQUEST_TIMEOUT_MS = 10_000;

/**
 * Connections held at once at most: Prometheus scrapes over one or two, and a client that opens many (a scanner,
 * a loop gone wrong) is refused past this rather than taking the worker's file descriptors.
 */
export const SCRAPE_MAX_CONNECTIONS = 16;

/** At most one line per this long for the endpoint's errors (an accept failing under EMFILE repeats per client). */
const ERROR_LINE_EVERY_MS = 60_000;

/** `say`, at most once per `everyMs`; the lines held back in between are counted in the next one. */
function rateLimited(say: (line: string) => void, everyMs: number): (line: string) => void {
  let last = Number.NEGATIVE_INFINITY;
  let held = 0;
  return (line) => {
    const now = Date.now();
    if (now - last < everyMs) {
      held++;
      return;
    }
    last = now;
    say(held > 0 ? `${line} (and ${held} more since the last such line)` : line);
    held = 0;
  };
}

/**
 * Serves GET /metrics on `host`:`port` (nothing else: 404, or 405 for another method on /metrics). Its own small
 * server, not fastify: the worker answers no API, and a scrape must not wait behind a job (none runs on it).
 * After it listens, the server's errors (Node reports a failed accept, EMFILE when the process is out of file
 * descriptors, as the server's 'error') go to `warn`, rate-limited: with no listener they would throw and stop
 * the worker in the middle of its jobs, for a scrape it could not take.
 */
export async function serveWorkerMetrics(
  metrics: WorkerMetrics,
  o: { host: string; port: number; warn?: (line: string) => void; requestTimeoutMs?: number },
): Promise<MetricsEndpoint> {
  const timeout = o.requestTimeoutMs ?? SCRAPE_REQUEST_TIMEOUT_MS;
  const server = http.createServer(
    {
      headersTimeout: timeout,
      requestTimeout: timeout,
      // Node checks both timeouts only this often (30 s by default): a quarter of the bound keeps it.
      connectionsCheckingInterval: Math.max(10, Math.min(2_000, Math.floor(timeout / 4))),
    },
    (req, res) => {
      const pathname = (req.url ?? '').split('?')[0];
      if (pathname !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the worker answers GET /metrics only\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('GET /metrics\n');
        return;
      }
      metrics.text().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(e as Error).message}\n`),
      );
    },
  );
  server.maxConnections = SCRAPE_MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const warn = rateLimited(o.warn ?? (() => {}), ERROR_LINE_EVERY_MS);
  server.on('error', (e: NodeJS.ErrnoException) =>
    warn(`metrics endpoint: ${e.message}: a scrape may go unanswered; the worker goes on with its jobs`),
  );
  const { port } = server.address() as AddressInfo;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${host}:${port}/metrics`,
    server,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        // A scraper's keep-alive connection would hold close() open until it times out.
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
