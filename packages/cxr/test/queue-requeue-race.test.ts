// Two producers re-queueing the same film at once, on the stack's Redis. A failed job offered again by `cxr
// orthanc sync --queue` and POST /jobs in the same moment (or by two servers behind one load balancer) was
// retried by the first; the second, having read "failed" too, asked BullMQ to retry a job that was no longer
// failed, got "Job … is not in the failed state" and answered 500 (the sync exited). The loser now reads the
// job again and finds it queued.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { UnrecoverableError, Worker } from 'bullmq';
import { enqueue, type JobData, type JobQueue, openQueue, queueDepth, redisConnection } from '../src/queue';
import { type Stack, stackUnavailable, startStack, stopStack } from './stack-fixture';

const skip = stackUnavailable();
const MODEL = 'c'.repeat(64);
let stack: Stack | undefined;
let producers: JobQueue[] = [];

before(() => {
  if (skip) return;
  stack = startStack('queue-requeue-race', ['redis']);
  // Two producers, each with its own connection to Redis, as two processes have.
  producers = [openQueue(stack.env.CXR_REDIS_URL, MODEL), openQueue(stack.env.CXR_REDIS_URL, MODEL)];
});
after(async () => {
  for (const q of producers) await q.close();
  stopStack(stack);
});

const film = (n: number): JobData => ({
  source: { kind: 'file', path: `/films/race-${n}.dcm` },
  resultKey: `1.2.840.99.${n}`,
  model: { sha256: MODEL },
  operatingPoint: 'balanced',
  heatmap: false,
  requestedBy: null,
});

async function until(ok: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Queues `films` and lets a worker fail every one of them for good, as a film it cannot read is failed. */
async function failAll(films: JobData[]): Promise<void> {
  const [queue] = producers;
  for (const f of films) assert.equal((await enqueue(queue, f)).outcome, 'queued');
  const worker = new Worker(
    queue.name,
    async () => {
      throw new UnrecoverableError('not a film');
    },
    { connection: redisConnection(stack!.env.CXR_REDIS_URL) },
  );
  try {
    await until(async () => (await queueDepth(queue)).failed === films.length, 30_000, 'the jobs to fail');
  } finally {
    await worker.close();
  }
}

test('two producers re-queueing the same failed job at once: one requeues it, the other finds it queued', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  // Several films: each pair of calls races once, and a run must not pass by luck of the interleaving.
  const films = Array.from({ length: 8 }, (_, i) => film(i));
  await failAll(films);
  for (const f of films) {
    const answers = await Promise.allSettled(producers.map((q) => enqueue(q, f)));
    const refused = answers.filter((a) => a.status === 'rejected').map((a) => String(a.reason));
    assert.deepEqual(refused, [], `${f.resultKey}: neither producer fails`);
    const outcomes = answers.map((a) => (a.status === 'fulfilled' ? a.value.outcome : null)).sort();
    // Both may read "failed" (then one loses the race), or the second may read the job already queued.
    assert.ok(outcomes.includes('requeued'), `${f.resultKey}: ${outcomes}`);
    assert.ok(
      outcomes.every((o) => o === 'requeued' || o === 'already-queued'),
      `${f.resultKey}: ${outcomes}`,
    );
    assert.equal(outcomes.filter((o) => o === 'requeued').length, 1, `${f.resultKey}: retried once: ${outcomes}`);
  }
  assert.deepEqual(await queueDepth(producers[0]), { waiting: films.length, active: 0, completed: 0, failed: 0 });
});
