// `cxr worker`: consumes the job queue until SIGTERM/SIGINT, then finishes the jobs in progress
// and exits 0. Start as many as the machines allow, on one Redis (docs/deployment.md). Closing
// waits for Redis too (BullMQ hands finished jobs back and quits its connections), so with Redis
// gone it would wait forever: after --close-timeout the worker exits 1 anyway, and a job still
// locked to it is retried by another worker once its lock runs out.
// A job that fails because the audit log, Orthanc or the network is away is retried with backoff
// (--retry-delay doubling up to --retry-max-delay) for a day; a film that cannot be read fails at once.
// With Orthanc configured, its login and its DICOMweb plugin are checked at start, as Redis and the audit log are:
// a wrong password, or no plugin to store results with, stops the worker (exit 1) instead of failing every Orthanc
// job it takes.
// --metrics-port opens GET /metrics (queue/metrics.ts): jobs by outcome, their durations, the queue's depth.
import { Command, InvalidArgumentError, Option } from 'commander';
import { intAtLeast, intInRange, MAX_TIMER_MS, positiveInt, timerMs } from './args';
import * as path from 'node:path';
import { settlesWithin } from '../deadline';
import { initEngine } from '../engine';
import { createLogger, resolveLogLevel } from '../log';
import { isOrthancAuthError, loadOrthancConfig, OrthancClient } from '../pacs';
import { Predictor } from '../predict/predictor';
import {
  connectQueue,
  DEFAULT_RETRY,
  type MetricsEndpoint,
  loadRedisUrl,
  MIN_LOCK_DURATION_MS,
  OTHER_ATTEMPTS,
  queueStates,
  redactRedisUrl,
  serveWorkerMetrics,
  startWorker,
  UploadStore,
  WorkerMetrics,
} from '../queue';
import { DEFAULT_DB_WORDS, defaultDbPath } from '../serve/audit';
import { checkModelOption } from './model_folder';
import { checkDbFolder, openAuditStoreForWriting } from './writable';

/**
 * Checks Orthanc once (GET /system, then the DICOMweb route results are stored by): a login it refuses, a URL that
 * is no Orthanc, or an Orthanc without its DICOMweb plugin stops the worker before it takes a job; Orthanc away
 * only warns (its jobs wait for it, retry.ts), as a worker may start before it.
 */
async function checkOrthanc(client: OrthancClient, log: (l: string) => void, warn: (l: string) => void) {
  try {
    const about = await client.checkConnection();
    log(`Orthanc at ${client.config.url} answers (${about.name} ${about.version})`);
    // Without its DICOMweb plugin every Orthanc job would fail at its STOW-RS, after all its tries: said now.
    await client.checkDicomWeb();
  } catch (e) {
    if (isOrthancAuthError(e)) {
      throw new Error(
        `worker: Orthanc refused its login (${e.message}); fix CXR_ORTHANC_USER and CXR_ORTHANC_PASSWORD ` +
          '(or --orthanc-config) and start it again',
      );
    }
    if ((e as { outage?: boolean }).outage !== true) throw new Error(`worker: ${(e as Error).message}`);
    warn(`Orthanc does not answer yet (${(e as Error).message}): its jobs are retried until it does`);
  }
}

/** A pause for fault-injection tests only (see queue/process.ts); absent or 0 in production. */
function pauseAfterAuditMs(): number {
  const v = Number(process.env.CXR_WORKER_PAUSE_AFTER_AUDIT_MS ?? 0);
  return Number.isFinite(v) && v > 0 ? Math.min(v, 600_000) : 0;
}

/**
 * What to do when the worker's audit log cannot be opened. Unlike cxr predict and cxr orthanc sync, the
 * worker has no --no-audit to suggest: the row is the lasting record of a file or upload job's result
 * (Redis keeps jobs a week), and finding it is what keeps a job that runs twice (a retry, a worker that
 * died) from making a second result.
 */
const NO_AUDIT_LOG_HINT =
  'a worker cannot run without its audit log (the lasting record of every result, and what keeps ' +
  'a job that runs twice from making two): make it reachable, or give another with --db or CXR_DB';

/** Why a shorter --lock-duration is refused (commander prints it after the option and value). */
const LOCK_REFUSAL =
  `at least ${MIN_LOCK_DURATION_MS} ms is needed: the model holds the worker's thread while it predicts, the ` +
  'lock is renewed only between, and a shorter lock runs out under a job still running (another worker, or this ' +
  'one, then runs it again)';

/**
 * --lock-duration: at least MIN_LOCK_DURATION_MS, at most a timer's longest wait. BullMQ renews the lock every
 * quarter of it and (by default here) looks for stalled jobs every half, each with setTimeout, which fires a longer
 * delay after 1 ms: a lock of 100 days was renewed without pause.
 */
