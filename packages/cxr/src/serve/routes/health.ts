// GET /health: liveness, the served model and whether the audit log answers; public even when the
// server needs a token.
//
// 503 while the audit log is away, or answers but refuses writes (the same outage that makes predictions answer
// 503 and cxr_audit_available 0). Load balancers and orchestrators read /health to decide where
// traffic goes, and they act on the status code, not the body: a server that cannot log a prediction
// cannot answer one (no answer without its audit row), so it must not be sent any while its peers can.
// Its body still names the model and says what is down. Use it as a readiness check, not as liveness:
// restarting the server does not bring the database back. 503 too while the model cannot answer: its engine
// process ended and a new one loads it (seconds), or that load failed (`engine`, predictor_port.ts EngineState).
//
// The job queue (Redis) is reported, not decided on: a server started with one says `queue: available` or
// `unavailable`, but the status stays 200 `ok` while only the queue is away, for predictions (the service a
// load balancer routes) need no queue; only the /jobs routes answer 503 QUEUE_UNAVAILABLE meanwhile. The
// queue is watched in the background too, so that the server log says once when it goes away and once when
// it answers again, whether or not anything asks.
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { LATE, orLate } from '../../deadline';
import { AUDIT_RETRY_AFTER_S, AUDIT_WAIT_MS, type AuditGuard } from '../audit_guard';
import { AuditUnavailableError } from '../audit_store';
import { ENGINE_RETRY_AFTER_S, type ServePredictor } from '../predictor_port';
import { type ProbeRead, queueProbe } from '../queue_probe';
import { healthDegradedSchema, healthSchema } from '../schemas';
import type { JobsPort } from './jobs';

export interface HealthRouteOptions {
  predictor: ServePredictor;
  audit: AuditGuard;
  authRequired: boolean;
  /** When the app was built (Date.now()): the uptime counts from there. */
  startedAt: number;
  /** The job queue, when the server was started with one: its state is reported and watched. */
  jobs?: Pick<JobsPort, 'depth'>;
  /** The largest file an upload may carry, reported so that a client can check before sending. */
  maxUploadBytes: number;
}

/** How long /health reuses the audit log's row count: a probe every second must not scan the table each time. */
export const HEALTH_COUNT_TTL_MS = 5_000;

/** How long /health waits for the audit log before answering 503: probes give up after a few seconds. */
export const HEALTH_AUDIT_WAIT_MS = 2_000;

/**
 * How long /health waits for a recount when its count is older than HEALTH_COUNT_TTL_MS. Counting a
 * SQLite log takes milliseconds, so the answer's count is fresh; a COUNT(*) slower than this (a large
 * PostgreSQL log) delays the answer by this much at most, and the answer carries the latest count.
 */
export const HEALTH_RECOUNT_WAIT_MS = 250;

/** How long /health waits for the job queue (as a /metrics scrape does): Redis answers in milliseconds. */
const HEALTH_QUEUE_WAIT_MS = 1_000;

/** How often the job queue is asked in the background, so that its outages are logged when nobody asks. */
const QUEUE_WATCH_MS = 5_000;

type QueueState = 'available' | 'unavailable';

/** What /health says while the model cannot answer (predictor_port.ts EngineState). */
const ENGINE_DOWN = {
  restarting: "the model's engine process ended and a new one is loading the model: predictions wait for it",
  unavailable:
    'the model could not be loaded again (the server log says why; it is tried again by itself): predictions ' +
    'are refused until it is',
} as const;

/**
 * The job queue's state: one read at a time (a probe, a /health answer; queue_probe.ts), the queue's depth as
 * /metrics reads it. A change of a settled read is logged, once each way; the first read is not, for cxr serve
 * says at start whether Redis answers.
 */
function watchQueue(jobs: Pick<JobsPort, 'depth'>, log: FastifyBaseLogger): () => Promise<QueueState> {
  let known: QueueState | null = null;
  let since = 0;
  const settled = (read: ProbeRead<unknown>) => {
    const now: QueueState = read.ok ? 'available' : 'unavailable';
    if (known !== null && now !== known) {
      if (!read.ok) {
        // The read's error names Redis (password hidden) and the cause; its advice is for API clients.
        const what = read.reason.replace(/(: is it running and reachable\?|; retry later)$/, '');
        log.warn(
          { queue: now, reason: read.reason },
          `${what || 'the job queue (Redis) does not answer'}: the /jobs routes answer 503 QUEUE_UNAVAILABLE ` +
            'until it answers again; predictions do not need it',
        );
      } else {
        const seconds = Math.round((Date.now() - since) / 1000);
        log.info({ queue: now, outageSeconds: seconds }, `the job queue (Redis) answers again, after ${seconds} s`);
      }
    }
    if (now !== known) since = Date.now();
    known = now;
  };
  const probe = queueProbe(() => jobs.depth(), HEALTH_QUEUE_WAIT_MS, settled);
  return async () => {
    const r = await probe();
    return r !== LATE && r.ok ? 'available' : 'unavailable';
  };
}

