// startWorker as a program embedding cxr calls it, with nothing but the package entry (`require('@cxr/app')`) on the
// stack's Redis: the worker's job context needed an upload store the package did not export (a deep import of
// queue/uploads is refused by the package's `exports`), so the call README advertises could not be written. Given
// none, the worker opens its own on the queue's Redis: an uploaded film's job (what POST /api/v1/jobs queues)
// completes, its audit row is written and the film is let go. The queueing side plays the server, from src/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startModelStack, stopQueueStack } from './queue-stack';
import { XRAY_JPEG } from './serve-fixtures';
import { type Stack, stackUnavailable } from './stack-fixture';
import { enqueueUpload, type JobQueue, type JobResult, openQueue, resultKeyOf, UploadStore } from '../src/queue';
import { modelIdentity } from '../src/models/io';
import { sha256Of } from '../src/hash';

const repo = path.resolve(__dirname, '..', '..', '..', '..');
// biome-ignore lint/suspicious/noExplicitAny: read by name, as a JavaScript program reads the package.
const cxr = (): any => require(require.resolve('@cxr/app', { paths: [repo] }));

const skip = stackUnavailable() ?? (fs.existsSync(XRAY_JPEG) ? false : `no sample film (${XRAY_JPEG})`);
let stack: Stack | undefined;
let dir = '';
let modelDir = '';
let queue: JobQueue | undefined;

before(async () => {
  if (skip) return;
  ({ dir, modelDir, stack } = await startModelStack('package-worker', ['redis']));
});
after(async () => {
  await stopQueueStack({ queue, stack, dir });
});

test('startWorker from the package entry, with no upload store given, runs an uploaded film to its result', {
  skip,
  timeout: 120_000,
}, async () => {
  const redisUrl = stack!.env.CXR_REDIS_URL;
  const sha = modelIdentity(modelDir).sha256;
  // The server's side: the film held in Redis for its job, then queued.
  queue = openQueue(redisUrl, sha);
  const film = fs.readFileSync(XRAY_JPEG);
  const filmSha = sha256Of(film);
  const spec = { modelSha256: sha, operatingPoint: 'balanced', heatmap: false, requestedBy: 'app', priority: 'normal' };
  const { id } = await enqueueUpload(queue, spec as never, { sha256: filmSha, resultKey: resultKeyOf(film) });
  const held = new UploadStore(queue, 1024 ** 3);
  assert.equal(await held.put(filmSha, film, id), 'stored');

  // The program's side: the package entry alone.
  const { Predictor, openAuditStore, startWorker } = cxr();
  const predictor = await Predictor.load(modelDir, { warmUp: false });
  const store = await openAuditStore(path.join(dir, 'audit.db'));
  const lines: string[] = [];
  const worker = await startWorker(
    { predictor, store, log: (l: string) => lines.push(l) },
    { redisUrl, concurrency: 1, retry: { firstDelayMs: 200, maxDelayMs: 200, retryForMs: 2_000 } },
  );
  try {
    const end = Date.now() + 60_000;
    let state = await (await queue.getJob(id))!.getState();
    while (state !== 'completed' && state !== 'failed' && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
      state = await (await queue.getJob(id))!.getState();
    }
    const job = (await queue.getJob(id))!;
    assert.equal(state, 'completed', `${job.failedReason}\n${lines.join('\n')}`);
    assert.equal((job.returnvalue as JobResult).outcome, 'predicted');
    const rows = (await store.list({ limit: 10 })).items;
    assert.equal(rows.length, 1, 'one audit row');
    assert.equal(await held.get(filmSha), null, 'the film was let go by the worker');
    assert.equal(await held.totalBytes(), 0);
  } finally {
    await worker.close();
    await store.close();
    predictor.dispose();
  }
});
