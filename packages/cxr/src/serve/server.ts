// Start-up and shutdown of `cxr serve`: the model is loaded and warmed up (one full prediction
// with a heat map) before the port opens, so the first client does not pay for it; on SIGTERM
// or SIGINT the server stops accepting, lets in-flight requests finish (their audit rows
// included), then closes the database cleanly. Every line goes through the one pino logger
// (src/log.ts), which Fastify's request log shares.
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { type AuditStore, openAuditStore } from './audit';
import { CLOSE_TIMEOUT_MS } from './audit_store';
import { buildApp, AppOptions, defaultWebDir } from './app';
import { serverTokens } from './auth';
import { listenUrl } from './exposure';
import { createLogger, type Logger } from '../log';
import { settlesWithin } from '../deadline';
import { boundedJobs, QUEUE_TIMEOUT_MS } from './jobs_bound';
import { ServeMetrics } from './metrics';
import type { JobsPort } from './routes/jobs';
import { retentionCutoff } from './retention';
import { trustedProxies } from './trust_proxy';
import type { ServePredictor } from './predictor_port';
import { Predictor } from '../predict/predictor';
import { DecodePool } from './decode_pool';

export interface ServerOptions
  extends Omit<AppOptions, 'predictor' | 'audit' | 'boundHost' | 'logger' | 'metrics' | 'jobs'> {
  /** Opens the job queue for the loaded model (POST/GET /api/v1/jobs); none: those answer 503. */
  openJobs?: (predictor: ServePredictor) => JobsPort & { close(): Promise<void> };
  host: string;
  port: number;
  /** The audit log: an SQLite file or a postgres:// URL (serve/audit.ts). */
  dbPath: string;
  /** Opens the audit log with `open` (the server's own opener), e.g. waiting while the database is away (cxr serve). */
  openAudit?: (open: () => Promise<AuditStore>) => Promise<AuditStore>;
  /** Loads the model; called once. */
  loadPredictor: () => Promise<ServePredictor>;
  /** Keep stored images this long (pruned at start and every hour); undefined = forever. */
  retainImagesMs?: number;
  /** The logger of every server line, the request log included (default: JSON lines on stderr at info). */
  log?: Logger;
  /** What /metrics reports (default: a new registry with the process metrics). */
  metrics?: ServeMetrics;
  /**
   * Worker threads that decode uploads for a Predictor that decodes on the main thread (default: `concurrency`,
   * else 2, as `cxr serve`; 0: decode on the main thread). A film's decode then does not hold /health and the other
   * requests. The pool is closed with the model.
   */
  decodeWorkers?: number;
}

export { defaultWebDir };

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  predictor: ServePredictor;
  audit: AuditStore;
  /** What /metrics reports: `metrics.addGauge(name, help, () => n)` exposes one more number. */
  metrics: ServeMetrics;
  /**
   * Idempotent: stops accepting, waits for in-flight requests, closes the log and the model. The log's close is
   * bounded (CLOSE_TIMEOUT_MS): past it, it fails with AuditCloseError, the model disposed all the same.
   */
  close(): Promise<void>;
  /** What close() is waiting for now, for a shutdown that gives up on it to name ("in-flight requests"). */
  closingStage?(): string;
}

/** A synthetic radiograph-sized image: exercises decode, inference and the heat map once. */
async function warmUpImage(): Promise<Buffer> {
  const size = 512;
  const px = Buffer.alloc(size * size);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) px[y * size + x] = ((x * 255) / size + (y * 64) / size) & 0xff;
  return sharp(px, { raw: { width: size, height: size, channels: 1 } })
    .png()
    .toBuffer();
}

/**
 * A Predictor loaded by the caller (`loadPredictor: () => Predictor.load(dir)`) decodes on the main thread: the
 * server gives it a pool of decode workers, as `cxr serve` has (its engine process owns one). Any other predictor
 * (a stand-in, one with its own decoder) is left as it is.
 */
function givePool(predictor: ServePredictor, size: number, log: Logger, metrics: ServeMetrics): void {
  if (!(predictor instanceof Predictor) || size < 1) return;
  const pool = new DecodePool({ size, log });
  if (predictor.decodeIn(pool)) metrics.watchDecodePool(() => pool.stats());
  else void pool.close();
}

