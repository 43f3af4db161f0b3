// Start-up and shutdown of `cxr serve`: the model is loaded and warmed up (one full prediction
// with a heat map) before the port opens, so the first client does not pay for it; on SIGTERM
// or SIGINT the server stops accepting, lets in-flight requests finish (their audit rows
// included), then closes the database cleanly.
import type { FastifyInstance } from 'fastify';
import * as path from 'node:path';
import sharp from 'sharp';
import { type AuditStore, openAuditStore } from './audit';
import { buildApp, AppOptions } from './app';
import { listenUrl } from './exposure';
import type { JobsPort } from './routes/jobs';
import { retentionCutoff } from './retention';
import type { ServePredictor } from './predictor_port';

export interface ServerOptions extends Omit<AppOptions, 'predictor' | 'audit' | 'boundHost' | 'jobs'> {
  /** Opens the job queue for the loaded model (POST/GET /api/v1/jobs); none: those answer 503. */
  openJobs?: (predictor: ServePredictor) => JobsPort & { close(): Promise<void> };
  host: string;
  port: number;
  /** The audit log: an SQLite file or a postgres:// URL (serve/audit.ts). */
  dbPath: string;
  /** Loads the model; called once. */
  loadPredictor: () => Promise<ServePredictor>;
  /** Keep stored images this long (pruned at start and every hour); undefined = forever. */
  retainImagesMs?: number;
  /** Where start-up and shutdown lines go (default stderr). */
  log?: (line: string) => void;
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  predictor: ServePredictor;
  audit: AuditStore;
  /** Idempotent: stops accepting, waits for in-flight requests, closes the log and the model. */
  close(): Promise<void>;
}

/** The built page: dist/src/web/static next to this compiled file. */
export function defaultWebDir(): string {
  return path.join(__dirname, '..', 'web', 'static');
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

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const predictor = await opts.loadPredictor();
  let audit: AuditStore | null = null;
  let jobs: (JobsPort & { close(): Promise<void> }) | undefined;
  try {
    const t0 = Date.now();
    await predictor.predict(await warmUpImage(), { heatmap: true, thumbnail: true });
    log(
      `cxr serve: model ${predictor.model.name} ${predictor.model.version} loaded and warmed up in ${Date.now() - t0} ms`,
    );
    audit = await openAuditStore(opts.dbPath);
    const opened = audit;
    const prune = async () => {
      if (opts.retainImagesMs === undefined) return;
      const n = await opened.pruneImages(retentionCutoff(opts.retainImagesMs));
      if (n) log(`cxr serve: removed the images of ${n} prediction(s) older than the retention`);
    };
    await prune();
    // A failed hourly prune (a shared database briefly away) is said and retried next hour, not fatal.
    const pruner = setInterval(
      () => prune().catch((e: unknown) => log(`cxr serve: pruning images failed: ${(e as Error).message}`)),
      3_600_000,
    );
    pruner.unref();
    jobs = opts.openJobs?.(predictor);
    const app = await buildApp({ ...opts, boundHost: opts.host, predictor, audit, jobs });
    await app.listen({ host: opts.host, port: opts.port });
    // The bound address itself: fastify's return value names 127.0.0.1 even when bound to 0.0.0.0.
    const address = listenUrl(app.server.address());
    let closing: Promise<void> | null = null;
    const server: RunningServer = {
      app,
      url: address,
      predictor,
      audit,
      close: () =>
        (closing ??= (async () => {
          clearInterval(pruner);
          await app.close();
          await jobs?.close();
          await opened.close();
          predictor.dispose();
        })()),
    };
    const tokenCount = (opts.tokens?.length ?? 0) + (opts.apiToken ? 1 : 0);
    log(
      `cxr serve: listening on ${address} (audit log ${audit.location}${jobs ? ', job queue on' : ''}` +
        `${tokenCount ? `, API token required (${tokenCount} configured)` : ''})`,
    );
    return server;
  } catch (e) {
    await audit?.close().catch(() => {});
    await jobs?.close().catch(() => {});
    predictor.dispose();
    throw e;
  }
}

/** Closes the server on the first SIGTERM/SIGINT and exits; a second signal exits at once. */
export function closeOnSignals(server: RunningServer, log: (line: string) => void, graceMs = 30_000): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log(`cxr serve: ${signal} again, exiting without waiting`);
      process.exit(130);
    }
    stopping = true;
    log(`cxr serve: ${signal}: finishing in-flight requests, then closing the audit log`);
    const timer = setTimeout(() => {
      log(`cxr serve: requests still running after ${graceMs} ms, exiting`);
      process.exit(1);
    }, graceMs);
    timer.unref();
    server.close().then(
      () => {
        log('cxr serve: closed cleanly');
        process.exit(0);
      },
      (e: unknown) => {
        log(`cxr serve: error while closing: ${e instanceof Error ? e.message : String(e)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
