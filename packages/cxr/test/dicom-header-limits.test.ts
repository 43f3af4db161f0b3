// Header faults refused in DICOM's terms, not in the parser's or the engine's: sequences nested 50,000
// deep ran dicom-parser out of stack ("RangeError: Maximum call stack size exceeded" reached the client),
// native pixel data of undefined length was "basic offset table not found", and BitsStored 0 must be
// refused like BitsStored 40.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeDicom, DicomError, type DicomErrorCode } from '../src/data/dicom';
import { imageElements, TS, writeDicom } from './dicom-writer';

async function refusedAs(bytes: Uint8Array, code: DicomErrorCode, detail: RegExp): Promise<void> {
  try {
    await decodeDicom(bytes, { name: 'film.dcm' });
  } catch (e) {
    assert.ok(e instanceof DicomError, `expected a DicomError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.detail, detail);
    assert.doesNotMatch(e.detail, /RangeError|call stack|offset table not found/);
    return;
  }
  assert.fail('decoded');
}

const pixels = Uint16Array.from({ length: 64 }, (_, i) => i * 50);

/** (0040,0275) sequences, each in an item of the one before, `depth` deep, explicit VR, undefined lengths. */
function nested(depth: number): Buffer {
  const open = Buffer.from([0x40, 0x00, 0x75, 0x02, 0x53, 0x51, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  const item = Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff]);
  const close = Buffer.from([0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0, 0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
  return Buffer.concat([
    Buffer.concat(Array.from({ length: depth }, () => Buffer.concat([open, item]))),
    Buffer.concat(Array.from({ length: depth }, () => close)),
  ]);
}

/** An 8×8 image with `depth` nested sequences before its pixel data (0040,0275 sorts after group 0028). */
function withNesting(depth: number): Buffer {
  const file = writeDicom(imageElements({ rows: 8, columns: 8, pixels }));
  const at = file.indexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x57]));
  return Buffer.concat([file.subarray(0, at), nested(depth), file.subarray(at)]);
}

test('sequences nested past the limit are CORRUPT, saying so; a few levels read as usual', async () => {
  assert.equal((await decodeDicom(withNesting(8))).width, 8);
  const tooDeep = /^the data set nests sequences \(SQ\) more than 64 levels deep/;
  // Within the parser's stack, but past the limit.
  await refusedAs(withNesting(100), 'CORRUPT', tooDeep);
  // Past the parser's stack (it reads sequences by recursion).
  await refusedAs(withNesting(50_000), 'CORRUPT', tooDeep);
});

test('native pixel data of undefined length is CORRUPT, in DICOM terms', async () => {
  const head = writeDicom(imageElements({ rows: 8, columns: 8 }));
  const open = Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x57, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  const body = Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  await refusedAs(
    Buffer.concat([head, open, body]),
    'CORRUPT',
    new RegExp(
      '^the pixel data \\(7FE0,0010\\) has an undefined length \\(FFFFFFFF\\), but the transfer syntax, ' +
        '1\\.2\\.840\\.10008\\.1\\.2\\.1 \\(Explicit VR Little Endian\\), is native: ' +
        'native \\(uncompressed\\) pixel data must have a defined length',
    ),
  );
  // Under a compressed syntax, the same element lacks its basic offset table.
  const compressed = writeDicom(imageElements({ rows: 8, columns: 8 }), { transferSyntax: TS.rle });
  await refusedAs(
    Buffer.concat([compressed, open, body]),
    'CORRUPT',
    /^the compressed pixel data \(7FE0,0010\) does not begin with its basic offset table, an item \(FFFE,E000\)/,
  );
});

test('BitsStored 0 is CORRUPT like BitsStored 40, naming the tag and the range', async () => {
  for (const bitsStored of [0, 40]) {
    const els = imageElements({
      rows: 8,
      columns: 8,
      pixels,
      extra: [{ tag: 0x00280101, vr: 'US', value: [bitsStored] }],
    });
    await refusedAs(
      writeDicom(els),
      'CORRUPT',
      new RegExp(
        `^BitsStored \\(0028,0101\\) is ${bitsStored}: it must be from 1 to BitsAllocated \\(0028,0100\\), here 16$`,
      ),
    );
  }
});
