// Review of the library API (session 35), as a program uses `@cxr/app`: expandPaths lists what runBatch
// predicts, and it and runBatch refuse one path given as a string; predict takes a Uint8Array of another realm;
// Predictor.load's warm-up is not held to the caller's decode limits, and a model folder that is no string is named
// as Predictor.load's; readMeta's failures carry a code; the audit log's outage error is exported; createDecodePool
// refuses a timeout no decode could meet; initEngine rejects rather than throws. A tiny random model and images
// made here: no ../shared data needed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';
import sharp from 'sharp';
import { isoMedia } from './image-bytes';
import { makeTinyModel, tempDir } from './serve-fixtures';
import { sink } from './text-sink';
import { gradientJpeg } from './archive-fixtures';

const repo = path.resolve(__dirname, '..', '..', '..', '..');
/** What a program gets from `require('@cxr/app')`, resolved by name as one in this workspace would. */
// biome-ignore lint/suspicious/noExplicitAny: the test reads the exports by name, as a JavaScript program would.
const app = (): any => require(require.resolve('@cxr/app', { paths: [repo] }));

let root = '';
let modelDir = '';
let jpeg: Buffer;

before(async () => {
  root = tempDir('library-review-s35');
  modelDir = await makeTinyModel(path.join(root, 'model'));
  jpeg = await gradientJpeg();
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

test("expandPaths lists a folder's files as runBatch predicts them: an empty x.jpg and a HEIC included", async () => {
  const dir = path.join(root, 'archive');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'a.jpeg'), jpeg);
  fs.writeFileSync(path.join(dir, 'b.jpg'), '');
  fs.writeFileSync(path.join(dir, 'IMG_0001.HEIC'), isoMedia('heic'));
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a film\n');
  const { expandPaths, runBatch } = app();
  const jobs = expandPaths([dir], false);
  assert.deepEqual(
    jobs.map((j: { file: string }) => path.basename(j.file)),
    ['IMG_0001.HEIC', 'a.jpeg', 'b.jpg'],
  );
  // Handed to runBatch as its `jobs`, they give the rows its own default list gives.
  const { out } = sink();
  const given = await runBatch({ paths: [dir], jobs, modelDir, format: 'json', out, log: () => {}, progress: false });
  const own = await runBatch({ paths: [dir], modelDir, format: 'json', out, log: () => {}, progress: false });
  const codes = (r: { rows: { file: string; errorCode: string | null }[] }) =>
    r.rows.map((x) => [path.basename(x.file), x.errorCode]);
  assert.deepEqual(codes(given), codes(own));
  assert.equal(given.total, 3);
});

test('predict takes a Uint8Array made in another realm (a vm context, as in a Jest test)', async () => {
  const { Predictor } = app();
  const p = await Predictor.load(modelDir, { warmUp: false });
  try {
    const foreign = vm.runInNewContext('new Uint8Array(n)', { n: jpeg.length }) as Uint8Array;
    foreign.set(jpeg);
    assert.equal(foreign instanceof Uint8Array, false, 'the array is of another realm');
    const r = await p.predict(foreign);
    const same = await p.predict(jpeg);
    assert.equal(r.probability, same.probability);
    assert.equal(r.input.sha256, same.input.sha256);
    // An ArrayBuffer of another realm is still named as one, with the hint.
    const buf = vm.runInNewContext('new ArrayBuffer(4)');
    await assert.rejects(
      p.predict(buf),
      (e: Error) => e instanceof TypeError && /got an ArrayBuffer: wrap/.test(e.message),
    );
  } finally {
    p.dispose();
  }
});

test("Predictor.load warms up whatever the caller's decode limits; those limits still apply to predict", async () => {
  const { Predictor, InputError } = app();
  const p = await Predictor.load(modelDir, { limits: { maxInputBytes: 1000, maxPixels: 5000 } });
  try {
    await assert.rejects(
      p.predict(jpeg),
      (e: unknown) => e instanceof InputError && (e as { code: string }).code === 'TOO_LARGE',
    );
    const small = await sharp(Buffer.alloc(40 * 40, 128), { raw: { width: 40, height: 40, channels: 1 } })
      .png()
      .toBuffer();
    assert.ok(small.length < 1000);
    const r = await p.predict(small);
    assert.equal(r.input.kind, 'png');
  } finally {
    p.dispose();
  }
});

