// The pixel pipeline of the DICOM decoder: rescale, VOI windows and LUTs, bit depths, photometric
// interpretations, and every transfer syntax and codec, on files written by test/dicom-writer.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { decodeDicom } from '../src/data/dicom';
import { type Element, imageElements, rleFrame, TS, wasmEncode, writeDicom } from './dicom-writer';

const meanAbsDiff = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

function ramp(n: number, lo: number, hi: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.round(lo + ((hi - lo) * i) / (n - 1)));
}

test('rescale slope/intercept then the first of several windows (LINEAR, PS3.3 C.11.2.1.2)', async () => {
  // Signed stored values; HU-like output = 2 * stored - 1000; window 40/400 (then 500/2000, ignored).
  const stored = ramp(64, -300, 900);
  const file = writeDicom(
    imageElements({
      rows: 8,
      columns: 8,
      signed: true,
      pixels: Int16Array.from(stored),
      extra: [
        { tag: 0x00281050, vr: 'DS', value: '40\\500' },
        { tag: 0x00281051, vr: 'DS', value: '400\\2000' },
        { tag: 0x00281052, vr: 'DS', value: '-1000' },
        { tag: 0x00281053, vr: 'DS', value: '2' },
      ],
    }),
  );
  const img = await decodeDicom(file);
  assert.equal(img.voi, 'window');
  const c = 40,
    w = 400;
  stored.forEach((s, i) => {
    const x = 2 * s - 1000;
    const y =
      x <= c - 0.5 - (w - 1) / 2
        ? 0
        : x > c - 0.5 + (w - 1) / 2
          ? 255
          : Math.round(((x - (c - 0.5)) / (w - 1) + 0.5) * 255);
    assert.equal(img.gray[i], y, `pixel ${i} (stored ${s})`);
  });
});

test('bits above BitsStored are ignored, and signed values are sign-extended from BitsStored', async () => {
  // 12 bits stored, junk in the top nibble; no window: min-max over the 12-bit values.
  const values = [0, 1000, 2047, 4095];
  const junk = Uint16Array.from(values, (v) => v | 0xa000);
  const img = await decodeDicom(writeDicom(imageElements({ rows: 2, columns: 2, bitsStored: 12, pixels: junk })));
  assert.equal(img.voi, 'min-max');
  assert.deepEqual(
    [...img.gray],
    values.map((v) => Math.round((v / 4095) * 255)),
  );
  // Signed 12-bit: 0x800 is -2048, 0x7ff is 2047.
  const signed = Uint16Array.from([0x800, 0xfff, 0x000, 0x7ff]);
  const s = await decodeDicom(
    writeDicom(imageElements({ rows: 2, columns: 2, bitsStored: 12, signed: true, pixels: signed })),
  );
  assert.deepEqual([...s.gray], [0, Math.round((2047 / 4095) * 255), Math.round((2048 / 4095) * 255), 255]);
});

test('a VOI LUT sequence is applied (and preferred to a window)', async () => {
  // LUT over stored values 100..103 -> 0, 1000, 3000, 4095 (12-bit output).
  const lutItem: Element[] = [
    { tag: 0x00283002, vr: 'US', value: [4, 100, 12] },
    { tag: 0x00283006, vr: 'OW', value: Uint16Array.from([0, 1000, 3000, 4095]) },
  ];
  const file = writeDicom(
    imageElements({
      rows: 2,
      columns: 3,
      pixels: Uint16Array.from([90, 100, 101, 102, 103, 200]),
      extra: [
        { tag: 0x00283010, vr: 'SQ', value: [lutItem] },
        { tag: 0x00281050, vr: 'DS', value: '150' },
        { tag: 0x00281051, vr: 'DS', value: '10' },
      ],
    }),
  );
  const img = await decodeDicom(file);
  assert.equal(img.voi, 'voi-lut');
  const s = 255 / 4095;
  assert.deepEqual([...img.gray], [0, 0, Math.round(1000 * s), Math.round(3000 * s), 255, 255]);
});

test('8-bit without VOI keeps its values; MONOCHROME1 inverts them', async () => {
  const px = Uint8Array.from([0, 10, 128, 255]);
  const m2 = await decodeDicom(writeDicom(imageElements({ rows: 2, columns: 2, bitsAllocated: 8, pixels: px })));
  assert.equal(m2.voi, 'full-range');
  assert.deepEqual([...m2.gray], [0, 10, 128, 255]);
  const m1 = await decodeDicom(
    writeDicom(imageElements({ rows: 2, columns: 2, bitsAllocated: 8, photometric: 'MONOCHROME1', pixels: px })),
  );
  assert.deepEqual([...m1.gray], [255, 245, 127, 0]);
});

test('explicit big endian, implicit little endian, deflated and bare data sets all give the same pixels', async () => {
  const px = Uint16Array.from(ramp(48, 0, 1023));
  const els = imageElements({ rows: 6, columns: 8, bitsStored: 10, pixels: px });
  const ref = await decodeDicom(writeDicom(els));
  for (const [what, file] of [
    ['big endian', writeDicom(els, { transferSyntax: TS.explicitBE })],
    ['implicit', writeDicom(els, { transferSyntax: TS.implicitLE })],
    ['deflated', writeDicom(els, { transferSyntax: TS.deflatedLE })],
    ['bare implicit', writeDicom(els, { transferSyntax: TS.implicitLE, partTen: false })],
    ['bare explicit', writeDicom(els, { partTen: false })],
  ] as const) {
    const img = await decodeDicom(file, { name: what });
    assert.deepEqual(img.gray, ref.gray, what);
  }
});

