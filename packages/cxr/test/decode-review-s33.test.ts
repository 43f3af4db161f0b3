// Review of the DICOM decoders (session 33): films that decoded to the wrong picture, each with the case that
// showed it. Synthetic files come from the test writer (dicom-writer.ts), as the other DICOM tests make them.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { DicomError, decodeDicom } from '../src/data/dicom';
import { type Element, imageElements, rleFrame, rlePlanes, TS, writeDicom } from './dicom-writer';

const luma = (rgb: number[][]) => rgb.map(([r, g, b]) => Math.round(0.299 * r + 0.587 * g + 0.114 * b));

test('an RLE YBR_FULL film reads its Y as the gray, not its Y, Cb, Cr weighed as R, G, B', async () => {
  const y = Uint8Array.from([10, 20, 30, 40]);
  const chroma = Uint8Array.from([128, 128, 128, 128]);
  const spec = { rows: 2, columns: 2, bitsAllocated: 8, samples: 3, planar: 1 };
  const ybr = await decodeDicom(
    writeDicom(imageElements({ ...spec, photometric: 'YBR_FULL' }), {
      transferSyntax: TS.rle,
      frames: [rlePlanes([y, chroma, chroma])],
    }),
  );
  assert.deepEqual([...ybr.gray], [10, 20, 30, 40]); // was [93, 96, 99, 102]
  // RGB stays weighed as before.
  const rgb = [
    [255, 0, 0],
    [0, 255, 0],
    [0, 0, 255],
    [200, 200, 200],
  ];
  const planes = [0, 1, 2].map((c) => Uint8Array.from(rgb.map((p) => p[c])));
  const img = await decodeDicom(
    writeDicom(imageElements({ ...spec, photometric: 'RGB' }), { transferSyntax: TS.rle, frames: [rlePlanes(planes)] }),
  );
  assert.deepEqual([...img.gray], luma(rgb));
});

interface CharlsEncoder {
  getDecodedBuffer(info: object): Uint8Array;
  getEncodedBuffer(): Uint8Array;
  setInterleaveMode(mode: number): void;
  encode(): void;
  delete(): void;
}

test('a colour JPEG-LS film is read whatever its interleave mode (none, line or sample)', async () => {
  const lib = await (
    require('@cornerstonejs/codec-charls/wasmjs') as (m: object) => Promise<{ JpegLSEncoder: new () => CharlsEncoder }>
  )({ print() {}, printErr() {} });
  // 3×2, so that rows and planes are told apart.
  const rgb = [
    [255, 0, 0],
    [0, 255, 0],
    [0, 0, 255],
    [200, 200, 200],
    [10, 120, 250],
    [90, 40, 0],
  ];
  const [w, h] = [3, 2];
  const layouts: Record<number, number[]> = {
    0: [0, 1, 2].flatMap((c) => rgb.map((p) => p[c])),
    1: [0, 1].flatMap((y) => [0, 1, 2].flatMap((c) => rgb.slice(y * w, y * w + w).map((p) => p[c]))),
    2: rgb.flat(),
  };
  for (const mode of [0, 1, 2]) {
    const enc = new lib.JpegLSEncoder();
    let frame: Uint8Array;
    try {
      const input = enc.getDecodedBuffer({ width: w, height: h, bitsPerSample: 8, componentCount: 3, isSigned: false });
      enc.setInterleaveMode(mode);
      input.set(layouts[mode]);
      enc.encode();
      frame = enc.getEncodedBuffer().slice();
    } finally {
      enc.delete();
    }
    const img = await decodeDicom(
      writeDicom(imageElements({ rows: h, columns: w, bitsAllocated: 8, samples: 3, photometric: 'RGB', planar: 0 }), {
        transferSyntax: TS.jpegLSLossless,
        frames: [frame],
      }),
    );
    // Mode 0 gave [76, 89, 117, 172, ...]: planes read as pixels.
    assert.deepEqual([...img.gray], luma(rgb), `interleave mode ${mode}`);
  }
});

