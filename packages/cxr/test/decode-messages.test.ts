// What decoding says of a file it cannot read, on every path the same: a truncated JPEG is "premature end
// of JPEG image" whether it is decoded alone (`cxr predict FILE`) or beside others (a folder's films,
// where libvips's one error buffer let a failure read another's message or only "Warning treated as error
// due to failOn setting"); an image over the pixel limit says its size and the limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
  assert.equal(alone.code, 'CORRUPT');
  assert.match(alone.detail, /^truncated JPEG: premature end of JPEG image/);
  for (let round = 0; round < 3; round++) {
    const errors = await Promise.all(
      cuts.map((c, i) => failure(decodeBuffer(whole.subarray(0, Math.floor(whole.length * c)), 8, { name: `f${i}` }))),
    );
    for (const e of errors) {
      assert.equal(e.code, 'CORRUPT');
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
