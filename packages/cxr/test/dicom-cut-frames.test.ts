// Compressed frames cut short are TRUNCATED, in our words, whatever their codec: an RLE frame used to be
// padded with black and assessed, a lossless JPEG padded by its decoder, a JPEG 2000 one came back "0×0",
// a JPEG-LS one failed after seconds with a WASM pointer for a message ("(14777832)"), a baseline JPEG
// with libvips's "VipsJpeg:" prefix. Frames in another encoding than RLE under an RLE label are
// TRANSFER_SYNTAX_MISMATCH (a JPEG read as RLE "had 3774863615 segments").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as dicomParser from 'dicom-parser';
import sharp from 'sharp';
import { decodeDicom, DicomError, type DicomErrorCode } from '../src/data/dicom';
import { imageElements, rleFrame, TS, wasmEncode, writeDicom } from './dicom-writer';

async function refusal(bytes: Uint8Array): Promise<DicomError> {
  try {
    await decodeDicom(bytes, { name: 'film.dcm' });
  } catch (e) {
    assert.ok(e instanceof DicomError, `expected a DicomError, got ${String(e)}`);
    return e;
  }
  assert.fail('decoded');
}

async function refusedAs(bytes: Uint8Array, code: DicomErrorCode, detail: RegExp): Promise<DicomError> {
  const e = await refusal(bytes);
  assert.equal(e.code, code, e.message);
  assert.match(e.detail, detail);
  // Nothing of the codecs' own: no libvips prefix, no bare number from a WASM module.
  assert.doesNotMatch(e.detail, /vips|\(\d{4,}\)/i);
  return e;
}

const W = 64;
const H = 48;
const p8 = Uint8Array.from({ length: W * H }, (_, i) => ((i % W) * 3 + Math.floor(i / W) * 2) & 255);
const p16 = Uint16Array.from({ length: W * H }, (_, i) => ((i % W) * 97 + Math.floor(i / W) * 31) % 4096);

function file(ts: string, frame: Uint8Array, bits: 8 | 16): Buffer {
  const els = imageElements({ rows: H, columns: W, bitsAllocated: bits, bitsStored: bits === 8 ? 8 : 12 });
  return writeDicom(els, { transferSyntax: ts, frames: [frame] });
}

/** The first `share` of a frame, an even number of bytes (as a fragment is). */
const cut = (frame: Uint8Array, share: number) => frame.subarray(0, Math.floor(frame.length * share) & ~1);

test('an RLE frame cut short is TRUNCATED, not padded with black; a whole one still decodes', async () => {
  const whole = rleFrame(p8);
  assert.deepEqual([...(await decodeDicom(file(TS.rle, whole, 8))).gray], [...p8]);
  await refusedAs(
    file(TS.rle, cut(whole, 0.85), 8),
    'TRUNCATED',
    /^RLE segment 1 of 1 decodes to \d+ of the 3072 bytes a 64×48 frame needs: the compressed pixel data is cut short/,
  );
  // 16 bits: two segments (high bytes, then low). Cut inside the first, the second starts past the end.
  const frame16 = rleFrame(p16);
  await refusedAs(file(TS.rle, cut(frame16, 0.3), 16), 'TRUNCATED', /^RLE segment 1 of 2 decodes to \d+ of the 3072/);
  await refusedAs(file(TS.rle, cut(frame16, 0.8), 16), 'TRUNCATED', /^RLE segment 2 of 2 decodes to \d+ of the 3072/);
});

test('an RLE segment written short, with the next one after it, is CORRUPT', async () => {
  const frame = Buffer.from(rleFrame(p16));
  // The second segment starts 40 bytes early: the first loses its last literal bytes.
  frame.writeUInt32LE(frame.readUInt32LE(8) - 40, 8);
  await refusedAs(
    file(TS.rle, frame, 16),
    'CORRUPT',
    /^RLE segment 1 of 2 decodes to \d+ of .*: the segment is damaged$/,
  );
});

test('a JPEG, or a header with more segments than RLE has, under an RLE label: TRANSFER_SYNTAX_MISMATCH', async () => {
  const jpeg = await sharp(p8, { raw: { width: W, height: H, channels: 1 } })
    .jpeg()
    .toBuffer();
  await refusedAs(
    file(TS.rle, jpeg, 8),
    'TRANSFER_SYNTAX_MISMATCH',
    new RegExp(
      '^the pixel data is a JPEG baseline/extended \\(DCT\\) codestream, ' +
        'but the file declares transfer syntax 1\\.2\\.840\\.10008\\.1\\.2\\.5 \\(RLE Lossless\\)',
    ),
  );
  const notRle = Buffer.alloc(200, 0x41); // "AAAA": 1094795585 segments
  await refusedAs(
    file(TS.rle, notRle, 8),
    'TRANSFER_SYNTAX_MISMATCH',
    /does not start with an RLE header \(its first four bytes count 1094795585 segments, where RLE has 1 to 15\)/,
  );
});

