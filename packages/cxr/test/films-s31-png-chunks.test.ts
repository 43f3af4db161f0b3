// The one PNG chunk walker (data/png_chunks.ts) that png16.ts (sBIT), image_header.ts (acTL, fcTL) and
// image_refusal.ts (a PNG cut inside its chunks) share: a chunk is given while its 8-byte header is in the bytes,
// its data no further than the bytes hold, and a length near 2^32 is read unsigned (the walk ends, not loops).
// The readers' answers on such edges are checked here too, as they were before they shared it.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { bufferReader, filmRefusalOf } from '../src/data/image_refusal';
import { pngUnsupported } from '../src/data/image_header';
import { pngSignificantBits } from '../src/data/png16';
import { pngChunkAt, pngChunkData, pngChunks, uint32At } from '../src/data/png_chunks';
import { pngChunk } from './image-bytes';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const ihdr = pngChunk('IHDR', Buffer.from([0, 0, 0, 4, 0, 0, 0, 4, 16, 0, 0, 0, 0]));
const iend = pngChunk('IEND', Buffer.alloc(0));

test('chunks are walked from the signature while their headers are there; data is bounded by the bytes', () => {
  const sbit = pngChunk('sBIT', Buffer.from([12]));
  const idat = pngChunk('IDAT', Buffer.alloc(5));
  const png = Buffer.concat([SIGNATURE, ihdr, sbit, idat, iend]);
  const walked = [...pngChunks(png)].map((c) => [c.type, c.at, c.length, c.next]);
  assert.deepEqual(walked, [
    ['IHDR', 8, 13, 33],
    ['sBIT', 33, 1, 46],
    ['IDAT', 46, 5, 63],
    ['IEND', 63, 0, 75],
  ]);
  // Cut 3 bytes into IDAT's header: the chunks before it only. Cut inside sBIT's data: its data as far as held.
  assert.deepEqual(
    [...pngChunks(png.subarray(0, 49))].map((c) => c.type),
    ['IHDR', 'sBIT'],
  );
  const cutInData = png.subarray(0, 33 + 8);
  const last = [...pngChunks(cutInData)].at(-1);
  assert.equal(last?.type, 'sBIT');
  assert.deepEqual([...pngChunkData(cutInData, last!)], []);
  assert.equal(pngChunkAt(png, png.length - 7), undefined, 'a header of 7 bytes is none');
  assert.equal(pngChunkAt(png, -1), undefined);
});

test('a length with its top bit set is read unsigned, and the walk ends past the bytes', () => {
  const huge = Buffer.from(pngChunk('tEXt', Buffer.alloc(0)));
  huge.writeUInt32BE(0xfffffff0, 0);
  const png = Buffer.concat([SIGNATURE, ihdr, huge, pngChunk('sBIT', Buffer.from([10])), iend]);
  const chunks = [...pngChunks(png)];
  assert.deepEqual(
    chunks.map((c) => c.type),
    ['IHDR', 'tEXt'],
  );
  assert.equal(chunks[1].length, 0xfffffff0);
  assert.equal(uint32At(Buffer.from([0xff, 0xff, 0xff, 0xff]), 0), 0xffffffff);
  // The readers: no sBIT past the long chunk, not animated, and cut inside that chunk (it runs past the file).
  assert.equal(pngSignificantBits(png), undefined);
  assert.equal(pngUnsupported(png), undefined);
});

test('the readers answer from the shared walk: sBIT, acTL and fcTL, and a PNG cut inside its chunks', async () => {
  const actl = (frames: number) => pngChunk('acTL', Buffer.from([0, 0, 0, frames, 0, 0, 0, 0]));
  const fctl = pngChunk('fcTL', Buffer.alloc(26));
  const idat = pngChunk('IDAT', Buffer.alloc(2000));
  const sbit = pngChunk('sBIT', Buffer.from([12]));
  assert.deepEqual(pngSignificantBits(Buffer.concat([SIGNATURE, ihdr, sbit, idat, iend])), [12]);
  assert.equal(pngSignificantBits(Buffer.concat([SIGNATURE, ihdr, idat, sbit, iend])), undefined, 'after IDAT');
  assert.match(pngUnsupported(Buffer.concat([SIGNATURE, ihdr, actl(2), idat, iend])) ?? '', /2 frames/);
  assert.equal(pngUnsupported(Buffer.concat([SIGNATURE, ihdr, actl(1), fctl, idat, iend])), undefined);
  assert.match(pngUnsupported(Buffer.concat([SIGNATURE, ihdr, actl(1), idat, iend])) ?? '', /default image/);
  // acTL whose frame count is cut off by the end of the bytes: not read.
  assert.equal(pngUnsupported(Buffer.concat([SIGNATURE, ihdr, actl(2)]).subarray(0, 33 + 11)), undefined);
  // Padding after IEND would be taken; a film whose IDAT is cut short (its tail lacks IEND) is refused.
  const whole = Buffer.concat([SIGNATURE, ihdr, idat, iend]);
  assert.equal(await filmRefusalOf(bufferReader(whole), whole.length), null);
  const cut = whole.subarray(0, whole.length - 1000);
  assert.equal((await filmRefusalOf(bufferReader(cut), cut.length))?.code, 'TRUNCATED');
  // Whole chunks, IEND alone missing: for the decoder to read.
  const noEnd = Buffer.concat([SIGNATURE, ihdr, idat]);
  assert.equal(await filmRefusalOf(bufferReader(noEnd), noEnd.length), null);
});
