// DICOM films read as a viewer shows them (session 36): a Modality LUT Sequence before the window, signed pixels in
// an unsigned JPEG 2000 codestream, and DX films FOR PROCESSING (raw detector data) answered "cannot assess".
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeDicom } from '../src/data/dicom';
import { imageChecks } from '../src/explain/image_checks';
import { decodeInput } from '../src/predict/decode_input';
import { deriveVerdict } from '../src/predict/verdict';
import { DEFAULT_LIMITS } from '../src/data/decode';
import { type Element, imageElements, TS, wasmEncode, writeDicom } from './dicom-writer';

// OpenJPEG's default 5 decomposition levels need at least 32 px a side.
const W = 64;
const H = 48;
const N = W * H;

const window = (center: number, width: number): Element[] => [
  { tag: 0x00281050, vr: 'DS', value: String(center) },
  { tag: 0x00281051, vr: 'DS', value: String(width) },
];

test('a Modality LUT Sequence maps stored values before the window: the same film as its output stored', async () => {
  // Stored 0..255; the LUT turns them into 12-bit values, reversed (4000 down to 1450), and the window is given in
  // those units. A viewer shows the film the LUT makes: stored 0 white, stored 255 dark.
  const stored = Uint16Array.from({ length: N }, (_, i) => i % 256);
  const lutData = Uint16Array.from({ length: 256 }, (_, v) => 4000 - 10 * v);
  const modalityLut: Element = {
    tag: 0x00283000,
    vr: 'SQ',
    value: [
      [
        { tag: 0x00283002, vr: 'US', value: [256, 0, 12] },
        { tag: 0x00283004, vr: 'LO', value: 'US' },
        { tag: 0x00283006, vr: 'OW', value: lutData },
      ],
    ],
  };
  const extra = window(2700, 2600);
  for (const transferSyntax of [TS.explicitLE, TS.implicitLE]) {
    const withLut = await decodeDicom(
      writeDicom(
        imageElements({ rows: H, columns: W, bitsStored: 12, pixels: stored, extra: [...extra, modalityLut] }),
        {
          transferSyntax,
        },
      ),
    );
    const asOutput = await decodeDicom(
      writeDicom(imageElements({ rows: H, columns: W, bitsStored: 12, pixels: stored.map((v) => lutData[v]), extra }), {
        transferSyntax,
      }),
    );
    assert.equal(withLut.voi, 'window');
    assert.ok(
      withLut.gray[0] > 200 && withLut.gray[255] < 60,
      `stored 0 white, 255 dark: ${withLut.gray[0]}, ${withLut.gray[255]}`,
    );
    assert.deepEqual(withLut.gray, asOutput.gray, transferSyntax);
  }
});

test('a Modality LUT: values below its first input take its first entry, above its last its last', async () => {
  const stored = Uint16Array.from({ length: N }, (_, i) => i % 64);
  // 16 entries for the inputs 20..35, 0 to 3000; no VOI: the LUT's output is stretched min to max.
  const lutData = Uint16Array.from({ length: 16 }, (_, k) => k * 200);
  const extra: Element[] = [
    {
      tag: 0x00283000,
      vr: 'SQ',
      value: [
        [
          { tag: 0x00283002, vr: 'US', value: [16, 20, 12] },
          { tag: 0x00283006, vr: 'OW', value: lutData },
        ],
      ],
    },
  ];
  const img = await decodeDicom(
    writeDicom(imageElements({ rows: H, columns: W, bitsStored: 12, pixels: stored, extra })),
  );
  assert.equal(img.gray[0], 0, 'under the first input: the first entry (black)');
  assert.equal(img.gray[19], 0);
  assert.equal(img.gray[20], 0);
  assert.equal(img.gray[35], 255, 'the last entry: white');
  assert.equal(img.gray[63], 255, 'past the last input: the last entry');
  assert.equal(img.gray[27], Math.round((7 * 200 * 255) / 3000));
});

interface WasmEncoder {
  getDecodedBuffer(info: object): Uint8Array;
  getEncodedBuffer(): Uint8Array;
  encode(): void;
  delete(): void;
}