test('8-bit pixels written as OW in explicit big endian read as in little endian (odd sizes too)', async () => {
  for (const [rows, columns] of [
    [2, 2],
    [3, 3],
  ]) {
    const px = Array.from({ length: rows * columns }, (_, i) => 10 * (i + 1));
    // OW words with the first pixel in the low-order byte (PS3.5 8.1.1), padded to a whole word.
    const words = Uint16Array.from(
      { length: Math.ceil(px.length / 2) },
      (_, i) => px[2 * i] | ((px[2 * i + 1] ?? 0) << 8),
    );
    const els = imageElements({
      rows,
      columns,
      bitsAllocated: 8,
      extra: [{ tag: 0x7fe00010, vr: 'OW', value: words }],
    });
    for (const ts of [TS.explicitLE, TS.explicitBE]) {
      const img = await decodeDicom(writeDicom(els, { transferSyntax: ts }));
      // Big endian gave [20, 10, 40, 30]: every two pixels traded places.
      assert.deepEqual([...img.gray], px, `${rows}×${columns} ${ts}`);
    }
  }
});

test('a VOI LUT whose first mapped value is negative (SS) applies to unsigned pixels rescaled below 0', async () => {
  const lutItem = (vr: string): Element[] => [
    { tag: 0x00283002, vr, value: [4, -1024 & 0xffff, 12] },
    { tag: 0x00283006, vr: 'OW', value: Uint16Array.from([0, 1000, 3000, 4095]) },
  ];
  const expected = [0, 1000, 3000, 4095].map((v) => Math.round((v * 255) / 4095));
  // Explicit VR says SS; implicit VR says nothing, and a rescale that can go below 0 makes it SS (PS3.3 C.11.2.1.1).
  for (const [what, ts] of [
    ['explicit', TS.explicitLE],
    ['implicit', TS.implicitLE],
  ]) {
    const file = writeDicom(
      imageElements({
        rows: 2,
        columns: 2,
        pixels: Uint16Array.from([0, 1, 2, 3]),
        extra: [
          { tag: 0x00283010, vr: 'SQ', value: [lutItem('SS')] },
          { tag: 0x00281052, vr: 'DS', value: '-1024' },
          { tag: 0x00281053, vr: 'DS', value: '1' },
        ],
      }),
      { transferSyntax: ts },
    );
    const img = await decodeDicom(file);
    assert.equal(img.voi, 'voi-lut');
    assert.deepEqual([...img.gray], expected, what); // was [0, 0, 0, 0]
  }
});

test('a rescale slope that is no number, or 0, is refused as CORRUPT, not rendered as a black film', async () => {
  for (const slope of ['abc', '0']) {
    const file = writeDicom(
      imageElements({
        rows: 2,
        columns: 2,
        bitsStored: 12,
        pixels: Uint16Array.from([0, 1000, 2000, 4095]),
        extra: [{ tag: 0x00281053, vr: 'DS', value: slope }],
      }),
    );
    await assert.rejects(
      decodeDicom(file),
      (e: unknown) => e instanceof DicomError && e.code === 'CORRUPT' && /RescaleSlope \(0028,1053\)/.test(e.message),
      `slope ${slope}`,
    );
  }
  // A usable slope still rescales.
  const ok = await decodeDicom(
    writeDicom(
      imageElements({
        rows: 2,
        columns: 2,
        bitsStored: 12,
        pixels: Uint16Array.from([0, 1000, 2000, 4095]),
        extra: [{ tag: 0x00281053, vr: 'DS', value: '0.5' }],
      }),
    ),
  );
  assert.equal(ok.voi, 'min-max');
  assert.deepEqual([...ok.gray], [0, 62, 125, 255]);
});

test('compressed fragments under a native transfer syntax are refused, not read as a film of noise', async () => {
  const px = Uint8Array.from({ length: 64 * 64 }, (_, i) => i % 251);
  const explicit = writeDicom(imageElements({ rows: 64, columns: 64, bitsAllocated: 8 }), {
    transferSyntax: TS.explicitLE,
    frames: [rleFrame(px)],
  });
  // The same in implicit VR: the writer puts an explicit header on encapsulated pixel data; drop its VR bytes.
  const implicitWritten = writeDicom(imageElements({ rows: 64, columns: 64, bitsAllocated: 8 }), {
    transferSyntax: TS.implicitLE,
    frames: [rleFrame(px)],
  });
  const at = implicitWritten.indexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0]));
  assert.ok(at > 0);
  const implicit = Buffer.concat([implicitWritten.subarray(0, at + 4), implicitWritten.subarray(at + 8)]);
  for (const [what, file] of [
    ['explicit', explicit],
    ['implicit', implicit],
  ] as const) {
    // Both decoded to a 64×64 film starting [254, 255, 0, 224]: the item tag FFFE,E000 read as pixels.
    await assert.rejects(
      decodeDicom(file),
      (e: unknown) =>
        e instanceof DicomError && e.code === 'TRANSFER_SYNTAX_MISMATCH' && /encapsulated/.test(e.message),
      what,
    );
  }
});
