// A PNG with a side over 65,535 pixels (decode.ts MAX_SIDE) but within the pixel limit, a 1×70,000 strip, is
// refused by the decoder from its header (libvips took 17 s on such a strip). The doors that refuse a film before
// queueing it (image_refusal.ts: POST /jobs and `cxr enqueue`) let it through to fail on a worker later; they now
// refuse it by the decoder's own rule (decode.ts pixelRefusal): POST /jobs with POST /predictions's status, code
// and words, `cxr enqueue`'s check (a file read through its head and tail) with the same code and words.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { DEFAULT_LIMITS, MAX_SIDE } from '../src/data/decode';
import { bufferReader, fileReader, filmRefusalOf } from '../src/data/image_refusal';
import { buildApp } from '../src/serve/app';
import { pngChunk } from './image-bytes';
import { multipartBody, recordingJobs, serverParts } from './serve-fixtures';

let app: Awaited<ReturnType<typeof buildApp>>;
let strip: Buffer;
/** A queue that takes every film offered: what the route refuses before offering one is what is tested. */
const { jobs, submitted } = recordingJobs();

/** A PNG whose IHDR says `width`×`height` (CRC made right): a reader of its header sees that size. */
function withSize(src: Buffer, width: number, height: number): Buffer {
  const data = Buffer.from(src.subarray(16, 16 + src.readUInt32BE(8)));
  data.writeUInt32BE(width, 0);
  data.writeUInt32BE(height, 4);
  return Buffer.concat([src.subarray(0, 8), pngChunk('IHDR', data), src.subarray(8 + 12 + data.length)]);
}

const parts = serverParts('films-s31-side', {
  ready: async ({ predictor, audit }) => {
    app = await buildApp({ predictor, audit, jobs });
    const png = await sharp(Buffer.alloc(64 * 64, 128), { raw: { width: 64, height: 64, channels: 1 } })
      .png()
      .toBuffer();
    strip = withSize(png, 1, MAX_SIDE + 4465);
    assert.ok(MAX_SIDE + 4465 < DEFAULT_LIMITS.maxPixels, 'within the pixel limit: only its side is over');
  },
  closing: () => app?.close(),
});

test('POST /jobs refuses a PNG with a side over 65,535 up front, as POST /predictions does', async () => {
  const one = multipartBody('image', 'strip.png', strip);
  const direct = await app.inject({ method: 'POST', url: '/api/v1/predictions', ...one, payload: one.body });
  assert.equal(direct.statusCode, 413, direct.body);
  assert.equal(direct.json().code, 'TOO_MANY_PIXELS');
  const said = direct.json().detail as string;
  assert.match(said, /1×70000, a side over the 65535-pixel limit/);

  submitted.length = 0;
  const res = await app.inject({ method: 'POST', url: '/api/v1/jobs?heatmap=false', ...one, payload: one.body });
  assert.equal(res.statusCode, 413, res.body);
  assert.equal(res.json().code, 'TOO_MANY_PIXELS');
  assert.equal(res.json().detail, `strip.png: ${said} (nothing in this request was queued)`);
  assert.deepEqual(submitted, [], 'not queued');
});

test("`cxr enqueue`'s check refuses the strip from the file, in the decoder's words", async () => {
  const file = path.join(parts.dir, 'strip.png');
  fs.writeFileSync(file, strip);
  const handle = await fs.promises.open(file, 'r');
  try {
    const refused = await filmRefusalOf(fileReader(handle), strip.length);
    assert.equal(refused?.code, 'TOO_MANY_PIXELS');
    assert.match(refused?.reason ?? '', /^image is 1×70000, a side over the 65535-pixel limit/);
  } finally {
    await handle.close();
  }
  // A side of exactly 65,535 is taken (the check of the side, not of the pixels, is what refused the strip).
  const longest = withSize(strip, 1, MAX_SIDE);
  assert.equal(await filmRefusalOf(bufferReader(longest), longest.length), null);
});