test('Predictor.load(undefined) (an unset CXR_MODEL) is a TypeError that names Predictor.load', async () => {
  const { Predictor } = app();
  await assert.rejects(
    Predictor.load(process.env.CXR_S35_UNSET_MODEL),
    (e: Error) =>
      e instanceof TypeError &&
      /^Predictor\.load: the model folder must be a path \(a string\), got undefined/.test(e.message),
  );
});

test('AuditUnavailableError is exported: a program tells an audit log that is away (AUDIT_UNAVAILABLE)', async () => {
  const { openAuditStore, AuditUnavailableError } = app();
  assert.equal(typeof AuditUnavailableError, 'function');
  const file = path.join(root, 'audit.db');
  await (await openAuditStore(file)).close();
  const store = await openAuditStore(file, { readonly: true });
  try {
    await assert.rejects(
      store.pruneImages(new Date().toISOString()),
      (e: unknown) => e instanceof AuditUnavailableError && (e as { code: string }).code === 'AUDIT_UNAVAILABLE',
    );
  } finally {
    await store.close();
  }
});

test("runBatch and expandPaths refuse paths given as one string: 'film.jpeg' was read letter by letter", async () => {
  const dir = path.join(root, 'cwd');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'other.jpeg'), jpeg);
  const { runBatch, expandPaths } = app();
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    // Its '.' was the working folder: every film there was predicted, and a row for each letter failed.
    const { out } = sink();
    await assert.rejects(
      runBatch({ paths: 'film.jpeg', modelDir, out, log: () => {}, progress: false }),
      (e: Error) => e instanceof TypeError && /^runBatch: paths must be an array .*give an array/.test(e.message),
    );
    assert.throws(() => expandPaths('film.jpeg', false), /^TypeError: expandPaths: paths must be an array/);
    assert.throws(() => expandPaths(['a', 3], false), /paths must hold strings .* got a number at \[1\]/);
  } finally {
    process.chdir(cwd);
  }
});

test('createDecodePool refuses a timeoutMs no decode could meet (0, negative, a string, Infinity)', () => {
  const { createDecodePool } = app();
  // Each fired the deadline at once: every film failed DECODE_TIMEOUT, the option never questioned.
  for (const timeoutMs of [0, -5, '30000', Number.POSITIVE_INFINITY, Number.NaN]) {
    assert.throws(
      () => createDecodePool({ size: 1, timeoutMs }),
      (e: Error) => e instanceof TypeError && /^DecodePool: timeoutMs must be a number of milliseconds/.test(e.message),
      String(timeoutMs),
    );
  }
});

test("readMeta's failures are ModelLoadErrors with a code, as loadModel's", () => {
  const { readMeta, ModelLoadError } = app();
  const empty = path.join(root, 'no-model');
  fs.mkdirSync(empty);
  const code = (dir: string) => {
    try {
      readMeta(dir);
    } catch (e) {
      assert.ok(e instanceof ModelLoadError, String(e));
      return [(e as { code: string }).code, (e as Error).message];
    }
    assert.fail('readMeta did not throw');
  };
  assert.deepEqual(code(path.join(root, 'nowhere')), ['NOT_FOUND', `${path.join(root, 'nowhere')}: no such folder`]);
  assert.deepEqual(code(empty), ['NOT_A_MODEL', `${empty}: no cxr.json (not a cxr model folder)`]);
  fs.writeFileSync(path.join(empty, 'cxr.json'), '{"format":');
  assert.equal(code(empty)[0], 'BAD_CONFIG');
  assert.equal(readMeta(modelDir).inputSize > 0, true);
});

test('initEngine with a thread count the engine refuses rejects its promise (it threw as it was called)', async () => {
  const { initEngine } = app();
  let promise: Promise<void> | undefined;
  assert.doesNotThrow(() => {
    promise = initEngine(-1);
  });
  await assert.rejects(promise!, /thread count must be a positive integer, got -1/);
});
