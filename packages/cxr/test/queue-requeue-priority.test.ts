// A failed job offered again keeps its place among priorities, on the stack's Redis. BullMQ's retry of a failed
// job (its reprocessJob script) puts it on the plain wait list, which a worker empties before any prioritized job:
// a backfill's film (low priority) that had failed and was queued again ran ahead of every live film waiting, and
// a live film queued again ran ahead of live films queued before it. Now it goes back among the prioritized jobs,
// at the more urgent of its own priority and the new offer's, behind the jobs of that priority already waiting.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { UnrecoverableError, Worker } from 'bullmq';
import {
  enqueue,
  type JobData,
  type JobQueue,
  openQueue,
  otherFailuresOf,
  type Priority,
  queueDepth,
  type RetryPolicy,
  redisConnection,
  retryDelayMs,
} from '../src/queue';
import { type Stack, stackUnavailable, startStack, stopStack } from './stack-fixture';
import { until } from './wait-until';

const skip = stackUnavailable();
let stack: Stack | undefined;

before(() => {
  if (!skip) stack = startStack('queue-requeue-priority', ['redis']);
});
after(() => stopStack(stack));

const film = (name: string, model: string): JobData => ({
  source: { kind: 'file', path: `/films/${name}.dcm` },
  resultKey: `1.2.840.77.${name}`,
  model: { sha256: model },
  operatingPoint: 'balanced',
  heatmap: false,
  requestedBy: null,
});

/** Runs a worker over `queue` until `n` jobs are done, `work` deciding each; the films' names in the order run. */
async function runJobs(queue: JobQueue, n: number, work: () => void, policy?: RetryPolicy): Promise<string[]> {
  const order: string[] = [];
  const worker = new Worker(
    queue.name,
    async (job) => {
      order.push(String(job.data.resultKey).replace('1.2.840.77.', ''));
      work();
    },
    // One at a time: the order the worker takes them in is the queue's order.
    {
      connection: redisConnection(stack!.env.CXR_REDIS_URL),
      concurrency: 1,
      // cxr worker's own backoff (worker.ts), where the test retries outages.
      settings: policy && {
        backoffStrategy: (made: number, _type?: string, err?: Error, job?: { progress?: unknown }) =>
          retryDelayMs(policy, made, err, job ? otherFailuresOf(job) : null),
      },
    },
  );
  try {
    await until(async () => order.length >= n, 30_000, `${n} jobs to run`);
    await until(async () => (await queue.getActiveCount()) === 0, 10_000, 'the last job to finish');
  } finally {
    await worker.close();
  }
  return order;
}

async function offer(queue: JobQueue, data: JobData, priority: Priority): Promise<string> {
  return (await enqueue(queue, data, priority)).outcome;
}

test('a failed job queued again runs at its priority: a backfill film after live films, a live one among them', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const model = 'e'.repeat(64);
  const queue = openQueue(stack!.env.CXR_REDIS_URL, model);
  try {
    const f = (name: string) => film(name, model);
    // Two films fail for good: one a backfill queued (low), one a backfill's that is later sent live.
    assert.equal(await offer(queue, f('backfill-failed'), 'low'), 'queued');
    assert.equal(await offer(queue, f('sent-live-later'), 'low'), 'queued');
    await runJobs(queue, 2, () => {
      throw new UnrecoverableError('not a film');
    });
    assert.equal((await queueDepth(queue)).failed, 2);
    // Meanwhile a live film and another backfill film wait.
    assert.equal(await offer(queue, f('live'), 'normal'), 'queued');
    assert.equal(await offer(queue, f('backfill-waiting'), 'low'), 'queued');
    // The backfill offers its failed film again; the other is sent live.
    const again = [
      await enqueue(queue, f('backfill-failed'), 'low'),
      await enqueue(queue, f('sent-live-later'), 'normal'),
    ];
    assert.deepEqual(
      again.map((a) => a.outcome),
      ['requeued', 'requeued'],
    );
    const priorities = await Promise.all(again.map(async (a) => (await queue.getJob(a.id))?.priority));
    assert.deepEqual(priorities, [100, 1], 'the backfill film at low priority, the one sent live at normal');
    assert.deepEqual(await queue.getJobCounts('wait', 'prioritized'), { wait: 0, prioritized: 4 });

    // Live films first, in the order queued; then the backfill's, the one queued again last.
    const order = await runJobs(queue, 4, () => {});
    assert.deepEqual(order, ['live', 'sent-live-later', 'backfill-waiting', 'backfill-failed']);
  } finally {
    await queue.close();
  }
});

test('a job a worker retries after an outage runs at its priority: a backfill film after the live films', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  // The other way a failed attempt runs again: BullMQ's own retry, delayed by the worker's backoff. The delayed
  // job is put back at its priority, unlike a failed job's retry; this keeps it so.
  const model = 'f'.repeat(64);
  const queue = openQueue(stack!.env.CXR_REDIS_URL, model);
  const policy: RetryPolicy = { firstDelayMs: 200, maxDelayMs: 200, retryForMs: 60_000 };
  try {
    const f = (name: string) => film(name, model);
    assert.equal(await offer(queue, f('backfill-outage'), 'low'), 'queued');
    const outage = () => {
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8042'), { code: 'ECONNREFUSED' });
    };
    await runJobs(queue, 1, outage, policy);
    assert.equal(await queue.getDelayedCount(), 1, 'retried after the backoff');
    assert.equal(await offer(queue, f('live'), 'normal'), 'queued');
    await new Promise((r) => setTimeout(r, 500));
    // The next worker promotes the delayed job (its delay is over) before it takes one.
    assert.deepEqual(await runJobs(queue, 2, () => {}, policy), ['live', 'backfill-outage']);
  } finally {
    await queue.close();
  }
});
