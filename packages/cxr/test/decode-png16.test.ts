// 16-bit PNGs whose samples use fewer bits (data/png16.ts): a 12-bit film exported as its values (0..4095) in
// 16-bit samples, as many DICOM-to-PNG exports write it, is read as that film, not as a near-black square flagged
// blank; and the PNGs scaled to the full 16 bits (sBIT or not) are read exactly as before. Real PNG bytes, written
// here (IHDR, sBIT, IDAT, IEND) so that the sample values and the chunks are exactly those named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as zlib from 'node:zlib';
import { DEFAULT_LIMITS, decodeBuffer } from '../src/data/decode';
import { decodeInput } from '../src/predict/decode_input';
import { pngSignificantBits } from '../src/data/png16';
import { imageChecks } from '../src/explain/image_checks';
import { pngChunk } from './image-bytes';

const W = 96;
const H = 80;
const SIZE = 64;
/** A film-like 8-bit picture: a lit chest-shaped oval over a darker field, with ribs and a little noise. */
const film = Array.from({ length: W * H }, (_, i) => {
  const x = i % W;
  const y = Math.floor(i / W);
  const inside = ((x - W / 2) / (W * 0.4)) ** 2 + ((y - H / 2) / (H * 0.45)) ** 2 < 1;
  return Math.min(255, (inside ? 120 : 20) + (y % 9 < 3 ? 60 : 0) + ((i * 7919) % 23) + Math.floor(x / 2));
});

const SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const u32 = (...v: number[]) =>
  Buffer.concat(v.map((n) => Buffer.from([n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255])));

/**
 * A PNG of `bits` (8 or 16) samples, grey or (`rgb`) the same value in R, G and B; `sbit` (the significant bits
 * of each channel) written where given.
 */
function greyPng(bits: 8 | 16, sample: (i: number) => number, sbit?: number, rgb = false): Buffer {
  const bytes = (bits / 8) * (rgb ? 3 : 1);
  const stride = 1 + W * bytes;
  const rows = Buffer.alloc(H * stride);
  for (let i = 0; i < W * H; i++) {
    const at = Math.floor(i / W) * stride + 1 + (i % W) * bytes;
    for (let c = 0; c < (rgb ? 3 : 1); c++)
      if (bits === 16) rows.writeUInt16BE(sample(i), at + 2 * c);
      else rows[at + c] = sample(i);
  }
  return Buffer.concat([
    SIG,
    pngChunk('IHDR', Buffer.concat([u32(W, H), Buffer.from([bits, rgb ? 2 : 0, 0, 0, 0])])),
    ...(sbit === undefined ? [] : [pngChunk('sBIT', Buffer.alloc(rgb ? 3 : 1, sbit))]),
    pngChunk('IDAT', zlib.deflateSync(rows)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The film's 8-bit level v as a `bits`-bit value, and that value back to 8 bits as it is to be read. */
const up = (v: number, bits: number) => Math.round((v * (2 ** bits - 1)) / 255);
const down = (v: number, bits: number) => Math.round((v * 255) / (2 ** bits - 1));

const decoded = async (png: Buffer) => (await decodeBuffer(png, SIZE)).pixels;

test('a 16-bit grey PNG of 12-bit values (no sBIT) is read as the 12-bit film, not flagged blank', async () => {
  const twelve = greyPng(16, (i) => up(film[i], 12));
  const want = await decoded(greyPng(8, (i) => down(up(film[i], 12), 12)));
  const got = await decoded(twelve);
  assert.deepEqual(got, want);
  assert.deepEqual(
    imageChecks({ pixels: got, size: SIZE }).map((c) => c.code),
    imageChecks({ pixels: want, size: SIZE }).map((c) => c.code),
  );
  assert.ok(!imageChecks({ pixels: got, size: SIZE }).some((c) => c.code === 'BLANK'));
});

test('an sBIT chunk names the bits of unscaled samples (10 here); 12-bit values with sBIT 12 read alike', async () => {
  const ten = greyPng(16, (i) => up(film[i], 10), 10);
  assert.deepEqual(pngSignificantBits(ten), [10]);
  assert.deepEqual(await decoded(ten), await decoded(greyPng(8, (i) => down(up(film[i], 10), 10))));
  const twelve = greyPng(16, (i) => up(film[i], 12), 12);
  assert.deepEqual(await decoded(twelve), await decoded(greyPng(16, (i) => up(film[i], 12))));
  // A colour PNG is read so only where its sBIT says: then as the grey film; without it, as 16-bit (dark).
  const rgb = await decoded(greyPng(16, (i) => up(film[i], 12), 12, true));
  assert.deepEqual(rgb, await decoded(twelve));
  assert.ok(Math.max(...(await decoded(greyPng(16, (i) => up(film[i], 12), undefined, true)))) <= 16);
});

test('full-range 16-bit PNGs, and those scaled as the PNG specification asks (sBIT 12), read as before', async () => {
  const eight = await decoded(greyPng(8, (i) => film[i]));
  // v·257 is v in 16 bits exactly: the film it was made from, as libvips reads every 16-bit PNG.
  assert.deepEqual(await decoded(greyPng(16, (i) => film[i] * 257)), eight);
  // 12-bit values shifted up and their top bits repeated below (the specification's scaling): sBIT is a note
  // then, and the file reads as it does without it.
  const scaled = (i: number) => {
    const v = up(film[i], 12);
    return (v << 4) | (v >> 8);
  };
  assert.deepEqual(await decoded(greyPng(16, scaled, 12)), await decoded(greyPng(16, scaled)));
  // One sample over 4095 and the film is full range: read as 16-bit, so a dark 16-bit film stays dark.
  const dark = (i: number) => (i === 0 ? 4096 : film[i] * 16);
  const got = await decoded(greyPng(16, dark));
  assert.ok(Math.max(...got) <= 16, `a film whose brightest sample is 4096 of 65535 reads dark (${Math.max(...got)})`);
});

test("the page's display copy of a 12-bit film is the film the model read, not near-black", async () => {
  // predict/decode_input.ts makes the heat map's film beside the model input; read by sharp alone, the 12-bit
  // values would show as levels 0..15 under the heat map while the model answered on the film.
  const req = { size: SIZE, limits: DEFAULT_LIMITS, wantDisplay: true };
  const twelve = await decodeInput(
    greyPng(16, (i) => up(film[i], 12)),
    req,
  );
  const eight = await decodeInput(
    greyPng(8, (i) => down(up(film[i], 12), 12)),
    req,
  );
  assert.ok(twelve.display && eight.display);
  assert.equal(twelve.display.width, eight.display.width);
  const diff = twelve.display.gray.reduce(
    (m: number, v: number, i: number) => Math.max(m, Math.abs(v - eight.display!.gray[i])),
    0,
  );
  assert.ok(diff <= 1, `display differs from the 8-bit film's by up to ${diff} levels`);
  // A full-range 16-bit film keeps sharp's own reading.
  const full = await decodeInput(
    greyPng(16, (i) => film[i] * 257),
    req,
  );
  const full8 = await decodeInput(
    greyPng(8, (i) => film[i]),
    req,
  );
  assert.deepEqual([...full.display!.gray], [...full8.display!.gray]);
});