test('RGB (interleaved and planar) becomes luma; YBR_FULL keeps its Y', async () => {
  const rgb = [
    [255, 0, 0],
    [0, 255, 0],
    [0, 0, 255],
    [200, 200, 200],
  ];
  const interleaved = Uint8Array.from(rgb.flat());
  const planar = Uint8Array.from([0, 1, 2].flatMap((c) => rgb.map((p) => p[c])));
  const spec = { rows: 2, columns: 2, bitsAllocated: 8, samples: 3, photometric: 'RGB' };
  const a = await decodeDicom(writeDicom(imageElements({ ...spec, planar: 0, pixels: interleaved })));
  const b = await decodeDicom(writeDicom(imageElements({ ...spec, planar: 1, pixels: planar })));
  const luma = rgb.map(([r, g, bl]) => Math.round(0.299 * r + 0.587 * g + 0.114 * bl));
  assert.deepEqual([...a.gray], luma);
  assert.deepEqual([...b.gray], luma);
  const ybr = await decodeDicom(
    writeDicom(
      imageElements({
        ...spec,
        photometric: 'YBR_FULL',
        planar: 0,
        pixels: Uint8Array.from([10, 128, 128, 20, 128, 128, 30, 128, 128, 40, 128, 128]),
      }),
    ),
  );
  assert.deepEqual([...ybr.gray], [10, 20, 30, 40]);
});

test('RLE Lossless, 8 and 16 bits', async () => {
  const p8 = Uint8Array.from(ramp(30, 0, 255));
  const a = await decodeDicom(
    writeDicom(imageElements({ rows: 5, columns: 6, bitsAllocated: 8 }), {
      transferSyntax: TS.rle,
      frames: [rleFrame(p8)],
    }),
  );
  assert.deepEqual([...a.gray], [...p8]);
  const p16 = Uint16Array.from(ramp(30, 0, 4095));
  const b = await decodeDicom(
    writeDicom(imageElements({ rows: 5, columns: 6, bitsStored: 12 }), {
      transferSyntax: TS.rle,
      frames: [rleFrame(p16)],
    }),
  );
  const native = await decodeDicom(writeDicom(imageElements({ rows: 5, columns: 6, bitsStored: 12, pixels: p16 })));
  assert.deepEqual(b.gray, native.gray);
});

test('JPEG baseline frames decode (via sharp)', async () => {
  const px = Uint8Array.from({ length: 64 * 48 }, (_, i) => (i % 64) * 4);
  const jpeg = await sharp(px, { raw: { width: 64, height: 48, channels: 1 } })
    .jpeg({ quality: 95 })
    .toBuffer();
  const img = await decodeDicom(
    writeDicom(imageElements({ rows: 48, columns: 64, bitsAllocated: 8 }), {
      transferSyntax: TS.jpegBaseline,
      frames: [jpeg],
    }),
  );
  assert.ok(meanAbsDiff(img.gray, px) < 3);
});

test('JPEG-LS and JPEG 2000 lossless frames decode to the native pixels', async () => {
  // OpenJPEG's default 5 decomposition levels need at least 32 px a side.
  const w = 64,
    h = 48;
  const px = Uint16Array.from({ length: w * h }, (_, i) => ((i % w) * 97 + Math.floor(i / w) * 31) % 4096);
  const native = await decodeDicom(writeDicom(imageElements({ rows: h, columns: w, bitsStored: 12, pixels: px })));
  for (const [kind, ts] of [
    ['charls', TS.jpegLSLossless],
    ['openjpeg', TS.j2kLossless],
  ] as const) {
    const frame = await wasmEncode(kind, px, w, h, 12);
    const img = await decodeDicom(
      writeDicom(imageElements({ rows: h, columns: w, bitsStored: 12 }), { transferSyntax: ts, frames: [frame] }),
      { name: kind },
    );
    assert.deepEqual(img.gray, native.gray, kind);
  }
});

test("JPEG lossless frames decode (the decoder package's own sample files)", async (t) => {
  let dir: string;
  try {
    dir = path.join(path.dirname(require.resolve('jpeg-lossless-decoder-js/package.json')), 'tests', 'data');
  } catch {
    dir = '';
  }
  if (!dir || !fs.existsSync(path.join(dir, 'jpeg_lossless_sel1.dcm'))) return t.skip('sample files not shipped');
  const sel1 = await decodeDicom(fs.readFileSync(path.join(dir, 'jpeg_lossless_sel1.dcm')));
  assert.equal(sel1.transferSyntax, '1.2.840.10008.1.2.4.57');
  assert.equal(sel1.width, 256);
  // Every predictor selection value encodes the same image losslessly.
  for (const sel of [2, 3, 7]) {
    const other = await decodeDicom(fs.readFileSync(path.join(dir, `jpeg_lossless_sel${sel}.dcm`)));
    assert.deepEqual(other.gray, sel1.gray, `selection ${sel}`);
  }
});
