// Review of predict/ (session 33): runBatch as a library gives a folder's unreadable images their rows as `cxr
// predict` does, and a throw stops the batch before it rejects (no file reaches onPrediction or the output after).
// A tiny random model and images made here: no ../shared data needed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { runBatch } from '../src/predict/batch';
import { InputError } from '../src/predict/errors';
import { Predictor } from '../src/predict/predictor';
import { makeTinyModel, tempDir } from './serve-fixtures';
import { sink } from './text-sink';
import { gradientJpeg } from './archive-fixtures';

let root = '';
let modelDir = '';
let jpeg: Buffer;

/** An ISO media file's first bytes with `brand` as its major brand (a phone's HEIC). */
const isoMedia = (brand: string) =>
  Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from(`ftyp${brand}`), Buffer.alloc(12)]);

before(async () => {
  root = tempDir('predict-review-s33');
  modelDir = await makeTinyModel(path.join(root, 'model'));
  jpeg = await gradientJpeg();
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

test("runBatch over a folder: an empty x.jpg and a HEIC get error rows, as in `cxr predict`'s output", async () => {
  const dir = path.join(root, 'archive');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'a.jpeg'), jpeg);
  fs.writeFileSync(path.join(dir, 'b.jpg'), '');
  fs.writeFileSync(path.join(dir, 'IMG_0001.HEIC'), isoMedia('heic'));
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a film\n');
  const { out } = sink();
  const r = await runBatch({ paths: [dir], modelDir, format: 'json', out, log: () => {}, progress: false });
  assert.deepEqual(
    r.rows.map((x) => [path.basename(x.file), x.errorCode]),
    [
      ['IMG_0001.HEIC', 'UNSUPPORTED_FORMAT'],
      ['a.jpeg', null],
      ['b.jpg', 'EMPTY'],
    ],
  );
  assert.equal(r.processed, 1);
  assert.equal(r.failed, 2);
  assert.equal(r.total, 3);
});

test('runBatch: a throw in onPrediction stops the batch; nothing reaches it or the output after that', async () => {
  const dir = path.join(root, 'films');
  fs.mkdirSync(dir);
  const files = Array.from({ length: 8 }, (_, i) => {
    const f = path.join(dir, `f${i}.jpeg`);
    fs.writeFileSync(f, jpeg);
    return f;
  });
  const { out, text } = sink();
  let rejected = false;
  const late: string[] = [];
  const calls: string[] = [];
  await assert.rejects(
    runBatch({
      paths: files,
      modelDir,
      format: 'csv',
      out,
      log: () => {},
      progress: false,
      concurrency: 3,
      onPrediction: async (file) => {
        calls.push(path.basename(file));
        if (rejected) late.push(path.basename(file));
        if (file.endsWith('f1.jpeg')) throw new Error('audit log down');
      },
    }).finally(() => {
      rejected = true;
    }),
    /audit log down/,
  );
  const written = text();
  // The files in flight when f1 failed may finish; none is started after it, and nothing comes after the rejection.
  await new Promise((r) => setTimeout(r, 1500));
  assert.deepEqual(late, []);
  assert.equal(text(), written);
  // Not every film was tried: the files not yet started when f1 failed never were.
  assert.ok(calls.length < files.length, calls.join(', '));
});

test('Predictor.load: a limit given as undefined keeps its default (the pixel limit stays on)', async () => {
  // 8000×8000 is 64 megapixels, over the default 50: refused from its header, never decoded.
  const big = await sharp({ create: { width: 8000, height: 8000, channels: 3, background: { r: 0, g: 0, b: 0 } } })
    .greyscale()
    .png()
    .toBuffer();
  for (const limits of [{ maxPixels: undefined }, { maxInputBytes: undefined, maxPixels: undefined }]) {
    const p = await Predictor.load(modelDir, { warmUp: false, limits });
    try {
      await assert.rejects(p.predict(big), (e: unknown) => e instanceof InputError && e.code === 'TOO_MANY_PIXELS');
    } finally {
      p.dispose();
    }
  }
});
