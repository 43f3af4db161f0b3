// What the tests on the stack's services set up the same way: a temporary folder with a tiny model and the
// stack's services (what the tests of `cxr orthanc sync`, `cxr serve` and `cxr worker` children need, which load
// the model themselves); for the tests of the job queue in this process also the model's predictor and its job
// queue (closed again the other way round), the context processJob runs a job in, and an Orthanc client for the
// stack's Orthanc.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OrthancClient } from '../src/pacs';
import type { Predictor } from '../src/predict/predictor';
import { type JobContext, type JobQueue, openQueue, UploadStore } from '../src/queue';
import type { AuditStore } from '../src/serve/audit';
import { loadPredictor, makeTinyModel, tempDir } from './serve-fixtures';
import { type Stack, startStack, stopStack } from './stack-fixture';

export interface ModelStack {
  dir: string;
  modelDir: string;
  stack: Stack;
}

export interface QueueStack extends ModelStack {
  predictor: Predictor;
  queue: JobQueue;
}

/** The stack's `services` for `prefix`; what was opened before is closed again when it fails to start. */
async function startStackOrClose(prefix: string, services: string[], opened: Partial<QueueStack>): Promise<Stack> {
  try {
    return startStack(prefix, services);
  } catch (e) {
    await stopQueueStack(opened);
    throw e;
  }
}

/** The tiny model in a new folder named for `prefix`, its predictor, the stack's `services`, the queue. */
export async function startQueueStack(prefix: string, services: string[]): Promise<QueueStack> {
  const dir = tempDir(prefix);
  const modelDir = await makeTinyModel(path.join(dir, 'model'));
  const predictor = (await loadPredictor(modelDir)) as Predictor;
  const stack = await startStackOrClose(prefix, services, { dir, predictor });
  return { dir, modelDir, predictor, stack, queue: openQueue(stack.env.CXR_REDIS_URL, predictor.model.sha256) };
}

/** The tiny model in a new folder named for `prefix` and the stack's `services`: no predictor, no queue. */
export async function startModelStack(prefix: string, services: string[]): Promise<ModelStack> {
  const dir = tempDir(prefix);
  const modelDir = await makeTinyModel(path.join(dir, 'model'));
  return { dir, modelDir, stack: await startStackOrClose(prefix, services, { dir }) };
}

/**
 * Closes what startQueueStack or startModelStack opened (and a queue a test opened itself); any part may be
 * missing (a test file skipped, or its set-up failed).
 */
export async function stopQueueStack(s: Partial<QueueStack>): Promise<void> {
  await s.queue?.close();
  s.predictor?.dispose();
  stopStack(s.stack);
  if (s.dir) fs.rmSync(s.dir, { recursive: true, force: true });
}

/** Closes what startModelStack opened: stopQueueStack, named for the tests that have no queue. */
export const stopModelStack = (s: Partial<ModelStack>): Promise<void> => stopQueueStack(s);

/** What processJob needs to run a job as a worker does: no Orthanc and no images kept unless `over` says. */
export const jobContext = (
  s: { predictor: Predictor; queue: JobQueue },
  store: AuditStore,
  over: Partial<JobContext> = {},
): JobContext => ({
  predictor: s.predictor,
  store,
  uploads: new UploadStore(s.queue, 1024 ** 3),
  orthanc: null,
  storeImages: false,
  log: () => {},
  ...over,
});

/** A client of the stack's Orthanc, with its credentials: at its own URL, or at `url` (a proxy in front of it). */
export const orthancClient = (stack: Stack, url = stack.env.CXR_ORTHANC_URL) =>
  new OrthancClient({
    url,
    user: stack.env.CXR_ORTHANC_USER,
    password: stack.env.CXR_ORTHANC_PASSWORD,
  });
