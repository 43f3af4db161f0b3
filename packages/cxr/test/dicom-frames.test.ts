// NumberOfFrames against the pixel data. A file whose count disagrees with its pixel data used to be
// read anyway: a multi-frame file without the count was predicted from whichever frame came first, and
// one declaring more frames than it holds passed unnoticed. Each case that must be refused was
// accepted before the check; the valid layouts (several frames with the right count, one frame over
// several fragments, padding) still decode, and so do the shared sample files (dicom.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import sharp from 'sharp';
import { decodeDicom, DicomError, type DicomErrorCode, filmFormat } from '../src/data/dicom';
import { type Element, imageElements, rleFrame, TS, writeDicom } from './dicom-writer';
import { DICOM_DIR, XRAY_JPEG } from './serve-fixtures';

async function refused(file: Buffer, code: DicomErrorCode, message: RegExp): Promise<void> {
  await assert.rejects(decodeDicom(file), (e: unknown) => {
    assert.ok(e instanceof DicomError, `expected a DicomError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

const numberOfFrames = (n: number): Element => ({ tag: 0x00280008, vr: 'IS', value: String(n) });

/** Encapsulated pixel data (explicit VR little endian) with a basic offset table when `offsets` are given. */
function encapsulated(fragments: Uint8Array[], offsets: number[] = []): Buffer {
  const item = (data: Uint8Array) => {
    const h = Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0, 0, 0, 0]);
    h.writeUInt32LE(data.length, 4);
    return Buffer.concat([h, data]);
  };
  const table = Buffer.alloc(4 * offsets.length);
  offsets.forEach((o, i) => table.writeUInt32LE(o, 4 * i));
  const head = Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  const end = Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
  return Buffer.concat([head, item(table), ...fragments.map(item), end]);
}

/** An 8×8 8-bit image file whose pixel data is `pixelData`, in transfer syntax `ts`. */
function compressedFile(ts: string, pixelData: Buffer, frames?: number): Buffer {
  const extra = frames === undefined ? [] : [numberOfFrames(frames)];
  return Buffer.concat([
    writeDicom(imageElements({ rows: 8, columns: 8, bitsAllocated: 8, extra }), { transferSyntax: ts }),
    pixelData,
  ]);
}

/** Even-length JPEG frames of 8×8 flat grey at `levels`. */
async function jpegs(...levels: number[]): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const v of levels) {
    const j = await sharp(new Uint8Array(64).fill(v), { raw: { width: 8, height: 8, channels: 1 } })
      .jpeg({ quality: 100 })
      .toBuffer();
    out.push(j.length % 2 ? Buffer.concat([j, Buffer.from([0])]) : j);
  }
  return out;
}

test('native pixel data: too few bytes for the declared frames, or frames beyond them, are refused', async () => {
  const frame = Uint16Array.from({ length: 16 }, (_, i) => i * 100);
  const three = new Uint16Array(48);
  three.set(frame);
  // Declares 3 frames, holds 1: 4 × 4 × 1 × 2 × 3 = 96 bytes wanted, 32 there.
  await refused(
    writeDicom(imageElements({ rows: 4, columns: 4, pixels: frame, extra: [numberOfFrames(3)] })),
    'TRUNCATED',
    /is 32 bytes, but 4 rows × 4 columns × 1 samples × 2 bytes × 3 frame\(s\) \(NumberOfFrames \(0028,0008\)\) = 96/,
  );
  // A multi-frame file without its count (read as one frame before).
  await refused(
    writeDicom(imageElements({ rows: 4, columns: 4, pixels: three })),
    'CORRUPT',
    /pixel data \(7FE0,0010\) is 96 bytes, but .* × 1 frame\(s\).* = 32 bytes: it holds 3 whole frames/,
  );
  await refused(
    writeDicom(imageElements({ rows: 4, columns: 4, pixels: three, extra: [numberOfFrames(2)] })),
    'CORRUPT',
    /it holds 3 whole frames/,
  );
  // Colour: samples count.
  await refused(
    writeDicom(
      imageElements({
        rows: 2,
        columns: 2,
        bitsAllocated: 8,
        samples: 3,
        photometric: 'RGB',
        pixels: new Uint8Array(24),
      }),
    ),
    'CORRUPT',
    /2 rows × 2 columns × 3 samples × 1 bytes × 1 frame\(s\).* = 12 bytes: it holds 2 whole frames/,
  );
});

test('native pixel data: the right count, and padding to even length, still decode', async () => {
  const frame = Uint16Array.from({ length: 16 }, (_, i) => i * 100);
  const two = new Uint16Array(32);
  two.set(frame);
  two.fill(4000, 16);
  const single = await decodeDicom(writeDicom(imageElements({ rows: 4, columns: 4, pixels: frame })));
  const multi = await decodeDicom(
    writeDicom(imageElements({ rows: 4, columns: 4, pixels: two, extra: [numberOfFrames(2)] })),
  );
  assert.equal(multi.frames, 2);
  assert.deepEqual(multi.gray, single.gray, 'the first frame is read');
  // 3 × 3 8-bit: 9 bytes, written as 10 (the writer pads odd values).
  const odd = await decodeDicom(
    writeDicom(imageElements({ rows: 3, columns: 3, bitsAllocated: 8, pixels: new Uint8Array(9).fill(7) })),
  );
  assert.equal(odd.gray.length, 9);
});

const framesText = (value: string): Element => ({ tag: 0x00280008, vr: 'IS', value });

test('NumberOfFrames that is not a whole number of 1 or more is refused, not read as one frame', async () => {
  const frame = Uint16Array.from({ length: 16 }, (_, i) => i * 100);
  const two = new Uint16Array(32);
  const file = (count: Element, pixels: Uint16Array = frame) =>
    writeDicom(imageElements({ rows: 4, columns: 4, pixels, extra: [count] }));
  const bad = (value: string) =>
    new RegExp(`NumberOfFrames \\(0028,0008\\) is "${value}": not a whole number of frames of 1 or more`);
  // Each of these decoded before: parseInt read them as 2, 1, NaN, 0 or -2, and those as at least one frame.
  await refused(file(framesText('2abc'), two), 'CORRUPT', bad('2abc'));
  await refused(file(framesText('1.5')), 'CORRUPT', bad('1.5'));
  await refused(file(framesText('abc')), 'CORRUPT', bad('abc'));
  await refused(file(numberOfFrames(0)), 'CORRUPT', bad('0'));
  await refused(file(numberOfFrames(-2)), 'CORRUPT', bad('-2'));
  const [a, b] = await jpegs(60, 200);
  await refused(compressedFile(TS.jpegBaseline, encapsulated([a, b]), 0), 'CORRUPT', bad('0'));
  const encapsulatedText = Buffer.concat([
    writeDicom(imageElements({ rows: 8, columns: 8, bitsAllocated: 8, extra: [framesText('2x')] }), {
      transferSyntax: TS.jpegBaseline,
    }),
    encapsulated([a, b]),
  ]);
  await refused(encapsulatedText, 'CORRUPT', bad('2x'));
});

test('NumberOfFrames: missing or empty is one frame; surrounding spaces and a leading + are allowed', async () => {
  const frame = Uint16Array.from({ length: 16 }, (_, i) => i * 100);
  const three = new Uint16Array(48);
  three.set(frame);
  const file = (pixels: Uint16Array, extra: Element[]) =>
    writeDicom(imageElements({ rows: 4, columns: 4, pixels, extra }));
  const single = await decodeDicom(file(frame, []));
  assert.equal(single.frames, 1);
  const empty = await decodeDicom(file(frame, [framesText('')]));
  assert.equal(empty.frames, 1);
  assert.deepEqual(empty.gray, single.gray);
  const spaced = await decodeDicom(file(three, [framesText('  3 ')]));
  assert.equal(spaced.frames, 3);
  assert.deepEqual(spaced.gray, single.gray);
  assert.equal((await decodeDicom(file(three, [framesText('+3')]))).frames, 3);
});

test('encapsulated pixel data: offset table, fragments and codestreams against NumberOfFrames', async () => {
  const [a, b] = await jpegs(60, 200);
  // The basic offset table lists 2 frames; the header says 1 (absent).
  const table = [0, a.length + 8];
  await refused(
    compressedFile(TS.jpegBaseline, encapsulated([a, b], table)),
    'CORRUPT',
    /NumberOfFrames \(0028,0008\) is 1, but the encapsulated pixel data has a basic offset table of 2 frame\(s\)/,
  );
  // No table: two fragments that each open a JPEG codestream are two frames.
  await refused(
    compressedFile(TS.jpegBaseline, encapsulated([a, b])),
    'CORRUPT',
    /is 1, but the encapsulated pixel data holds 2 codestreams/,
  );
  // More frames declared than there are fragments.
  await refused(
    compressedFile(TS.jpegBaseline, encapsulated([a, b]), 3),
    'CORRUPT',
    /is 3, but the encapsulated pixel data has only 2 fragment\(s\)/,
  );
  // RLE: exactly one fragment per frame (PS3.5 A.4.2).
  const rle = rleFrame(new Uint8Array(64).fill(9));
  await refused(
    compressedFile(TS.rle, encapsulated([rle, rle])),
    'CORRUPT',
    /is 1, but the encapsulated pixel data has 2 fragments, and RLE takes exactly one per frame/,
  );
});

test('encapsulated pixel data: frames with their count, and one frame over several fragments, decode', async () => {
  const [a, b] = await jpegs(60, 200);
  const withTable = await decodeDicom(compressedFile(TS.jpegBaseline, encapsulated([a, b], [0, a.length + 8]), 2));
  assert.equal(withTable.frames, 2);
  assert.ok(Math.abs(withTable.gray[0] - 60) <= 2, `frame 0 read: ${withTable.gray[0]}`);
  const noTable = await decodeDicom(compressedFile(TS.jpegBaseline, encapsulated([a, b]), 2));
  assert.deepEqual(noTable.gray, withTable.gray);
  // One codestream cut in two fragments: only the first opens a codestream.
  const cut = (a.length >> 2) << 1;
  const split = await decodeDicom(compressedFile(TS.jpegBaseline, encapsulated([a.subarray(0, cut), a.subarray(cut)])));
  assert.deepEqual(split.gray, withTable.gray);
});

test('filmFormat: what the decoder reads, bare DICOM data sets included; text and other images not', () => {
  assert.equal(filmFormat(fs.readFileSync(XRAY_JPEG)), 'jpeg');
  assert.equal(filmFormat(fs.readFileSync(`${DICOM_DIR}/CR-MONO1-10-chest_nometa.dcm`)), 'dicom');
  assert.equal(filmFormat(fs.readFileSync(`${DICOM_DIR}/gdcm-CR-MONO1-10-chest.dcm`)), 'dicom');
  assert.equal(filmFormat(writeDicom(imageElements({ rows: 2, columns: 2 }), { partTen: false })), 'dicom');
  assert.equal(filmFormat(Buffer.from('PatientName,Finding\nDOE^JANE,pneumonia\n')), null);
  assert.equal(filmFormat(Buffer.from('GIF89a....................')), null);
});