test('JPEG-LS and JPEG 2000 frames cut short are TRUNCATED, before any decoding', async () => {
  for (const [kind, ts, name] of [
    ['charls', TS.jpegLSLossless, 'JPEG-LS Lossless'],
    ['openjpeg', TS.j2kLossless, 'JPEG 2000 Lossless'],
  ] as const) {
    const frame = await wasmEncode(kind, p16, W, H, 12);
    for (const share of [0.5, 0.95]) {
      await refusedAs(
        file(ts, cut(frame, share), 16),
        'TRUNCATED',
        new RegExp(
          `^the ${name} frame \\(\\d+ bytes\\) stops before its end marker \\(FFD9\\): ` +
            'the compressed pixel data is cut short',
        ),
      );
    }
  }
});

test('bytes that are no codestream at all, without an end marker too, are CORRUPT, not TRUNCATED', async () => {
  const junk = Buffer.alloc(200, 0x41);
  await refusedAs(file(TS.jpegLSLossless, junk, 16), 'CORRUPT', /^no JPEG-LS frame header in the pixel data$/);
  await refusedAs(file(TS.j2kLossless, junk, 16), 'CORRUPT', /^no JPEG 2000 codestream header/);
});

test('a damaged JPEG-LS frame that is whole is CORRUPT, without the codec pointer it threw', async () => {
  const frame = Buffer.from(await wasmEncode('charls', p16, W, H, 12));
  // Scramble the scan's data, keeping the headers and the end marker.
  const sos = frame.indexOf(Buffer.from([0xff, 0xda]));
  for (let i = sos + 40; i < frame.length - 2; i++) frame[i] = 0xff;
  await refusedAs(
    file(TS.jpegLSLossless, frame, 16),
    'CORRUPT',
    /^cannot decode JPEG-LS Lossless pixel data: the codestream is damaged$/,
  );
});

test('a baseline JPEG frame cut short is TRUNCATED, in our words', async () => {
  const jpeg = await sharp(p8, { raw: { width: W, height: H, channels: 1 } })
    .jpeg({ quality: 95 })
    .toBuffer();
  await refusedAs(
    file(TS.jpegBaseline, cut(jpeg, 0.8), 8),
    'TRUNCATED',
    /^the JPEG Baseline frame \(\d+ bytes\) stops/,
  );
});

test("a lossless JPEG frame cut short is TRUNCATED (its decoder pads it; the package's own sample)", async (t) => {
  let sample = '';
  try {
    sample = path.join(path.dirname(require.resolve('jpeg-lossless-decoder-js/package.json')), 'tests', 'data');
  } catch {}
  sample = path.join(sample, 'jpeg_lossless_sel1.dcm');
  if (!fs.existsSync(sample)) return t.skip('sample files not shipped');
  const bytes = fs.readFileSync(sample);
  const ds = dicomParser.parseDicom(bytes);
  const el = ds.elements.x7fe00010;
  const frame = dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, el.fragments!.length);
  const els = imageElements({ rows: 256, columns: 256, bitsAllocated: 16, bitsStored: 16 });
  const whole = writeDicom(els, { transferSyntax: '1.2.840.10008.1.2.4.57', frames: [frame] });
  assert.equal((await decodeDicom(whole)).width, 256);
  const short = writeDicom(els, { transferSyntax: '1.2.840.10008.1.2.4.57', frames: [cut(frame, 0.9)] });
  await refusedAs(short, 'TRUNCATED', /^the JPEG Lossless frame \(\d+ bytes\) stops before its end marker/);
});

test('zero padding after the end marker, however long, is not a cut (a fragment padded to a block)', async () => {
  for (const [kind, ts] of [
    ['charls', TS.jpegLSLossless],
    ['openjpeg', TS.j2kLossless],
  ] as const) {
    const frame = await wasmEncode(kind, p16, W, H, 12);
    const padded = Buffer.concat([Buffer.from(frame), Buffer.alloc(2000)]);
    const got = await decodeDicom(file(ts, padded, 16));
    assert.deepEqual([...got.gray], [...(await decodeDicom(file(ts, frame, 16))).gray], ts);
  }
});

test('a multi-frame file with no offset table: frame 0 is every fragment up to the next codestream', async () => {
  for (const [kind, ts] of [
    ['charls', TS.jpegLSLossless],
    ['openjpeg', TS.j2kLossless],
  ] as const) {
    const frame = await wasmEncode(kind, p16, W, H, 12);
    const half = Math.floor(frame.length / 2) & ~1;
    const els = [
      ...imageElements({ rows: H, columns: W, bitsAllocated: 16, bitsStored: 12 }),
      { tag: 0x00280008, vr: 'IS', value: '2' },
    ];
    // Frame 0 in three fragments, frame 1 in one: the offset table (the first item) is empty.
    const fragments = [frame.subarray(0, half), frame.subarray(half, half + 2), frame.subarray(half + 2), frame];
    const got = await decodeDicom(writeDicom(els, { transferSyntax: ts, frames: fragments }));
    assert.deepEqual([...got.gray], [...(await decodeDicom(file(ts, frame, 16))).gray], ts);
  }
});
