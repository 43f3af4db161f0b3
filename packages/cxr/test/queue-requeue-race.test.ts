// Two producers re-queueing the same film at once, on the stack's Redis. A failed job offered again by `cxr
// orthanc sync --queue` and POST /jobs in the same moment (or by two servers behind one load balancer) was
// retried by the first; the second, having read "failed" too, asked BullMQ to retry a job that was no longer
// failed, got "Job … is not in the failed state" and answered 500 (the sync exited). The loser now reads the
// job again and finds it queued. And the data and the retry were two steps: both producers could set their data
// before one retried, and the job ran with the data of the producer that did not retry it; now they are one.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { UnrecoverableError, Worker } from 'bullmq';
import { enqueue, type JobData, type JobQueue, openQueue, queueDepth, redisConnection } from '../src/queue';
import { type Stack, stackUnavailable, startStack, stopStack } from './stack-fixture';
import { until } from './wait-until';

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

/** Queues `films` and lets a worker fail every one of them for good, as a film it cannot read is failed. */
async function failAll(films: JobData[], queue: JobQueue = producers[0]): Promise<void> {
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

test('two producers re-queueing one failed job with different data: it runs with the data of the one that requeued', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  // The same film (one job id) offered by each producer from its own path, as after the film moved. The data and
  // the retry were two steps: both producers set their data, one retried, and the job ran with the other's.
  // A queue of its own (another model), so that the jobs the first test left waiting are not failed with these.
  const model = 'd'.repeat(64);
  const queues = [openQueue(stack!.env.CXR_REDIS_URL, model), openQueue(stack!.env.CXR_REDIS_URL, model)];
  try {
    const films = Array.from({ length: 16 }, (_, i) => ({ ...film(i), model: { sha256: model } }));
    await failAll(films, queues[0]);
    for (const f of films) {
      const offers = queues.map((_, p) => ({ ...f, source: { kind: 'file' as const, path: `/films/moved-${p}.dcm` } }));
      const answers = await Promise.all(queues.map((q, p) => enqueue(q, offers[p])));
      const winners = answers.flatMap((a, p) => (a.outcome === 'requeued' ? [p] : []));
      assert.equal(winners.length, 1, `${f.resultKey}: retried once: ${answers.map((a) => a.outcome)}`);
      const job = await queues[0].getJob(answers[0].id);
      assert.deepEqual(
        job?.data,
        offers[winners[0]],
        `${f.resultKey}: the data of producer ${winners[0]}, who requeued`,
      );
      assert.equal(job?.progress, 0, `${f.resultKey}: a fresh count of failures`);
      assert.equal(job?.attemptsMade, 0, `${f.resultKey}: a fresh count of attempts`);
    }
    assert.deepEqual(await queueDepth(queues[0]), { waiting: films.length, active: 0, completed: 0, failed: 0 });
  } finally {
    for (const q of queues) await q.close();
  }
});
