// Upgrade QA: job data that older versions of cxr left waiting in Redis, as they wrote it (copied from the
// queues of cxr 55f93a3 and of the version before the audit log's schema v4), read by this version's worker;
// and a failed job queued again (on the stack's Redis) runs with the data it is queued again with.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import { enqueue, type JobData, type JobQueue, jobIdOf, openQueue, parseJobData, redisConnection } from '../src/queue';
import { openAuditStore } from '../src/serve/audit';
import { SCHEMA_VERSION } from '../src/serve/audit_migrations';
import { type Stack, stackUnavailable, startStack, stopStack } from './stack-fixture';

const MODEL = { sha256: '6283582ccf73085dd04cdd7376b44c07b35e1ffa793aa18ec35d3518d6de2183' };
const JPEG_KEY = 'sha256:dcd983e8e769195faa67f128dcb326590bfe6bf7e7e48693cd6b21e09ab8c6fe';

/** A file job as `cxr enqueue --patient-age AGE` wrote it before keys had a suffix for an age under 1. */
const beforeLowerBound = (patientAge: number, resultKey = JPEG_KEY) => ({
  source: { kind: 'file' as const, path: '/srv/films/a.jpeg' },
  resultKey,
  model: MODEL,
  operatingPoint: 'balanced',
  heatmap: false,
  requestedBy: null,
  patientAge,
});

test('a job queued before the +age-under-1 key with an age under 1 is refused, saying why and what to do', () => {
  assert.throws(
    () => parseJobData(beforeLowerBound(0.5)),
    (e: Error) => {
      assert.match(e.message, /^malformed job data: resultKey: /);
      assert.match(e.message, /queued by a cxr from before the \+age-under-1 key/);
      assert.match(e.message, /queue the film again \(cxr enqueue --patient-age/);
      return true;
    },
  );
  // The same version's jobs that still mean what they did are read: an age within the population had no
  // suffix then either, and over 10 had the suffix it has now.
  assert.equal(parseJobData(beforeLowerBound(3)).patientAge, 3);
  assert.equal(parseJobData(beforeLowerBound(12, `${JPEG_KEY}+age-over-10`)).patientAge, 12);
  // A mismatch no older version could write is not put down to one: no advice to queue again.
  assert.throws(
    () => parseJobData(beforeLowerBound(0.5, `${JPEG_KEY}+age-over-10`)),
    (e: Error) => !/from before/.test(e.message) && /in \+age-under-1 exactly when/.test(e.message),
  );
});

test('jobs cxr 55f93a3 left waiting parse: an upload with its file name, a DICOM file job keyed by its UID', () => {
  const upload = {
    source: {
      kind: 'upload',
      sha256: '98ec8d0fe3316f1fb965c7f890c77ea17dfabb13d7c2d2effd2ede294c0c1bf2',
      name: 'person1951_bacteria_4882.jpeg',
    },
    resultKey: 'sha256:98ec8d0fe3316f1fb965c7f890c77ea17dfabb13d7c2d2effd2ede294c0c1bf2',
    model: MODEL,
    operatingPoint: 'balanced',
    heatmap: true,
    requestedBy: 'qa',
  };
  assert.deepEqual(parseJobData(upload), upload);
  const dicom = {
    source: { kind: 'file', path: '/srv/films/chest.dcm' },
    resultKey: '1.2.392.200036.9125.0.19950720112207',
    model: MODEL,
    operatingPoint: 'balanced',
    heatmap: true,
    requestedBy: null,
  };
  assert.deepEqual(parseJobData(dicom), dicom);
  const infant = { ...upload, resultKey: `${upload.resultKey}+age-under-1`, patientAge: 0.5 };
  assert.deepEqual(parseJobData(infant), infant);
});

const skip = stackUnavailable();
let stack: Stack | undefined;
let queue: JobQueue | undefined;

before(() => {
  if (skip) return;
  stack = startStack('upgrade-qa', ['redis']);
  queue = openQueue(stack.env.CXR_REDIS_URL, MODEL.sha256);
});
after(async () => {
  await queue?.close();
  stopStack(stack);
});

/**
 * Runs a worker over the queue until `count` jobs have come to it: each job's data is recorded, and a job is
 * failed for good (as the worker fails a film it cannot read) while `fail` says so.
 */
async function work(count: number, fail: (d: JobData) => boolean): Promise<JobData[]> {
  const seen: JobData[] = [];
  let done!: () => void;
  const all = new Promise<void>((r) => {
    done = r;
  });
  const worker = new Worker(
    queue!.name,
    async (job: Job) => {
      seen.push(job.data as JobData);
      if (seen.length === count) setImmediate(done);
      if (fail(job.data as JobData)) throw new UnrecoverableError('cannot read (ENOENT)');
      return { outcome: 'predicted' };
    },
    { connection: redisConnection(stack!.env.CXR_REDIS_URL) },
  );
  const timer = setTimeout(done, 30_000);
  try {
    await all;
  } finally {
    clearTimeout(timer);
    await worker.close();
  }
  return seen;
}

test('a failed job queued again runs with the data it is queued again with, not the data that failed', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const q = queue!;
  const sha = 'e'.repeat(64);
  // A film moved after it was queued: the job fails (file gone) and says to queue it again where it is now.
  const { patientAge: _none, ...film } = beforeLowerBound(3, `sha256:${sha}`);
  const moved = { ...film, source: { kind: 'file' as const, path: '/srv/old/e.jpeg' } } as JobData;
  assert.equal((await enqueue(q, moved, 'normal', { filmSha256: sha })).outcome, 'queued');
  // A job a cxr from before the +age-under-1 key left (its data as it wrote it), refused by this version.
  const legacy = beforeLowerBound(0.5, `sha256:${'f'.repeat(64)}`);
  await q.add('predict', legacy, { jobId: jobIdOf(legacy as JobData, 'f'.repeat(64)) });
  const first = await work(2, () => true);
  assert.equal(first.length, 2, 'both jobs reached the worker and failed');

  const now = { ...moved, source: { kind: 'file' as const, path: '/srv/new/e.jpeg' } };
  assert.equal((await enqueue(q, now, 'normal', { filmSha256: sha })).outcome, 'requeued');
  const { patientAge: _age, ...again } = legacy;
  assert.equal((await enqueue(q, again as JobData, 'normal', { filmSha256: 'f'.repeat(64) })).outcome, 'requeued');
  const second = await work(2, () => false);
  const paths = second.map((d) => (d.source.kind === 'file' ? d.source.path : '')).sort();
  assert.deepEqual(paths, ['/srv/films/a.jpeg', '/srv/new/e.jpeg'], 'the moved film is read where it is now');
  const legacyAgain = second.find((d) => d.resultKey === again.resultKey);
  assert.equal(legacyAgain?.patientAge, undefined, 'the old job runs as queued again: no age');
  assert.doesNotThrow(() => parseJobData(legacyAgain), 'and this version reads it');
});

test('a log a newer cxr migrated is refused naming it and what to do, by a reader and by a writer', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-upgrade-qa-'));
  try {
    const file = path.join(dir, 'audit.db');
    await (await openAuditStore(file)).close();
    // What a downgrade meets: the schema of a later version.
    const db = new Database(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    for (const opts of [{}, { readonly: true }]) {
      await assert.rejects(openAuditStore(file, opts), (e: Error) => {
        assert.ok(e.message.startsWith(`${file}: audit log schema v${SCHEMA_VERSION + 1} is newer`), e.message);
        assert.match(e.message, /a newer cxr has migrated it; run that version, or restore the copy of the log/);
        return true;
      });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
