// The types a program must be able to name, from the package entry alone: the input and output of buildResults,
// the decoder and limits Predictor.load takes, the queue's job spec, priority and outcomes, the server's logger,
// the answer's age, the evaluation's callbacks, and startWorker's context (a deep import is refused by the
// package's `exports`, so a type missing from src/index.ts could not be named at all). The program only has to
// compile, strict.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { compileConsumer, STRICT_NODE16 } from './package-consumer';

const PROGRAM = `
import {
  buildResults, DatasetLayoutError, enqueueFile, openAuditStore, openQueue, Predictor, QueueUnavailableError,
  runEvaluation, startServer, startWorker, UploadStore,
  type AnswerAge, type DatasetLayoutErrorCode, type DecodeLimits, type DicomObject, type EnqueueOutcome,
  type InputDecoder, type JobContext, type JobSpec, type Logger, type Priority, type ResultInput, type ResultModel,
  type ScoredFilms, type SetAsideFiles, type WorkerContext,
} from '@cxr/app';

type IsAny<T> = 0 extends 1 & T ? true : false;
const named: [
  IsAny<DicomObject>, IsAny<ResultInput>, IsAny<ResultModel>, IsAny<InputDecoder>, IsAny<DecodeLimits>,
  IsAny<JobSpec>, IsAny<Priority>, IsAny<EnqueueOutcome>, IsAny<Logger>, IsAny<ScoredFilms>, IsAny<SetAsideFiles>,
  IsAny<JobContext>, IsAny<WorkerContext>, IsAny<AnswerAge>,
] = [false, false, false, false, false, false, false, false, false, false, false, false, false, false];

declare const log: Logger;
declare const decoder: InputDecoder;
declare const input: ResultInput;

export async function main(dir: string, redisUrl: string): Promise<void> {
  const limits: DecodeLimits = { maxInputBytes: 1 << 20, maxPixels: 4_000_000 };
  const predictor = await Predictor.load(dir, { limits, decoder });
  const p = await predictor.predict(new Uint8Array(8));
  const model: ResultModel = { name: 'm', version: '1', sha256: predictor.model.sha256 };
  const results: { sr: DicomObject; sc: DicomObject | null } = await buildResults({ ...input, model, prediction: p });
  const priority: Priority = 'low';
  const spec: JobSpec = {
    modelSha256: predictor.model.sha256, operatingPoint: 'balanced', heatmap: false, requestedBy: null, priority,
  };
  const queue = openQueue(redisUrl, predictor.model.sha256);
  const outcome: EnqueueOutcome = await enqueueFile(queue, spec, 'film.dcm');
  const store = await openAuditStore(':memory:');
  // No upload store: the worker opens its own (a program may still give one).
  const worker = await startWorker({ predictor, store, log: (line) => log.info(line) }, { redisUrl, concurrency: 1 });
  const uploads = new UploadStore(queue, 0);
  const ctx: JobContext = { predictor, store, uploads, orthanc: null, storeImages: true, log: console.log };
  const given: WorkerContext = ctx;
  await (await startWorker(given, { redisUrl, concurrency: 1 })).close();
  await worker.close();
  let seen: ScoredFilms | null = null;
  const m = await runEvaluation({ modelDir: dir, data: dir, scored: (films) => { seen = films; } });
  const server = await startServer({ host: '127.0.0.1', port: 0, dbPath: ':memory:', log,
    loadPredictor: () => Predictor.load(dir) });
  await server.close();
  try {
    await runEvaluation({ modelDir: dir, data: 'nowhere' });
  } catch (e) {
    if (e instanceof DatasetLayoutError) {
      const code: DatasetLayoutErrorCode = e.code;
      console.log(code);
    } else if (e instanceof QueueUnavailableError) console.log(e.code);
  }
  const aside: SetAsideFiles | undefined = undefined;
  console.log(named, results, outcome, seen, m, aside);
}
`;

test('a program names every type of the library API from the package entry, strict', async () => {
  const r = await compileConsumer('package-types', 'program.ts', PROGRAM, STRICT_NODE16);
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});
