// What decoding says of a file it cannot read, on every path the same: a truncated JPEG is "premature end
// of JPEG image" whether it is decoded alone (`cxr predict FILE`) or beside others (a folder's films,
// where libvips's one error buffer let a failure read another's message or only "Warning treated as error
// due to failOn setting"); an image over the pixel limit, or with a side over 65535, says its size and the limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import { DecodeError, decodeBuffer } from '../src/data/decode';

/** A 600 × 600 noise JPEG: every cut of it ends inside the image data. */
async function noiseJpeg(): Promise<Buffer> {
  let s = 7;
  const px = Uint8Array.from({ length: 600 * 600 }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s >>> 23;
  });
  return sharp(px, { raw: { width: 600, height: 600, channels: 1 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

const failure = async (p: Promise<unknown>): Promise<DecodeError> => {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DecodeError, String(e));
    return e;
  }
  assert.fail('decoded');
};

test('truncated JPEGs decoded at once each say premature end of JPEG image, as one alone does', async () => {
  const whole = await noiseJpeg();
  const cuts = [0.02, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99];
  const alone = await failure(decodeBuffer(whole.subarray(0, whole.length >> 1), 8, { name: 'alone' }));
  assert.equal(alone.code, 'TRUNCATED');
  assert.match(alone.detail, /^truncated JPEG: premature end of JPEG image/);
  for (let round = 0; round < 3; round++) {
    const errors = await Promise.all(
      cuts.map((c, i) => failure(decodeBuffer(whole.subarray(0, Math.floor(whole.length * c)), 8, { name: `f${i}` }))),
    );
    for (const e of errors) {
      assert.equal(e.code, 'TRUNCATED');
      assert.equal(e.detail, alone.detail, e.message);
    }
  }
});

test("a damaged JPEG that is whole gives the decoder's reason once, without its library prefixes", async () => {
  const e = await failure(decodeBuffer(Buffer.from([0xff, 0xd8, 0xff, 0xd9]), 8, { name: 'soi-eoi' }));
  assert.equal(e.code, 'CORRUPT');
  assert.match(e.detail, /^corrupt JPEG: /);
  assert.doesNotMatch(e.detail, /Vips|failOn|corrupt header/);
  const reasons = e.detail.replace(/^corrupt JPEG: /, '').split('; ');
  assert.equal(new Set(reasons).size, reasons.length, e.detail);
});

test('an image over the pixel limit: its size from the header, and the limit, in megapixels', async () => {
  // A PNG header claiming 100000 × 100000 over a few bytes of data.
  const png = await sharp(Buffer.alloc(4), { raw: { width: 2, height: 2, channels: 1 } })
    .png()
    .toBuffer();
  const bomb = Buffer.from(png);
  bomb.writeUInt32BE(100_000, 16);
  bomb.writeUInt32BE(100_000, 20);
  bomb.writeUInt32BE(crc32(bomb.subarray(12, 29)), 29); // IHDR's CRC, over its type and data
  const e = await failure(decodeBuffer(bomb, 8, { name: 'bomb.png' }));
  assert.equal(e.code, 'TOO_MANY_PIXELS');
  assert.equal(e.detail, 'image is 100000×100000 (10000 megapixels), over the 50-megapixel limit');

  // Just over a limit: enough digits to tell them apart.
  const big = await sharp(Buffer.alloc(1001 * 1000), { raw: { width: 1001, height: 1000, channels: 1 } })
    .png()
    .toBuffer();
  const over = await failure(decodeBuffer(big, 8, { name: 'big.png', limits: { maxPixels: 1_000_000 } }));
  assert.equal(over.detail, 'image is 1001×1000 (1.001 megapixels), over the 1-megapixel limit');
});

test('a strip with a side over 65535 pixels, within the pixel limit, is refused from its header', async () => {
  // A 16 × 100,000 PNG of a few KB (each row compresses to almost nothing). libvips decodes such strips row by
  // row, for seconds (17 s at 1 × 49,000,000, a PNG of 100 KB). Only the header is read before the refusal.
  const rows = Buffer.alloc(100_000 * 17); // a filter byte and 16 zero samples per row
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', Buffer.from([0, 0, 0, 16, 0, 0x01, 0x86, 0xa0, 8, 0, 0, 0, 0])),
    pngChunk('IDAT', zlib.deflateSync(rows)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
  const t0 = performance.now();
  const e = await failure(decodeBuffer(png, 224, { name: 'strip.png' }));
  assert.equal(e.code, 'TOO_MANY_PIXELS');
  assert.equal(
    e.detail,
    'image is 16×100000, a side over the 65535-pixel limit (the most a JPEG or DICOM image can have)',
  );
  assert.ok(performance.now() - t0 < 1000, 'refused before decoding');
  // At the limit, a strip is decoded as usual.
  const edge = await sharp(Buffer.alloc(65_535), { raw: { width: 1, height: 65_535, channels: 1 } })
    .png()
    .toBuffer();
  assert.equal((await decodeBuffer(edge, 8)).height, 65_535);
});

function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
