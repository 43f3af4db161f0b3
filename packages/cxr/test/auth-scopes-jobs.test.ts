// The `jobs` scope and whose job it is, on the stack's Redis: a token with `jobs` but not `audit` follows the jobs
// it queued and no other (job ids are predictable: a film's UID or digest and the model's, so GET /jobs/:id
// answered any job's prediction, its asker's name and time, to whoever guessed one); another's job is answered
// 404 in the words of a missing one. A token offering a film another token queued gets the existing job and may
// follow it, without the other token's name or images. A `jobs` token reads the images of its own jobs'
// predictions (they were 403). Unscoped tokens, and `audit`, see every job as before.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type JobQueue, queueApi, type RunningWorker, startWorker, UploadStore } from '../src/queue';
import { buildApp } from '../src/serve/app';
import { type AuditStore, openAuditStore } from '../src/serve/audit';
import { parseTokenList } from '../src/serve/auth';
import type { Predictor } from '../src/predict/predictor';
import { orthancClient, startQueueStack, stopQueueStack } from './queue-stack';
import { DICOM_FILE, gradientFilm, multipartBody } from './serve-fixtures';
import { orthanc, type Stack, stackUnavailable } from './stack-fixture';

const skip = stackUnavailable();
let stack: Stack | undefined;
let dir = '';
let predictor: Predictor;
let audit: AuditStore;
let queue: JobQueue;
let app: FastifyInstance;
let film: Buffer;
/** An instance in the stack's Orthanc. */
let instance = '';

const TOKENS = {
  admin: 'admin-token-0001', // no brackets: every scope, every job
  pacs: 'pacs-token-00002',
  bridge: 'bridge-token-003',
  auditor: 'auditor-token-04',
};

before(async () => {
  if (skip) return;
  // A Predictor (Predictor.load's), which the worker takes and the server too.
  ({ dir, predictor, stack, queue } = await startQueueStack('auth-scopes-jobs', ['orthanc', 'redis']));
  audit = await openAuditStore(path.join(dir, 'audit.db'));
  const stored = await orthanc(stack, '/instances', {
    method: 'POST',
    body: new Uint8Array(fs.readFileSync(DICOM_FILE)),
  });
  assert.equal(stored.status, 200);
  instance = ((await stored.json()) as { ID: string }).ID;
  const client = orthancClient(stack);
  film = await gradientFilm();
  const tokens = parseTokenList(
    `admin:${TOKENS.admin}\npacs[jobs]:${TOKENS.pacs}\nbridge[jobs,predict]:${TOKENS.bridge}\n` +
      `auditor[jobs,audit]:${TOKENS.auditor}\n`,
    'tokens',
  );
  const model = { sha256: predictor.model.sha256, defaultOperatingPoint: 'balanced' };
  app = await buildApp({ predictor, audit, tokens, jobs: queueApi({ queue, model, orthanc: client }) });
});
after(async () => {
  await app?.close();
  await audit?.close();
  await stopQueueStack({ queue, predictor, stack, dir });
});

type Who = keyof typeof TOKENS;
const bearer = (who: Who) => ({ authorization: `Bearer ${TOKENS[who]}` });

/** POST /jobs of one film (`tail` makes it a film of its own: another sha256, the same picture). */
async function submit(who: Who, tail: number): Promise<{ id: string; status: string; statusUrl: string }> {
  const bytes = Buffer.concat([film, Buffer.from([tail])]);
  const { body, headers } = multipartBody('image', 'film.png', bytes);
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/jobs?heatmap=true',
    payload: body,
    headers: { ...headers, ...bearer(who) },
  });
  assert.equal(res.statusCode, 202, res.body);
  return (JSON.parse(res.body) as { jobs: { id: string; status: string; statusUrl: string }[] }).jobs[0];
}

const get = (who: Who, url: string) => app.inject({ method: 'GET', url, headers: bearer(who) });

interface JobAnswer {
  status: string;
  prediction: Record<string, unknown> | null;
}

/** A 404 in the words of a job that does not exist: nothing tells another's job from none. */
async function assertNoSuchJob(who: Who, statusUrl: string, id: string) {
  const res = await get(who, statusUrl);
  assert.equal(res.statusCode, 404, `${who}: ${res.body}`);
  assert.equal(JSON.parse(res.body).detail, `no job ${id} (finished jobs are kept for 7 days)`);
}

