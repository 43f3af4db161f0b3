// Found walking a hospital integrator's first afternoon with the real stack (review s34): an Orthanc job whose
// instance was deleted from Orthanc after it was queued (a study sent by mistake and removed; a backfill job that
// waited hours) was tried 3 times, 15 s apart, then failed with Orthanc's raw 404 body and errorCode null, where a
// file job's film that is gone fails at once as READ_FAILED. Here a small HTTP server answers as Orthanc does for
// an unknown resource; a 404 for an instance that is still there stays an ordinary, retried error.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { UnrecoverableError } from 'bullmq';
import { OrthancClient } from '../src/pacs';
import type { Predictor } from '../src/predict/predictor';
import { type JobContext, type JobData, processJob, refusedCodeOf } from '../src/queue';

const GONE = '0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d';
const HERE = '1a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d';
const SHA = 'ab'.repeat(32);
let server: http.Server;
let url = '';
let tagReads = 0;

before(async () => {
  server = http.createServer((req, res) => {
    // HERE's tags answer 404 once (as a route Orthanc lacks would), then the instance is found: still there.
    if (req.url === `/instances/${HERE}/simplified-tags` && tagReads++ > 0) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ SOPInstanceUID: '1.2.3.4', StudyInstanceUID: '1.2.3', Modality: 'MR' }));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ HttpError: 'Not Found', HttpStatus: 404, Message: 'Unknown resource' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server?.close());

// processJob reads only the model's identity and operating points before it asks Orthanc.
const predictor = {
  model: { name: 'm', version: '1', sha256: SHA, meta: { operatingPoints: { balanced: 0.5 } } },
} as unknown as Predictor;

const ctx = (): JobContext =>
  ({ predictor, orthanc: new OrthancClient({ url }), storeImages: false, log: () => {} }) as unknown as JobContext;

const job = (instanceId: string): JobData => ({
  source: { kind: 'orthanc', instanceId },
  resultKey: '1.2.3.4',
  model: { sha256: SHA },
  operatingPoint: 'balanced',
  heatmap: true,
  requestedBy: null,
});

test('an Orthanc job whose instance was deleted since it was queued fails at once, as READ_FAILED', async () => {
  const err = await processJob(ctx(), job(GONE)).then(
    () => assert.fail('the job of a deleted instance completed'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof UnrecoverableError, `not retried, got ${(err as Error).name}: ${(err as Error).message}`);
  assert.equal(refusedCodeOf(err), 'READ_FAILED');
  assert.match((err as Error).message, /no longer in Orthanc/);
});

test('a 404 for an instance that is still in Orthanc stays a retried error', async () => {
  const err = await processJob(ctx(), job(HERE)).then(
    () => assert.fail('completed'),
    (e: unknown) => e,
  );
  assert.ok(!(err instanceof UnrecoverableError), (err as Error).message);
  assert.equal((err as { status?: number }).status, 404);
});
