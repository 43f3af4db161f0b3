// What a job answers for a film that also went through the PACS path, on the stack's Orthanc and Redis, as a
// hospital integrator found it. A film an Orthanc job had done (its row in the audit log has no images: the heat
// map is the Secondary Capture in the PACS) was then uploaded with POST /jobs, heat map asked for (the default),
// and completed "reused" with no heat map, although POST /predictions gives one; and an Orthanc job for a film the
// model cannot read failed with "(see the log)", the worker's log being on another machine, where the same film
// uploaded said why.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UnrecoverableError } from 'bullmq';
import type { OrthancClient } from '../src/pacs';
import type { Predictor } from '../src/predict/predictor';
import { type JobContext, type JobData, jobIdOf, type JobQueue, processJob, resultKeyOf } from '../src/queue';
import { sha256Of } from '../src/hash';
import { type AuditStore, openAuditStore } from '../src/serve/audit';
import { DICOM_DIR, DICOM_FILE } from './serve-fixtures';
import { orthanc, type Stack, stackUnavailable } from './stack-fixture';
import { jobContext, orthancClient, startQueueStack, stopQueueStack } from './queue-stack';

const skip = stackUnavailable();
let stack: Stack | undefined;
let dir = '';
let predictor: Predictor;
let store: AuditStore;
let queue: JobQueue;
let client: OrthancClient;

before(async () => {
  if (skip) return;
  ({ dir, predictor, stack, queue } = await startQueueStack('queue-pacs-answers', ['orthanc', 'redis']));
  store = await openAuditStore(path.join(dir, 'audit.db'));
  client = orthancClient(stack);
});
after(async () => {
  await store?.close();
  await stopQueueStack({ queue, predictor, stack, dir });
});

const ctx = (over: Partial<JobContext> = {}): JobContext =>
  jobContext({ predictor, queue }, store, { orthanc: client, storeImages: true, ...over });

/** Stores the film in Orthanc; its Orthanc id. */
async function toPacs(bytes: Buffer): Promise<string> {
  const res = await orthanc(stack!, '/instances', { method: 'POST', body: new Uint8Array(bytes) });
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { ID: string }).ID;
}

const job = (source: JobData['source'], resultKey: string, heatmap: boolean): JobData => ({
  source,
  resultKey,
  model: { sha256: predictor.model.sha256 },
  operatingPoint: 'balanced',
  heatmap,
  requestedBy: 'integrator',
});

/** An upload job for `bytes`, its film held as POST /jobs holds it. */
async function uploadJob(c: JobContext, bytes: Buffer, heatmap: boolean): Promise<JobData> {
  const data = job({ kind: 'upload', sha256: sha256Of(bytes), name: 'film.dcm' }, resultKeyOf(bytes), heatmap);
  await c.uploads.put(sha256Of(bytes), bytes, jobIdOf(data));
  return data;
}

test('an upload job asking for a heat map gets one, though the film was done by the PACS path first', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const bytes = fs.readFileSync(DICOM_FILE);
  const key = resultKeyOf(bytes);
  const pacs = await processJob(ctx(), job({ kind: 'orthanc', instanceId: await toPacs(bytes) }, key, true));
  assert.equal(pacs.outcome, 'predicted');
  const keyed = await store.findByResultKey(key, predictor.model.sha256, 'balanced');
  assert.ok(keyed && !keyed.hasHeatmap && !keyed.hasThumbnail, 'the PACS path keeps its images in the PACS');
  assert.notEqual(keyed.verdict?.status, 'cannot-assess', 'a film that has a heat map');

  // No heat map asked for: the stored answer is the answer.
  const plain = await processJob(ctx(), await uploadJob(ctx(), bytes, false));
  assert.equal(plain.outcome, 'reused');
  assert.equal(plain.prediction?.id, keyed.id);

  // A heat map asked for: predicted again, with its images, in a row of its own.
  const c = ctx();
  const mapped = await processJob(c, await uploadJob(c, bytes, true));
  assert.equal(mapped.outcome, 'predicted', JSON.stringify(mapped));
  const p = mapped.prediction!;
  assert.notEqual(p.id, keyed.id);
  assert.equal(p.heatmapUrl, `/api/v1/predictions/${p.id}/heatmap.png`);
  assert.equal(p.thumbnailUrl, `/api/v1/predictions/${p.id}/thumbnail.png`);
  assert.equal(p.probability, keyed.probability, 'the same answer');
  assert.equal(p.requestedBy, 'integrator');
  assert.ok(((await store.image(p.id, 'heatmap'))?.length ?? 0) > 0, 'the heat map is in the audit log');
  assert.equal(await c.uploads.get(sha256Of(bytes)), null, 'the upload is let go');
  // The film's keyed answer stays the one row of its key (the unique index of result keys), unchanged.
  assert.deepEqual(await store.findByResultKey(key, predictor.model.sha256, 'balanced'), keyed);
  assert.equal((await store.get(p.id))?.resultKey, null);
  assert.equal(await store.count(), 2);

  // A worker that keeps no images (--no-store-images) could not give a heat map either: the stored answer stands.
  const noImages = ctx({ storeImages: false });
  const reused = await processJob(noImages, await uploadJob(noImages, bytes, true));
  assert.equal(reused.outcome, 'reused');
  assert.equal(await store.count(), 2);
});

test("an Orthanc job for a film the model cannot read fails saying why, as the same film's upload job does", {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  // A film whose header claims twice the rows its pixel data holds (Rows, US, in Explicit VR Little Endian).
  const bytes = Buffer.from(fs.readFileSync(path.join(DICOM_DIR, 'gdcm-CR-MONO1-10-chest.dcm')));
  const rows = bytes.indexOf(Buffer.from([0x28, 0x00, 0x10, 0x00, 0x55, 0x53, 0x02, 0x00]), 132);
  assert.ok(rows > 0);
  bytes.writeUInt16LE(bytes.readUInt16LE(rows + 8) * 2, rows + 8);
  const key = resultKeyOf(bytes);

  const c = ctx();
  const upload = await processJob(c, await uploadJob(c, bytes, true)).catch((e: unknown) => e);
  assert.ok(upload instanceof UnrecoverableError, String(upload));
  const pacs = await processJob(ctx(), job({ kind: 'orthanc', instanceId: await toPacs(bytes) }, key, true)).catch(
    (e: unknown) => e,
  );
  assert.ok(pacs instanceof UnrecoverableError, String(pacs));
  assert.match(pacs.message, /is not a film the model can read: /);
  assert.ok(pacs.message.endsWith(upload.message), `${pacs.message}\nvs the upload's\n${upload.message}`);
  assert.doesNotMatch(pacs.message, /see the log/);
});
