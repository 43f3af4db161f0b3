// JPEGs with an embedded ICC profile (all six NORMAL files of samples-fullres carry a gray one)
// are decoded to their stored sample values, as the data set was made (PIL convert('L') ignores
// profiles) and as the page decodes (colorSpaceConversion 'none'). Before, the server converted
// through the profile and the page did not: they disagreed by up to 0.03 in probability.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { decodeBuffer } from '../src/data/decode';
import { SHARED } from './ood-fixtures';

const NORMAL = path.join(SHARED, 'samples-fullres', 'NORMAL');
const skip = fs.existsSync(NORMAL) ? false : 'no samples-fullres';

/** The same JPEG without its ICC_PROFILE (APP2) segments: same compressed data, no profile. */
function stripIcc(jpeg: Buffer): Buffer {
  const parts: Buffer[] = [jpeg.subarray(0, 2)];
  let i = 2;
  while (i + 4 <= jpeg.length && jpeg[i] === 0xff) {
    const marker = jpeg[i + 1];
    if (marker === 0xda) break; // start of scan: the rest is entropy-coded data
    const len = jpeg.readUInt16BE(i + 2);
    const isIcc = marker === 0xe2 && jpeg.subarray(i + 4, i + 16).toString('latin1') === 'ICC_PROFILE\0';
    if (!isIcc) parts.push(jpeg.subarray(i, i + 2 + len));
    i += 2 + len;
  }
  parts.push(jpeg.subarray(i));
  return Buffer.concat(parts);
}

test('an embedded ICC profile does not change the decoded pixels', { skip }, async () => {
  const files = fs
    .readdirSync(NORMAL)
    .filter((f) => f.endsWith('.jpeg'))
    .sort();
  assert.equal(files.length, 6);
  for (const f of files) {
    const bytes = fs.readFileSync(path.join(NORMAL, f));
    const bare = stripIcc(bytes);
    assert.ok((await sharp(bytes).metadata()).icc, `${f} has a profile`);
    assert.equal((await sharp(bare).metadata()).icc, undefined, `${f} without it`);
    const a = await decodeBuffer(bytes, 160);
    const b = await decodeBuffer(bare, 160);
    assert.deepEqual(a.pixels, b.pixels, f);
  }
});
