// The consumer side: a BullMQ worker running processJob. A job is locked by its worker while it
// runs; a worker that dies (kill -9, a lost machine) stops renewing the lock, and after
// lockDuration any other worker's stalled-job check puts the job back to be retried. Short
// durations make a retry come sooner and cost lock renewals; tests use ~1 s.
import { Worker } from 'bullmq';
import { redisConnection } from './connection';
import { queueNameFor } from './job';
import { type JobContext, type JobResult, letGoOfFailed, processJob } from './process';

export interface WorkerOptions {
  redisUrl: string;
  /** Jobs run at once by this process (decodes overlap with inference). */
  concurrency: number;
  /** How long a job's lock lasts without renewal (default 30 s). */
  lockDurationMs?: number;
  /** How often stalled jobs are looked for (default: half the lock duration). */
  stalledIntervalMs?: number;
  /** Times a job may be found stalled before it is failed (default 3). */
  maxStalledCount?: number;
}

export interface RunningWorker {
  worker: Worker;
  /** Finishes the jobs in progress, takes no more, closes the connections. */
  close(): Promise<void>;
}

export async function startWorker(ctx: JobContext, o: WorkerOptions): Promise<RunningWorker> {
  const lockDuration = o.lockDurationMs ?? 30_000;
  const worker = new Worker<unknown, JobResult>(
    queueNameFor(ctx.predictor.model.sha256),
    async (job) => {
      ctx.log(`job ${job.id}: started (attempt ${job.attemptsStarted})`);
      const r = await processJob(ctx, job.data);
      const p = r.prediction;
      ctx.log(`job ${job.id}: ${r.outcome}${p ? ` ${p.label} p=${p.probability.toFixed(3)}` : ''}`);
      return r;
    },
    {
      connection: redisConnection(o.redisUrl),
      concurrency: o.concurrency,
      lockDuration,
      stalledInterval: o.stalledIntervalMs ?? Math.max(500, Math.round(lockDuration / 2)),
      maxStalledCount: o.maxStalledCount ?? 3,
      autorun: false,
    },
  );
  worker.on('failed', (job, err) => {
    ctx.log(`job ${job?.id ?? '?'}: failed: ${err.message}`);
    if (job) {
      letGoOfFailed(ctx.uploads, job, err).catch((e: unknown) =>
        ctx.log(`job ${job.id}: its uploaded film could not be let go: ${(e as Error).message}`),
      );
    }
  });
  worker.on('stalled', (id) => ctx.log(`job ${id}: its worker stopped answering; queued again`));
  worker.on('error', (err) => ctx.log(`queue error: ${err.message}`));
  await worker.waitUntilReady();
  void worker.run();
  let closing: Promise<void> | null = null;
  return { worker, close: () => (closing ??= worker.close()) };
}
