// POST /jobs refuses a film the decoder would refuse from its header or its end: a JPEG cut short (it stops
// inside its scan) and a PNG over the pixel limit by its IHDR are answered as POST /predictions answers them
// (422 TRUNCATED, 413 TOO_MANY_PIXELS, the same words), before any film of the request is queued, rather than
// queued for a worker to fail. A whole film (one with bytes after its end too) is still taken. The refusal is
// data/image_refusal.ts's, the one `cxr enqueue` makes from a file's head and tail; here from the upload's buffer.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import sharp from 'sharp';
import { DEFAULT_LIMITS } from '../src/data/decode';
import { bufferReader, filmRefusalOf } from '../src/data/image_refusal';
import { buildApp } from '../src/serve/app';
import { pngChunk } from './image-bytes';
import { multipartBody, multipartFilms, recordingJobs, serverParts } from './serve-fixtures';

let app: Awaited<ReturnType<typeof buildApp>>;
let jpeg: Buffer;
let png: Buffer;

/** A queue that takes every film offered: what the route refuses before offering one is what is tested. */
const { jobs, submitted } = recordingJobs();

serverParts('jobs-refuse-cut', {
  ready: async ({ predictor, audit }) => {
    app = await buildApp({ predictor, audit, jobs });
    // Noise, so that the JPEG's scan is long enough to be cut inside it.
    const pixels = Uint8Array.from({ length: 256 * 256 }, (_, i) => (i * 7919 + (i >> 8) * 104729) % 251);
    const raw = { raw: { width: 256, height: 256, channels: 1 as const } };
    jpeg = await sharp(pixels, raw).jpeg().toBuffer();
    png = await sharp(pixels, raw).png().toBuffer();
  },
  closing: () => app?.close(),
});

/** The PNG with its IHDR saying `width`×`height` (its CRC made right): what a reader sees before any pixel. */
function withSize(src: Buffer, width: number, height: number): Buffer {
  const data = Buffer.from(src.subarray(16, 16 + src.readUInt32BE(8)));
  data.writeUInt32BE(width, 0);
  data.writeUInt32BE(height, 4);
  return Buffer.concat([src.subarray(0, 8), pngChunk('IHDR', data), src.subarray(8 + 12 + data.length)]);
}

test('POST /jobs refuses a cut JPEG and an over-pixel PNG as POST /predictions does; nothing is queued', async () => {
  const side = Math.ceil(Math.sqrt(DEFAULT_LIMITS.maxPixels)) + 1;
  const refused: [string, Buffer, number, string][] = [
    ['cut.jpg', jpeg.subarray(0, Math.floor(jpeg.length * 0.6)), 422, 'TRUNCATED'],
    ['huge.png', withSize(png, side, side), 413, 'TOO_MANY_PIXELS'],
  ];
  for (const [name, bytes, status, code] of refused) {
    const one = multipartBody('image', name, bytes);
    const direct = await app.inject({ method: 'POST', url: '/api/v1/predictions', ...one, payload: one.body });
    assert.equal(direct.statusCode, status, `${name} at POST /predictions: ${direct.body}`);
    assert.equal(direct.json().code, code, name);
    const said = direct.json().detail as string;

    submitted.length = 0;
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/jobs?heatmap=false',
      ...multipartFilms(['first.jpg', jpeg], [name, bytes]),
    });
    assert.equal(res.statusCode, status, `${name}: ${res.body}`);
    assert.equal(res.json().code, code, name);
    assert.equal(res.json().detail, `${name}: ${said} (nothing in this request was queued)`);
    assert.deepEqual(submitted, [], `${name}: nothing of the request queued`);
  }
});

test('POST /jobs takes whole films: a JPEG and a PNG, with bytes after their ends too', async () => {
  submitted.length = 0;
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/jobs?heatmap=false',
    ...multipartFilms(
      ['a.jpg', jpeg],
      ['b.png', png],
      ['c.jpg', Buffer.concat([jpeg, Buffer.from('trailer')])],
      ['d.png', Buffer.concat([png, Buffer.alloc(4096)])],
    ),
  });
  assert.equal(res.statusCode, 202, res.body);
  assert.deepEqual(submitted, ['a.jpg', 'b.png', 'c.jpg', 'd.png']);
});

test('the check reads a film through any reader: a PNG cut inside its chunks, walked window by window', async () => {
  // Many small chunks, so that the walk crosses several windows before it finds the cut.
  const ihdrEnd = 8 + 12 + png.readUInt32BE(8);
  const texts = Array.from({ length: 20_000 }, (_, i) => pngChunk('tEXt', Buffer.from(`k\0${i}`)));
  const long = Buffer.concat([png.subarray(0, ihdrEnd), ...texts, png.subarray(ihdrEnd)]);
  const cut = long.subarray(0, long.length - 40);
  const reads: [number, number][] = [];
  const reader = bufferReader(cut);
  const counted = async (offset: number, length: number) => {
    reads.push([offset, length]);
    return reader(offset, length);
  };
  assert.equal((await filmRefusalOf(counted, cut.length))?.code, 'TRUNCATED');
  assert.ok(reads.length < 20, `${reads.length} reads for ${texts.length} chunks`);
  assert.equal(await filmRefusalOf(bufferReader(long), long.length), null, 'the whole film is taken');
});