test('a jobs token follows the jobs it queued or offered, and no other; unscoped and audit tokens follow all', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const mine = await submit('pacs', 1);
  assert.equal(mine.status, 'queued');
  assert.equal((await get('pacs', mine.statusUrl)).statusCode, 200);
  // Another limited token, with jobs and predict but not audit, guessing or knowing the id.
  await assertNoSuchJob('bridge', mine.statusUrl, mine.id);
  // The same answer as for an id of the same form that no job has (an existence oracle otherwise).
  const none = mine.id.replace(/^sha256-[0-9a-f]{4}/, 'sha256-0000');
  await assertNoSuchJob('bridge', `/api/v1/jobs/${encodeURIComponent(none)}`, none);
  for (const who of ['admin', 'auditor'] as const) {
    const res = await get(who, mine.statusUrl);
    assert.equal(res.statusCode, 200, `${who}: ${res.body}`);
  }
  // The bridge offers the same film: it gets the existing job, and may follow it from now on.
  const offered = await submit('bridge', 1);
  assert.deepEqual([offered.id, offered.status], [mine.id, 'already-queued']);
  assert.equal((await get('bridge', offered.statusUrl)).statusCode, 200);
  // The first token keeps it.
  assert.equal((await get('pacs', mine.statusUrl)).statusCode, 200);
});

test("a done job: its token reads it and its images; a later offer gets it without the other's name or images", {
  skip: skip ?? false,
  timeout: 180_000,
}, async () => {
  const uploads = new UploadStore(queue, 0);
  const worker: RunningWorker = await startWorker(
    { predictor, store: audit, uploads, orthanc: null, storeImages: true, log: () => {} },
    { redisUrl: stack!.env.CXR_REDIS_URL, concurrency: 1 },
  );
  let job: JobAnswer;
  const mine = await submit('pacs', 2);
  try {
    const end = Date.now() + 90_000;
    for (;;) {
      const res = await get('pacs', mine.statusUrl);
      assert.equal(res.statusCode, 200, res.body);
      job = JSON.parse(res.body) as JobAnswer;
      if (job.status === 'completed' || job.status === 'failed' || Date.now() > end) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await worker.close();
  }
  assert.equal(job.status, 'completed', JSON.stringify(job));
  const p = job.prediction as { requestedBy: string; heatmapUrl: string | null; thumbnailUrl: string | null };
  assert.equal(p.requestedBy, 'pacs');
  assert.ok(p.thumbnailUrl, JSON.stringify(p));
  // The image its own job links (403 INSUFFICIENT_SCOPE before: images needed audit or predict). The tiny model
  // cannot assess the gradient film, so it has no heat map: the thumbnail's route is the heat map's.
  const thumb = await get('pacs', p.thumbnailUrl);
  assert.equal(thumb.statusCode, 200, thumb.body);
  assert.match(String(thumb.headers['content-type']), /^image\/png/);

  await assertNoSuchJob('bridge', mine.statusUrl, mine.id);
  // Another's images are not there for it, as for a prediction that does not exist.
  assert.equal((await get('bridge', p.thumbnailUrl)).statusCode, 404);
  const offered = await submit('bridge', 2);
  assert.deepEqual([offered.id, offered.status], [mine.id, 'already-done']);
  const res = await get('bridge', offered.statusUrl);
  assert.equal(res.statusCode, 200, res.body);
  const theirs = JSON.parse(res.body) as JobAnswer;
  assert.equal(theirs.status, 'completed');
  assert.ok(!res.body.includes('"pacs"'), `the other token's name: ${res.body}`);
  assert.deepEqual(
    [theirs.prediction?.requestedBy, theirs.prediction?.heatmapUrl, theirs.prediction?.thumbnailUrl],
    [null, null, null],
  );
  assert.equal(theirs.prediction?.label, job.prediction?.label, 'the result itself');
  // Unscoped, and audit: the job as it is.
  for (const who of ['admin', 'auditor'] as const) {
    const full = JSON.parse((await get(who, mine.statusUrl)).body) as JobAnswer;
    assert.deepEqual(full.prediction, job.prediction, who);
  }
});

test('a film in the PACS: the token that offers an instance another token queued may follow that job', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const offer = async (who: Who) => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/jobs',
      payload: { orthancInstances: [instance] },
      headers: bearer(who),
    });
    assert.equal(res.statusCode, 202, res.body);
    return (JSON.parse(res.body) as { jobs: { id: string; status: string; statusUrl: string }[] }).jobs[0];
  };
  const mine = await offer('pacs');
  assert.equal(mine.status, 'queued');
  assert.equal((await get('pacs', mine.statusUrl)).statusCode, 200);
  await assertNoSuchJob('bridge', mine.statusUrl, mine.id);
  const again = await offer('bridge');
  assert.deepEqual([again.id, again.status], [mine.id, 'already-queued']);
  assert.equal((await get('bridge', again.statusUrl)).statusCode, 200);
});
