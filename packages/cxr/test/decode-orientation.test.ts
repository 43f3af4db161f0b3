// EXIF orientation (phones and some exporters store the pixels sideways and say so in the header): the film is
// read as every viewer shows it, upright, by the model, the image checks, the heat map and the thumbnail, and
// its width and height are the upright ones. A film whose pixels really are turned on its side (no EXIF) fails
// the inverted check, whose message says it may be turned, not only a negative.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { DEFAULT_LIMITS, decodeBuffer } from '../src/data/decode';
import { imageChecks } from '../src/explain/image_checks';
import { decodeInput } from '../src/predict/decode_input';
import { SHARED } from './ood-fixtures';

const FILM = path.join(SHARED, 'samples-fullres', 'PNEUMONIA', 'person1073_bacteria_3008.jpeg');
const skip = fs.existsSync(FILM) ? false : 'no samples-fullres';
const SIZE = 224;

const meanAbs = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

test('a film stored sideways with EXIF orientation 6 is read upright, as viewers show it', { skip }, async () => {
  const upright = await sharp(FILM).greyscale().jpeg({ quality: 95 }).toBuffer();
  const meta = await sharp(upright).metadata();
  // Stored turned a quarter left; orientation 6 tells a viewer to turn it a quarter right to show it.
  const phone = await sharp(upright).rotate(-90).withMetadata({ orientation: 6 }).jpeg({ quality: 95 }).toBuffer();
  const stored = await sharp(phone).metadata();
  assert.deepEqual([stored.width, stored.height, stored.orientation], [meta.height, meta.width, 6]);

  const want = await decodeBuffer(upright, SIZE);
  const got = await decodeBuffer(phone, SIZE);
  assert.deepEqual([got.width, got.height], [meta.width, meta.height], 'the upright width and height');
  // The same film, up to a second JPEG encoding; read sideways it is a different picture altogether.
  assert.ok(meanAbs(got.pixels, want.pixels) < 2, `mean difference ${meanAbs(got.pixels, want.pixels)}`);
  const sideways = await decodeBuffer(await sharp(upright).rotate(-90).jpeg({ quality: 95 }).toBuffer(), SIZE);
  assert.ok(meanAbs(sideways.pixels, want.pixels) > 10);
  assert.deepEqual(
    imageChecks({ pixels: got.pixels, size: SIZE }).map((c) => c.code),
    imageChecks({ pixels: want.pixels, size: SIZE }).map((c) => c.code),
  );

  // The display copy (heat map, thumbnail) is upright too.
  const input = await decodeInput(phone, { size: SIZE, limits: DEFAULT_LIMITS, wantDisplay: true });
  assert.deepEqual([input.width, input.height], [meta.width, meta.height]);
  const display = input.display!;
  assert.equal(Math.sign(display.width - display.height), Math.sign(meta.width! - meta.height!));
});

test('a film turned on its side (no EXIF) fails the inverted check, which says it may be turned', {
  skip,
}, async () => {
  const turned = await decodeBuffer(await sharp(FILM).rotate(90).jpeg({ quality: 95 }).toBuffer(), SIZE);
  const inverted = imageChecks({ pixels: turned.pixels, size: SIZE }).find((c) => c.code === 'INVERTED');
  assert.ok(inverted, 'the turned film fails the inverted check');
  assert.match(inverted.message, /^looks inverted \(a negative\), turned on its side, or has no chest layout: /);
  assert.match(inverted.message, /the sides of the image, where an upright film has its lungs, are not darker/);
  // Upright, the same film passes it.
  const upright = await decodeBuffer(fs.readFileSync(FILM), SIZE);
  assert.ok(!imageChecks({ pixels: upright.pixels, size: SIZE }).some((c) => c.code === 'INVERTED'));
});
