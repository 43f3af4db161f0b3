import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import {
  DecodeError,
  type DecodeErrorCode,
  decodeBuffer,
  decodeFile,
  decodeRawGray,
  sniffFormat,
} from '../src/data/decode';

import { pngClaiming } from './image-bytes';
import { DATA, needsData } from './shared-data';
let tmp = '';

before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cxr-decode-'));
});
after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const mean = (a: Uint8Array) => a.reduce((s, v) => s + v, 0) / a.length;

function rejectsWith(code: DecodeErrorCode, file: string) {
  return (e: unknown) => {
    assert.ok(e instanceof DecodeError, `expected a DecodeError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.message.includes(file), `message names the file: ${e.message}`);
    return true;
  };
}

test('8-bit grayscale JPEG', async () => {
  const file = path.join(tmp, 'gray.jpeg');
  await sharp(Buffer.alloc(64 * 48, 100), { raw: { width: 64, height: 48, channels: 1 } })
    .jpeg()
    .toFile(file);
  const img = await decodeFile(file, 32);
  assert.equal(img.kind, 'jpeg');
  assert.deepEqual([img.width, img.height, img.size, img.pixels.length], [64, 48, 32, 32 * 32]);
  assert.ok(Math.abs(mean(img.pixels) - 100) < 2);
});

test('RGB JPEG becomes Rec. 601 luma', async () => {
  const rgb = Buffer.alloc(40 * 40 * 3);
  for (let i = 0; i < 40 * 40; i++) rgb.set([200, 100, 50], i * 3);
  const buf = await sharp(rgb, { raw: { width: 40, height: 40, channels: 3 } })
    .jpeg({ quality: 100 })
    .toBuffer();
  const img = await decodeBuffer(buf, 16);
  assert.ok(Math.abs(mean(img.pixels) - (0.299 * 200 + 0.587 * 100 + 0.114 * 50)) < 3, `mean ${mean(img.pixels)}`);
});

const FULLRES_FILM = path.join(DATA, 'samples-fullres', 'PNEUMONIA', 'person1073_bacteria_3008.jpeg');
const KAGGLE_FILM = path.join(DATA, 'chest_xray', 'val', 'NORMAL', 'NORMAL2-IM-1427-0001.jpeg');

test('a real full-resolution RGB original', { skip: needsData(FULLRES_FILM) }, async () => {
  const file = FULLRES_FILM;
  const img = await decodeFile(file, 64);
  assert.deepEqual([img.width, img.height, img.pixels.length], [978, 626, 64 * 64]);
  assert.ok(mean(img.pixels) > 20 && mean(img.pixels) < 235);
});

test('16-bit PNG is scaled to 8 bits, not clipped', async () => {
  const d = new Uint16Array(30 * 20).fill(0x8000);
  const file = path.join(tmp, 'deep.png');
  await sharp(d, { raw: { width: 30, height: 20, channels: 1 } })
    .toColourspace('grey16')
    .png()
    .toFile(file);
  assert.equal((await sharp(file).metadata()).depth, 'ushort');
  const img = await decodeFile(file, 8);
  assert.equal(img.kind, 'png');
  assert.ok(Math.abs(mean(img.pixels) - 128) <= 1, `mean ${mean(img.pixels)}`);
});

test('RGBA PNG: transparency becomes black', async () => {
  const rgba = Buffer.alloc(20 * 20 * 4);
  for (let y = 0; y < 20; y++)
    for (let x = 0; x < 20; x++) rgba.set([255, 255, 255, x < 10 ? 255 : 0], (y * 20 + x) * 4);
  const img = await decodeBuffer(
    await sharp(rgba, { raw: { width: 20, height: 20, channels: 4 } })
      .png()
      .toBuffer(),
    20,
  );
  assert.equal(img.pixels[5 * 20 + 2], 255);
  assert.equal(img.pixels[5 * 20 + 17], 0);
});

test('non-square input is squashed to the square, not cropped', async () => {
  const w = 200;
  const h = 100;
  const raw = Buffer.alloc(w * h);
  for (let y = 0; y < h; y++) raw.fill(255, y * w + w / 2, (y + 1) * w);
  const img = await decodeBuffer(
    await sharp(raw, { raw: { width: w, height: h, channels: 1 } })
      .png()
      .toBuffer(),
    10,
  );
  // Lanczos rings by a level or two next to the edge, hence the margins.
  for (let y = 0; y < 10; y++) {
    assert.ok(
      img.pixels.subarray(y * 10, y * 10 + 4).every((v) => v <= 4),
      `row ${y} left half`,
    );
    assert.ok(
      img.pixels.subarray(y * 10 + 6, y * 10 + 10).every((v) => v >= 251),
      `row ${y} right half`,
    );
  }
});

test('the type comes from the content, not the name', async () => {
  const file = path.join(tmp, 'really-a-png.jpg');
  await sharp(Buffer.alloc(16, 7), { raw: { width: 4, height: 4, channels: 1 } })
    .png()
    .toFile(file);
  assert.equal((await decodeFile(file, 4)).kind, 'png');
});

test('rejects an empty file', async () => {
  const file = path.join(tmp, 'empty.jpeg');
  await fs.writeFile(file, '');
  await assert.rejects(decodeFile(file, 8), rejectsWith('EMPTY', file));
});

test('rejects a truncated JPEG', { skip: needsData(KAGGLE_FILM) }, async () => {
  const file = path.join(tmp, 'truncated.jpeg');
  const whole = await fs.readFile(KAGGLE_FILM);
  await fs.writeFile(file, whole.subarray(0, whole.length >> 1));
  // The code a DICOM cut short gets too: clients treat a file cut in transfer alike, whatever its format.
  await assert.rejects(decodeFile(file, 8), rejectsWith('TRUNCATED', file));
});

test('rejects a text file named .jpg, and names other formats', async () => {
  const file = path.join(tmp, 'notes.jpg');
  await fs.writeFile(file, 'this is not an image\n');
  await assert.rejects(decodeFile(file, 8), rejectsWith('UNSUPPORTED_FORMAT', file));
  const dicom = Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), Buffer.alloc(64)]);
  assert.equal(sniffFormat(dicom), 'dicom');
  await assert.rejects(decodeBuffer(dicom, 8, { name: 'upload.dcm' }), /upload\.dcm: DICOM is not supported here/);
});

test('rejects a PNG over the pixel limit before decoding it', async () => {
  const file = path.join(tmp, 'bomb.png');
  await fs.writeFile(file, pngClaiming(30000, 30000, 1024)); // 900 MP claimed in about 1 KB
  await assert.rejects(decodeFile(file, 8), rejectsWith('TOO_MANY_PIXELS', file));
  const small = path.join(tmp, 'small.png');
  await sharp(Buffer.alloc(100 * 100), { raw: { width: 100, height: 100, channels: 1 } })
    .png()
    .toFile(small);
  await assert.rejects(decodeFile(small, 8, { limits: { maxPixels: 5000 } }), rejectsWith('TOO_MANY_PIXELS', small));
});

test('rejects input over the byte limit without reading it', async () => {
  const file = path.join(tmp, 'big.jpeg');
  await fs.writeFile(file, Buffer.alloc(2048, 0xff));
  await assert.rejects(decodeFile(file, 8, { limits: { maxInputBytes: 1024 } }), rejectsWith('TOO_LARGE', file));
  await assert.rejects(decodeFile(path.join(tmp, 'missing.jpeg'), 8), rejectsWith('READ_FAILED', 'missing.jpeg'));
});

test('raw grayscale hook (for DICOM): 16-bit samples scaled by maxValue', async () => {
  const data = new Uint16Array(12 * 6).fill(4095);
  const img = await decodeRawGray({ width: 12, height: 6, data, maxValue: 4095 }, 4);
  assert.equal(img.kind, 'raw');
  assert.deepEqual([...img.pixels], new Array(16).fill(255));
  await assert.rejects(
    decodeRawGray({ width: 5, height: 5, data: new Uint8Array(3) }, 4),
    (e: unknown) => e instanceof DecodeError && e.code === 'INVALID_RAW',
  );
});