export function healthRoute(
  api: FastifyInstance,
  { predictor, audit, authRequired, startedAt, jobs, maxUploadBytes }: HealthRouteOptions,
): void {
  const queueState = jobs ? watchQueue(jobs, api.log) : null;
  if (queueState) {
    const timer = setInterval(() => void queueState(), QUEUE_WATCH_MS);
    timer.unref();
    api.addHook('onClose', async () => clearInterval(timer));
  }
  // Whether the log answers is a ping; the row count is for people, and on a large PostgreSQL log a
  // COUNT(*) can take seconds: it runs on the store itself (its slowness is no outage), one at a time,
  // and is redone when a probe finds it older than HEALTH_COUNT_TTL_MS. That probe waits for it
  // briefly (HEALTH_RECOUNT_WAIT_MS): answering the old count and recounting behind gave, after a
  // quiet spell, a count minutes old. A count not done by then is answered next time.
  let counted: { at: number; n: number } | null = null;
  let counting: Promise<void> | null = null;
  const recount = (): Promise<void> => {
    if (counting || (counted && Date.now() - counted.at <= HEALTH_COUNT_TTL_MS)) return counting ?? Promise.resolve();
    const at = Date.now();
    counting = audit.raw
      .count()
      .then((n) => {
        counted = { at, n };
      })
      .catch(() => {}) // an outage shows in the ping; a count that failed is simply not kept
      .finally(() => {
        counting = null;
      });
    return counting;
  };
  // A count still running when the server closes (a probe answered before a slow count finished) is waited
  // for, so that a closed server leaves no query behind, on a store its owner closes next. At most as long
  // as any use of the log may take: a database that does not answer does not hold the shutdown up.
  api.addHook('onClose', async () => {
    if (counting) await orLate(counting, AUDIT_WAIT_MS);
  });
  api.get(
    '/health',
    {
      // Monitors and load balancers add cache-busters: a liveness probe ignores its query (schemas_query.ts).
      config: { unknownQueryIgnored: true },
      schema: {
        summary: 'Liveness, the served model and the audit log (no token needed)',
        operationId: 'getHealth',
        tags: ['service'],
        security: [],
        response: {
          200: {
            description:
              'The server is up, the model is loaded and the audit log answers (the job queue, when there is one, ' +
              'may be away: see `queue`)',
            ...healthSchema,
          },
          // By media type: a 503 problem (BUSY while shutting down) is application/problem+json and keeps its shape.
          503: {
            description:
              'The audit log does not answer, or refuses writes: predictions are refused (AUDIT_UNAVAILABLE) ' +
              "until it takes them again; or the model's engine process ended and is restarting, or could not " +
              'load the model again (`engine`); see Retry-After. Shutting down: a BUSY problem',
            content: {
              'application/json': { schema: healthDegradedSchema },
              'application/problem+json': { schema: { $ref: 'Problem#' } },
            },
          },
        },
      },
    },
    async (_req, reply) => {
      const { name, version, sha256 } = predictor.model;
      // Asked beside the audit log, not after it: the answer waits for the slower of the two.
      const queue = queueState?.();
      const base = {
        model: { name, version, sha256 },
        uptimeSeconds: (Date.now() - startedAt) / 1000,
        authRequired,
        maxUploadBytes,
      };
      const t0 = Date.now();
      let answered: boolean;
      try {
        // Counted apart from the reads (operation="health"): probes come each second or so during an outage.
        const ping = audit.use(() => audit.raw.ping(), 'try again shortly', false, 'health');
        answered = (await orLate(ping, HEALTH_AUDIT_WAIT_MS)) !== LATE;
      } catch (e) {
        if (!(e instanceof AuditUnavailableError)) throw e; // a bug, not an outage: 500, logged
        answered = false;
      }
      // A log that answers its ping may still refuse rows (the disk full, a standby after a failover), as a
      // prediction's failed write found: every prediction is refused 503 meanwhile, so this says so too. The
      // guard checks with a write that changes nothing, at most every WRITE_PROBE_MS (no write per probe).
      let refusesWrites = false;
      if (answered && audit.down?.writes) {
        const check = await orLate(audit.writesRefused(), Math.max(0, HEALTH_AUDIT_WAIT_MS - (Date.now() - t0)));
        refusesWrites = check === LATE || check;
      }
      // Read after the audit log's wait: an engine that ended meanwhile is said now.
      const engine = predictor.engineState?.() ?? 'ready';
      if (answered && !refusesWrites) {
        // The first count is waited for within what is left of the bound, a recount briefly.
        const fresh = recount();
        const left = Math.max(0, HEALTH_AUDIT_WAIT_MS - (Date.now() - t0));
        if (counting) await orLate(fresh, counted ? Math.min(left, HEALTH_RECOUNT_WAIT_MS) : left);
        const n = counted as { n: number } | null;
        const state = queue && { queue: await queue };
        const predictions = n ? n.n : null;
        if (engine === 'ready')
          return { status: 'ok' as const, ...base, predictions, audit: 'ok' as const, engine, ...state };
        reply.code(503).header('Retry-After', String(ENGINE_RETRY_AFTER_S));
        return {
          status: 'degraded' as const,
          ...base,
          predictions,
          audit: 'ok' as const,
          engine,
          ...state,
          detail: ENGINE_DOWN[engine],
        };
      }
      // The reason (which may name the database's host) is in the server log, not on this public route.
      reply.code(503).header('Retry-After', String(AUDIT_RETRY_AFTER_S));
      const auditDown = refusesWrites
        ? 'the audit log answers but refuses writes (the disk full, a read-only standby): predictions are refused ' +
          'until it takes them again'
        : 'the audit log does not answer: predictions are refused until it does';
      return {
        status: 'degraded' as const,
        ...base,
        predictions: refusesWrites ? ((counted as { n: number } | null)?.n ?? null) : null,
        audit: 'unavailable' as const,
        engine,
        ...(queue && { queue: await queue }),
        detail: engine === 'ready' ? auditDown : `${auditDown}; ${ENGINE_DOWN[engine]}`,
      };
    },
  );
}