/** A JPEG 2000 codestream of `bits`-bit samples, its SIZ marked signed or not. */
async function j2k(samples: Uint16Array, bits: number, isSigned: boolean): Promise<Uint8Array> {
  const lib = await (
    require('@cornerstonejs/codec-openjpeg/wasmjs') as (m: object) => Promise<{
      J2KEncoder: new () => WasmEncoder;
    }>
  )({ print() {}, printErr() {} });
  const enc = new lib.J2KEncoder();
  try {
    const input = enc.getDecodedBuffer({
      width: W,
      height: H,
      bitsPerSample: bits,
      componentCount: 1,
      isSigned,
      isUsingColorTransform: false,
    });
    input.set(new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength));
    enc.encode();
    return enc.getEncodedBuffer().slice();
  } finally {
    enc.delete();
  }
}

test('signed pixels (PixelRepresentation 1) in JPEG 2000 and JPEG-LS: the same film as native signed', async () => {
  // −1000..1000 around a window at 0: negative values are the dark half of the film.
  const values = Int16Array.from({ length: N }, (_, i) => ((i * 37) % 2001) - 1000);
  for (const bits of [16, 12]) {
    const mask = 2 ** bits - 1;
    const spec = { rows: H, columns: W, bitsStored: bits, signed: true, extra: window(0, 2000) };
    const native = await decodeDicom(writeDicom(imageElements({ ...spec, pixels: values })));
    assert.ok(native.gray[0] < 10, `native: −1000 is black (${native.gray[0]})`);
    const twosComplement = Uint16Array.from(values, (v) => v & mask);
    const frames: [string, string, Uint8Array][] = [
      // An unsigned codestream of the two's complement bits (what some encoders write for signed pixels).
      ['JPEG 2000, unsigned codestream', TS.j2kLossless, await j2k(twosComplement, bits, false)],
      [
        'JPEG 2000, signed codestream',
        TS.j2kLossless,
        await j2k(
          Uint16Array.from(values, (v) => v & 0xffff),
          bits,
          true,
        ),
      ],
      ['JPEG-LS', TS.jpegLSLossless, await wasmEncode('charls', twosComplement, W, H, bits)],
    ];
    for (const [what, transferSyntax, frame] of frames) {
      const img = await decodeDicom(writeDicom(imageElements(spec), { transferSyntax, frames: [frame] }));
      assert.deepEqual(img.gray, native.gray, `${what}, ${bits} bits`);
    }
  }
});

/** A 12-bit DX chest film with a real chest-like range, and the header elements given. */
function dxFilm(extra: Element[]): Buffer {
  const pixels = Uint16Array.from({ length: 128 * 128 }, (_, i) => ((i % 128) * 29 + Math.floor(i / 128) * 13) % 4096);
  return writeDicom(
    imageElements({
      rows: 128,
      columns: 128,
      bitsStored: 12,
      pixels,
      extra: [{ tag: 0x00080060, vr: 'CS', value: 'DX' }, ...extra],
    }),
  );
}

const intent = (value: string): Element => ({ tag: 0x00080068, vr: 'CS', value });
const sopClass = (uid: string): Element => ({ tag: 0x00080016, vr: 'UI', value: uid });

test('a DX film FOR PROCESSING is "cannot assess" with its reason; FOR PRESENTATION and CR films are not', async () => {
  const cases: [string, Element[], boolean][] = [
    ['PresentationIntentType FOR PROCESSING', [intent('FOR PROCESSING')], true],
    ['the DX For Processing SOP class', [sopClass('1.2.840.10008.5.1.4.1.1.1.1.1')], true],
    [
      'PresentationIntentType FOR PRESENTATION',
      [intent('FOR PRESENTATION'), sopClass('1.2.840.10008.5.1.4.1.1.1.1')],
      false,
    ],
    ['no presentation intent (a CR film)', [], false],
  ];
  for (const [what, extra, forProcessing] of cases) {
    const bytes = dxFilm(extra);
    assert.equal((await decodeDicom(bytes)).forProcessing, forProcessing ? true : undefined, what);
    const img = await decodeInput(bytes, { size: 64, limits: DEFAULT_LIMITS, wantDisplay: false });
    const checks = imageChecks(img.facts);
    const verdict = deriveVerdict({ ood: null, checks, width: img.width, height: img.height, facts: img.facts });
    const reason = verdict.reasons.find((r) => r.code === 'FOR_PROCESSING');
    if (forProcessing) {
      assert.equal(verdict.status, 'cannot-assess', what);
      assert.ok(reason && /raw detector data/.test(reason.message) && /FOR PRESENTATION/.test(reason.message), what);
    } else {
      assert.equal(reason, undefined, what);
    }
  }
});
