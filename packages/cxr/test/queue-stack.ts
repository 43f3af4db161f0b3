// What the tests of the job queue on the stack's Redis set up the same way: a temporary folder with a tiny model,
// its predictor, the stack's services and the model's job queue (closed again the other way round), the context
// processJob runs a job in, and an Orthanc client for the stack's Orthanc.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OrthancClient } from '../src/pacs';
import type { Predictor } from '../src/predict/predictor';
import { type JobContext, type JobQueue, openQueue, UploadStore } from '../src/queue';
import type { AuditStore } from '../src/serve/audit';
import { loadPredictor, makeTinyModel, tempDir } from './serve-fixtures';
import { type Stack, startStack, stopStack } from './stack-fixture';

export interface QueueStack {
  dir: string;
  modelDir: string;
  predictor: Predictor;
  stack: Stack;
  queue: JobQueue;
}

/** The tiny model in a new folder named for `prefix`, its predictor, the stack's `services`, the queue. */
export async function startQueueStack(prefix: string, services: string[]): Promise<QueueStack> {
  const dir = tempDir(prefix);
  const modelDir = await makeTinyModel(path.join(dir, 'model'));
  const predictor = (await loadPredictor(modelDir)) as Predictor;
  let stack: Stack;
  try {
    stack = startStack(prefix, services);
  } catch (e) {
    await stopQueueStack({ dir, predictor });
    throw e;
  }
  return { dir, modelDir, predictor, stack, queue: openQueue(stack.env.CXR_REDIS_URL, predictor.model.sha256) };
}

/** Closes what startQueueStack opened; any part may be missing (a test file skipped, or its set-up failed). */
export async function stopQueueStack(s: Partial<QueueStack>): Promise<void> {
  await s.queue?.close();
  s.predictor?.dispose();
  stopStack(s.stack);
  if (s.dir) fs.rmSync(s.dir, { recursive: true, force: true });
}

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

/** A client of the stack's Orthanc, with its credentials. */
export const orthancClient = (stack: Stack) =>
  new OrthancClient({
    url: stack.env.CXR_ORTHANC_URL,
    user: stack.env.CXR_ORTHANC_USER,
    password: stack.env.CXR_ORTHANC_PASSWORD,
  });
