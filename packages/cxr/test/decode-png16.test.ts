// 16-bit PNGs whose samples use fewer bits (data/png16.ts): a 12-bit film exported as its values (0..4095) in
// 16-bit samples, as many DICOM-to-PNG exports write it, is read as that film, not as a near-black square flagged
// blank; and the PNGs scaled to the full 16 bits (sBIT or not) are read exactly as before. Real PNG bytes, written
// here (IHDR, sBIT, IDAT, IEND) so that the sample values and the chunks are exactly those named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as zlib from 'node:zlib';
import { DEFAULT_LIMITS, decodeBuffer } from '../src/data/decode';
import { decodeInput } from '../src/predict/decode_input';
import { isPng16, pngSignificantBits } from '../src/data/png16';
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
  return png(
    bits,
    rgb ? [sample, sample, sample] : [sample],
    sbit === undefined ? undefined : Array(rgb ? 3 : 1).fill(sbit),
  );
}

/** A PNG of `bits` samples, grey (one channel) or RGB (three), each channel's from its own function. */
function png(bits: 8 | 16, channels: ((i: number) => number)[], sbit?: number[]): Buffer {
  const bytes = (bits / 8) * channels.length;
  const stride = 1 + W * bytes;
  const rows = Buffer.alloc(H * stride);
  for (let i = 0; i < W * H; i++) {
    const at = Math.floor(i / W) * stride + 1 + (i % W) * bytes;
    channels.forEach((sample, c) => {
      if (bits === 16) rows.writeUInt16BE(sample(i), at + 2 * c);
      else rows[at + c] = sample(i);
    });
  }
  return Buffer.concat([
    SIG,
    pngChunk('IHDR', Buffer.concat([u32(W, H), Buffer.from([bits, channels.length === 3 ? 2 : 0, 0, 0, 0])])),
    ...(sbit === undefined ? [] : [pngChunk('sBIT', Buffer.from(sbit))]),
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
  // One sample over 16383 and the film is full range: read as 16-bit, so a dark 16-bit film stays dark.
  const dark = (i: number) => (i === 0 ? 16384 : film[i] * 16 + (i % 3));
  const got = await decoded(greyPng(16, dark));
  assert.ok(Math.max(...got) <= 64, `a film whose brightest sample is 16384 of 65535 reads dark (${Math.max(...got)})`);
});

test('a 16-bit grey PNG of 14-bit values (no sBIT), as DR detectors export, reads as the 14-bit film', async () => {
  const fourteen = greyPng(16, (i) => up(film[i], 14));
  const want = await decoded(greyPng(8, (i) => down(up(film[i], 14), 14)));
  const got = await decoded(fourteen);
  assert.deepEqual(got, want);
  const codes = imageChecks({ pixels: got, size: SIZE }).map((c) => c.code);
  assert.deepEqual(
    codes,
    imageChecks({ pixels: want, size: SIZE }).map((c) => c.code),
  );
  assert.ok(!codes.includes('LOW_CONTRAST') && !codes.includes('BLANK'), codes.join());
});

test('a dark film scaled as the specification asks (sBIT 12, low bits zero) is not brightened 16 times', async () => {
  // 12-bit values of at most 255 (a dark film), shifted up by 4 with their top bits repeated below (none, here):
  // every sample fits 12 bits, but that is because the film is dark, not because it was written unscaled.
  const v = (i: number) => film[i];
  const scaled = (i: number) => (v(i) << 4) | (v(i) >> 8);
  const got = await decoded(greyPng(16, scaled, 12));
  // Read as 16-bit, as libvips reads it (each sample's high byte): the film's levels 1/16 as bright.
  assert.deepEqual(got, await decoded(greyPng(8, (i) => scaled(i) >> 8)));
  assert.ok(Math.max(...got) <= 16, `brightest level ${Math.max(...got)}`);
  // Without sBIT, alike: its samples fit 12 bits, but no low bit is set.
  assert.deepEqual(await decoded(greyPng(16, scaled)), got);
});

test('a dark 8-bit film scaled by bit replication (v·257, levels 0..15, no sBIT) stays dark', async () => {
  // Its samples fit 12 bits and have low bits set (257 = 0x0101), as an unscaled 12-bit film's do; but every one
  // is its top 8 bits repeated below, the specification's own scaling of 8 bits. Read as before: levels 0..15,
  // the near-blank film it is, not brightened to 240 (where the blank check no longer saw it).
  const level = (i: number) => film[i] >> 4;
  const got = await decoded(greyPng(16, (i) => level(i) * 257));
  assert.deepEqual(got, await decoded(greyPng(8, level)));
  assert.ok(Math.max(...got) <= 15, `brightest level ${Math.max(...got)}`);
  assert.ok(imageChecks({ pixels: got, size: SIZE }).some((c) => c.code === 'BLANK'));
});

test('12-bit values as they are with sBIT 12 are brightened to the 12-bit film', async () => {
  const want = await decoded(greyPng(8, (i) => down(up(film[i], 12), 12)));
  assert.deepEqual(await decoded(greyPng(16, (i) => up(film[i], 12), 12)), want);
});

test("a colour PNG's sBIT is read per channel: 12-bit red and green, 10-bit blue, each on its own scale", async () => {
  const r = (i: number) => up(film[i], 12);
  const b = (i: number) => up(255 - film[i], 10);
  const got = await decoded(png(16, [r, r, b], [12, 12, 10]));
  const want = await decoded(png(8, [(i) => down(r(i), 12), (i) => down(r(i), 12), (i) => down(b(i), 10)]));
  assert.deepEqual(got, want);
});

test('the page spots a 16-bit PNG from its IHDR (it leaves those to the server)', () => {
  assert.equal(isPng16(greyPng(16, (i) => film[i])), true);
  assert.equal(isPng16(greyPng(16, (i) => film[i], 12, true)), true);
  assert.equal(isPng16(greyPng(8, (i) => film[i])), false);
  assert.equal(isPng16(greyPng(16, (i) => film[i]).subarray(0, 24)), false, 'too short to say');
  assert.equal(isPng16(Buffer.from([0xff, 0xd8, 0xff, 0xe0, ...Array(40).fill(16)])), false, 'a JPEG');
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