/** How long a prediction's audit write waits for another program's lock on an SQLite log (then 503). */
const SQLITE_LOCK_WAIT_MS = 250;

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  // Checked before the model loads: a bad token is said at once (buildApp checks it again for its own callers).
  const tokenCount = serverTokens(opts).length;
  const proxies = trustedProxies(opts.trustProxy ?? []); // likewise a bad proxy address
  const log = opts.log ?? createLogger();
  const metrics = opts.metrics ?? new ServeMetrics();
  const pool = opts.decodeWorkers; // Checked before the model loads: givePool's throw would leave it loaded.
  if (pool !== undefined && !(Number.isInteger(pool) && pool >= 0)) throw new TypeError(`decodeWorkers: ${pool}`);
  const predictor = await opts.loadPredictor();
  givePool(predictor, opts.decodeWorkers ?? opts.concurrency ?? 2, log, metrics);
  let audit: AuditStore | null = null;
  let jobs: (JobsPort & { close(): Promise<void> }) | undefined;
  // Out here so that a start that fails after it was set (the port in use) stops it: it went on pruning the closed
  // log every hour, logging the failure, in a program that goes on after the failed start.
  let pruner: NodeJS.Timeout | undefined;
  try {
    const t0 = Date.now();
    await predictor.warmUp(await warmUpImage());
    const { name, version } = predictor.model;
    log.info({ model: { name, version }, warmUpMs: Date.now() - t0 }, `model ${name} ${version} loaded and warmed up`);
    // What limits a program's own Predictor (no gate, no heat maps, an unfinished run), as `cxr serve` says it of
    // its engine process's (cli/serve.ts): unsaid, a model without its gate answered every upload without it.
    if (predictor instanceof Predictor) {
      for (const note of predictor.notes) log.warn({ model: predictor.model.dir }, `model: ${note}`);
    }
    const open = () => openAuditStore(opts.dbPath, { busyTimeoutMs: SQLITE_LOCK_WAIT_MS, warn: (l) => log.warn(l) });
    audit = await (opts.openAudit ? opts.openAudit(open) : open());
    const opened = audit;
    const prune = async () => {
      if (opts.retainImagesMs === undefined) return;
      const n = await opened.pruneImages(retentionCutoff(opts.retainImagesMs));
      if (n) log.info({ pruned: n }, `removed the images of ${n} prediction(s) older than the retention`);
    };
    // A failed prune (a shared database briefly away, another program holding the SQLite lock past the
    // server's short wait) is said and retried the next hour, not fatal: at start-up either.
    const pruneOrSay = () =>
      prune().catch((e: unknown) => log.error({ err: e }, `pruning images failed: ${(e as Error).message}`));
    await pruneOrSay();
    pruner = setInterval(pruneOrSay, 3_600_000);
    pruner.unref();
    const opening = opts.openJobs?.(predictor);
    jobs = opening && boundedJobs(opening);
    if (jobs) {
      const queue = jobs;
      metrics.watchQueue(() => queue.depth());
    }
    const app = await buildApp({
      ...opts,
      boundHost: opts.host,
      predictor,
      audit,
      metrics,
      logger: log,
      jobs,
    });
    await app.listen({ host: opts.host, port: opts.port });
    // The bound address itself: fastify's return value names 127.0.0.1 even when bound to 0.0.0.0.
    const address = listenUrl(app.server.address());
    let closing: Promise<void> | null = null;
    let stage = 'in-flight requests';
    const server: RunningServer = {
      app,
      url: address,
      predictor,
      audit,
      metrics,
      close: () =>
        (closing ??= (async () => {
          clearInterval(pruner);
          await app.close();
          stage = 'the job queue (Redis)';
          if (jobs && !(await settlesWithin(jobs.close(), QUEUE_TIMEOUT_MS)))
            log.warn(`the job queue (Redis) did not close within ${QUEUE_TIMEOUT_MS / 1000} s: not waiting for it`);
          stage = `the audit log (${opened.location})`;
          try {
            // Bounded: a write that timed out for its client (503) may still wait on a database that is hung.
            await opened.close(CLOSE_TIMEOUT_MS);
          } finally {
            stage = 'the model';
            predictor.dispose();
          }
        })()),
      closingStage: () => stage,
    };
    log.info(
      {
        url: address,
        auditLog: audit.location,
        jobQueue: jobs !== undefined,
        tokensConfigured: tokenCount,
        metricsPublic: opts.metricsPublic ?? false,
        // Whose X-Forwarded-For gives the client address (--trust-proxy); none: the connection's own address.
        trustProxy: proxies,
      },
      `listening on ${address}`,
    );
    return server;
  } catch (e) {
    clearInterval(pruner);
    await audit?.close().catch(() => {});
    await jobs?.close().catch(() => {});
    predictor.dispose();
    throw e;
  }
}

/**
 * Closes the server on the first SIGTERM/SIGINT and exits; a second signal exits at once. Installed
 * before the server starts (`server` then returns undefined): a signal that arrives between the
 * "listening" line and the caller's next step must not meet Node's default, an abrupt kill.
 */
export function closeOnSignals(server: () => RunningServer | undefined, log: Logger, graceMs = 30_000): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, `${signal} again, exiting without waiting`);
      process.exit(130);
    }
    stopping = true;
    const running = server();
    if (!running) {
      log.info({ signal }, `${signal} before the server was listening: exiting`);
      process.exit(0);
    }
    log.info({ signal }, `${signal}: finishing in-flight requests, then closing the audit log`);
    const timer = setTimeout(() => {
      const waiting = running.closingStage?.() ?? 'in-flight requests';
      log.error({ graceMs, waiting }, `still waiting for ${waiting} after ${graceMs} ms, exiting`);
      process.exit(1);
    }, graceMs);
    timer.unref();
    running.close().then(
      () => {
        log.info('closed cleanly');
        process.exit(0);
      },
      (e: unknown) => {
        // AuditCloseError: the requests were all answered; the log did not close and says so.
        log.error({ err: e }, `error while closing: ${e instanceof Error ? e.message : String(e)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
