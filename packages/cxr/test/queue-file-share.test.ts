// A file job whose film is on a network share that is down: the read fails with EIO, ESTALE, ENOTCONN,
// EHOSTDOWN or ETIMEDOUT, and the job used to fail at once as if the film were bad. Such a read is an outage
// now, waited out with the queue's outage backoff; a file that is gone (ENOENT) and a film that does not
// decode are still the film's fault, failed at once. The jobs run through processJob as a worker runs them;
// the share's errors are injected into node:fs/promises, which the worker reads films with.
import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import fsp from 'node:fs/promises';
import * as path from 'node:path';
import { UnrecoverableError } from 'bullmq';
import type { Predictor } from '../src/predict/predictor';
import {
  DEFAULT_RETRY,
  isOutage,
  type JobContext,
  type JobData,
  nextRetryMs,
  OUTAGE_BACKOFF,
  processJob,
  resultKeyOf,
  retryDelayMs,
  type UploadStore,
} from '../src/queue';
import { serverParts, XRAY_JPEG } from './serve-fixtures';

let film = '';
const parts = serverParts('queue-file-share', {
  ready: ({ dir }) => {
    film = path.join(dir, 'share', 'film.jpeg');
    fs.mkdirSync(path.dirname(film));
    fs.copyFileSync(XRAY_JPEG, film);
  },
});

const ctx = (): JobContext => ({
  predictor: parts.predictor as Predictor,
  store: parts.audit,
  // A file job never touches the uploads' store (Redis).
  uploads: null as unknown as UploadStore,
  orthanc: null,
  storeImages: false,
  log: () => {},
});

function fileJob(file: string, bytes = fs.readFileSync(XRAY_JPEG)): JobData {
  return {
    source: { kind: 'file', path: file },
    resultKey: resultKeyOf(bytes),
    model: { sha256: parts.predictor.model.sha256 },
    operatingPoint: 'balanced',
    heatmap: false,
    requestedBy: null,
  };
}

/** The job run with `method` of node:fs/promises failing for the film with `code`, as a share that is down does. */
async function runFailing(method: 'readFile' | 'stat', code: string, data = fileJob(film)): Promise<unknown> {
  const real = fsp[method] as (...a: unknown[]) => Promise<unknown>;
  const injected = mock.method(fsp, method, async (file: unknown, ...rest: unknown[]) => {
    if (file === film)
      throw Object.assign(new Error(`${code}: injected, ${method} '${film}'`), { code, syscall: method });
    return real(file, ...rest);
  });
  try {
    return await processJob(ctx(), data).then(
      () => assert.fail('the job succeeded'),
      (e: unknown) => e,
    );
  } finally {
    injected.mock.restore();
  }
}

/** As the worker's backoff and its log read a job queued with the outage strategy, after `attemptsMade`. */
const job = (attemptsMade: number) => ({
  attemptsMade,
  opts: { attempts: 100_000, backoff: { type: OUTAGE_BACKOFF } },
});

test('a film on a share that is down is an outage: retried with the outage backoff, past the 3 attempts', async () => {
  for (const [method, code] of [
    ['readFile', 'EIO'],
    ['readFile', 'ESTALE'],
    ['stat', 'ENOTCONN'],
    ['stat', 'EHOSTDOWN'],
    ['readFile', 'ETIMEDOUT'],
  ] as const) {
    const err = await runFailing(method, code);
    assert.ok(err instanceof Error && !(err instanceof UnrecoverableError), `${code}: ${String(err)}`);
    assert.ok(isOutage(err), `${code}: an outage`);
    assert.match(err.message, new RegExp(`^${film.replace(/[.]/g, '\\.')}: cannot read \\(${code}\\): .*share`));
    // Still retried after the attempts another failure gets (3), with the outage's doubling delays.
    assert.equal(retryDelayMs(DEFAULT_RETRY, 3, err), 20_000, code);
    assert.equal(nextRetryMs(DEFAULT_RETRY, job(5), err), 80_000, code);
  }
  // Once the share is back, the same job is done.
  const done = await processJob(ctx(), fileJob(film));
  assert.equal(done.outcome, 'predicted');
});

test("a file that is gone, one that may not be read and a film that does not decode are the film's fault", async () => {
  const gone = path.join(parts.dir, 'share', 'gone.jpeg');
  // Keyed apart from the film done above: a job whose result is in the log already reads no file.
  const missing = await processJob(ctx(), fileJob(gone, Buffer.from('gone'))).catch((e: unknown) => e);
  assert.ok(missing instanceof UnrecoverableError, String(missing));
  assert.equal(
    missing.message,
    `${gone}: cannot read (ENOENT): the file is gone (deleted or moved since it was queued); ` +
      'queue it again where it is now',
  );
  assert.equal(nextRetryMs(DEFAULT_RETRY, job(1), missing), null);

  const denied = await runFailing('readFile', 'EACCES', fileJob(film, Buffer.from('denied')));
  assert.ok(denied instanceof UnrecoverableError, String(denied));
  assert.match(denied.message, /cannot read \(EACCES\): permission denied/);
  // An EIO from anything but a film's read (say, a bug's own error) is no outage of a share.
  assert.ok(!isOutage(Object.assign(new Error('EIO'), { code: 'EIO' })));

  const text = path.join(parts.dir, 'share', 'notes.jpeg');
  fs.writeFileSync(text, 'not an image\n');
  const corrupt = await processJob(ctx(), fileJob(text, fs.readFileSync(text))).catch((e: unknown) => e);
  assert.ok(corrupt instanceof UnrecoverableError, String(corrupt));
  assert.match(corrupt.message, /not a JPEG, PNG or DICOM image/);
  assert.equal(nextRetryMs(DEFAULT_RETRY, job(1), corrupt), null);
});