function lockDurationArg(v: string): number {
  const ms = intAtLeast(MIN_LOCK_DURATION_MS, LOCK_REFUSAL)(v);
  if (ms > MAX_TIMER_MS) throw new InvalidArgumentError(`at most ${MAX_TIMER_MS} ms (about 24 days)`);
  return ms;
}

/**
 * The worker's close, in order: the jobs in progress (scrapes still answer while they finish), then the metrics
 * port, then the queue's Redis. The port before Redis: a scrape in between would read
 * cxr_worker_queue_available 0 and fire the queue's alert on every graceful restart. The port is let go so that
 * a worker restarted at once can take it.
 */
export async function closeInOrder(
  running: { close(): Promise<void> },
  endpoint: { close(): Promise<void> } | null,
  queue: { close(): Promise<void> },
): Promise<void> {
  // Each step runs even when one before it fails; the first failure is what the caller sees.
  const steps = [() => running.close(), () => endpoint?.close(), () => queue.close()];
  let failure: { e: unknown } | null = null;
  for (const step of steps) {
    try {
      await step();
    } catch (e) {
      failure ??= { e };
    }
  }
  if (failure) throw failure.e;
}

export function register(program: Command): void {
  program
    .command('worker')
    .summary('run queued prediction jobs until SIGINT/SIGTERM')
    .description(
      'run queued prediction jobs (cxr enqueue, POST /api/v1/jobs) until SIGINT/SIGTERM, then finish the ' +
        'jobs in progress and exit 0. Redis: CXR_REDIS_URL or --redis-config. Orthanc jobs need ' +
        'CXR_ORTHANC_URL (and _USER, _PASSWORD) or --orthanc-config. Every result goes to the audit log once.',
    )
    .option('--concurrency <n>', 'jobs run at once by this process', positiveInt, 2)
    .option('--redis <url>', 'Redis URL (default: $CXR_REDIS_URL; a password here is visible to other users)')
    .option('--redis-config <file>', 'JSON file {"url": "redis://..."} (mode 600)')
    .option('--orthanc-config <file>', 'JSON file {"url", "user", "password"} for Orthanc jobs (mode 600)')
    .option('--model <dir>', 'model folder (default: the shipped model, or $CXR_MODEL); it picks the queue')
    .option(
      '--db <file|url>',
      `audit log: an SQLite file or a postgres:// URL (default: ${DEFAULT_DB_WORDS}, as cxr serve)`,
    )
    .addOption(
      new Option('--ood-policy <policy>', 'films that do not look like chest X-rays: warn, or refuse (the job fails)')
        .choices(['warn', 'refuse'])
        .default('warn'),
    )
    .option('--no-store-images', 'do not keep heat maps and thumbnails of file and upload jobs in the audit log')
    .option(
      '--lock-duration <ms>',
      `how long a job stays locked to a worker that stopped answering; at least ${MIN_LOCK_DURATION_MS}: the lock ` +
        'is renewed between predictions, and a shorter one runs out under a job still running, which then runs twice',
      lockDurationArg,
      30_000,
    )
    .option(
      '--stalled-interval <ms>',
      'how often stalled jobs are looked for (default: half the lock duration)',
      timerMs, // BullMQ waits it with setTimeout: a longer one looked for them without pause
    )
    .option(
      '--close-timeout <ms>',
      'after SIGINT/SIGTERM, how long to wait for the jobs in progress, Redis and the audit log before exiting ' +
        'anyway (exit 1)',
      timerMs, // not past a timer's longest wait: a longer one gave up on the close at once
      30_000,
    )
    .option(
      '--retry-delay <ms>',
      'after a failed attempt, the wait before the next; doubled after each failure (a film that cannot be ' +
        'read is not retried)',
      positiveInt,
      DEFAULT_RETRY.firstDelayMs,
    )
    .option(
      '--retry-max-delay <ms>',
      'the longest wait between attempts; an outage of the audit log, Orthanc or the network is retried ' +
        `for ${DEFAULT_RETRY.retryForMs / 3600_000} h of waits, other failures ${OTHER_ATTEMPTS} times in all`,
      positiveInt,
      DEFAULT_RETRY.maxDelayMs,
    )
    .option(
      '--metrics-port <port>',
      'serve Prometheus metrics at GET /metrics on this port (0 = any free port; default: none): jobs by outcome, ' +
        "their durations, the queue's depth. No token: bind it where only Prometheus reaches",
      intInRange(0, 65_535),
    )
    .option('--metrics-host <host>', 'address the metrics port listens on (with --metrics-port)', '127.0.0.1')
    .option('--threads <n>', 'engine threads (default: all cores)', positiveInt)
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (default: CXR_LOG_LEVEL or info)')
    .action(async (o, cmd: Command) => {
      // Ignored, it would leave an operator who meant to expose the metrics with none, and no word of it.
      if (cmd.getOptionValueSource('metricsHost') !== 'default' && o.metricsPort === undefined)
        cmd.error('error: option --metrics-host needs --metrics-port (the worker serves no metrics without a port)');
      // The server's logger: one JSON line per event on stderr, credentials redacted (src/log.ts).
      const logger = createLogger({ level: resolveLogLevel(o.logLevel) }).child({ component: 'worker' });
      // The folders named (the model's, --db's), before the queue, Orthanc or the audit log is reached.
      const modelDir = path.resolve(checkModelOption(o.model));
      checkDbFolder(o.db);
      const log = (line: string) => logger.info(line);
      const warn = (line: string) => logger.warn(line);
      const redisUrl = loadRedisUrl({ url: o.redis, configFile: o.redisConfig, warn });
      const orthancWanted = o.orthancConfig !== undefined || !!process.env.CXR_ORTHANC_URL;
      const orthanc = orthancWanted
        ? new OrthancClient(loadOrthancConfig({ configFile: o.orthancConfig, warn }))
        : null;
      if (orthanc) await checkOrthanc(orthanc, log, warn);
      const store = await openAuditStoreForWriting(o.db ?? defaultDbPath(), NO_AUDIT_LOG_HINT);
      await initEngine(o.threads);
      const predictor = await Predictor.load(modelDir, { oodPolicy: o.oodPolicy });
      // The upload store shares the queue's connection.
      const queue = await connectQueue(redisUrl, predictor.model.sha256);
      // Opened before the first job, so that a port in use stops the worker at start (exit 1), not unseen later.
      let metrics: WorkerMetrics | null = null;
      let endpoint: MetricsEndpoint | null = null;
      if (o.metricsPort !== undefined) {
        metrics = new WorkerMetrics({ concurrency: o.concurrency });
        metrics.watchQueue(() => queueStates(queue));
        endpoint = await serveWorkerMetrics(metrics, { host: o.metricsHost, port: o.metricsPort, warn }).catch((e) => {
          throw new Error(`worker: cannot serve metrics on ${o.metricsHost}:${o.metricsPort}: ${(e as Error).message}`);
        });
        log(`metrics at ${endpoint.url}`);
      }
      const running = await startWorker(
        {
          predictor,
          store,
          uploads: new UploadStore(queue, 0),
          orthanc,
          storeImages: o.storeImages !== false,
          log,
          warn,
          error: (line: string) => logger.error(line),
          pauseAfterAuditMs: pauseAfterAuditMs(),
        },
        {
          redisUrl,
          concurrency: o.concurrency,
          lockDurationMs: o.lockDuration,
          stalledIntervalMs: o.stalledInterval,
          retry: { ...DEFAULT_RETRY, firstDelayMs: o.retryDelay, maxDelayMs: Math.max(o.retryMaxDelay, o.retryDelay) },
          observer: metrics ?? undefined,
        },
      );
      log(
        `consuming ${running.worker.name} on ${redactRedisUrl(redisUrl)} with ${predictor.model.name} ` +
          `${predictor.model.version}, ${o.concurrency} at once (audit log ${store.location}; Ctrl-C to stop)`,
      );
      await new Promise<void>((resolve) => {
        let stopping = false;
        const onSignal = (sig: string) => {
          if (stopping) process.exit(130); // a second signal: stop now, the jobs in progress are retried
          stopping = true;
          log(`${sig}: finishing the jobs in progress`);
          resolve();
        };
        process.on('SIGINT', () => onSignal('SIGINT'));
        process.on('SIGTERM', () => onSignal('SIGTERM'));
      });
      // One bound for the whole close: the jobs in progress, the metrics port, Redis, then the audit log.
      const deadline = Date.now() + o.closeTimeout;
      const closing = closeInOrder(running, endpoint, queue);
      const closed = await settlesWithin(closing, o.closeTimeout);
      if (!closed) {
        logger.error(
          `the queue did not close within ${o.closeTimeout / 1000} s (is Redis reachable?): exiting without ` +
            'it (a job still running, waiting on the audit log say, holds the close too); a job still locked to ' +
            'this worker is retried by another one when its lock runs out',
        );
      }
      // Let go of anyway when the close above ran out of time (a second call is the first's promise).
      await endpoint?.close();
      let logClosed = true;
      try {
        // What is left of the bound, yet time for a database that answers to say goodbye.
        await store.close(Math.max(deadline - Date.now(), Math.min(1_000, o.closeTimeout)));
      } catch (e) {
        logClosed = false;
        logger.error((e as Error).message);
      }
      if (!closed || !logClosed) process.exit(1);
      predictor.dispose();
      log('stopped');
    });
}
