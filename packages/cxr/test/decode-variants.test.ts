// The image files people really have, made at test time from one validation film (never stored in the
// repository): every lossless re-encoding reads as the same film, every lossy one as nearly the same, and what
// cannot be read as the film a viewer shows is refused as unsupported (415), never as "corrupt" (which says the
// file is damaged) and never read as another picture. Without ../shared the film is a synthetic one made with
// sharp: the refusals are decided from headers, so they run everywhere; only the comparisons of re-encodings
// with the real film need it.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import { DEFAULT_LIMITS, DecodeError, decodeBuffer, sniffFormat, unsupportedFormat } from '../src/data/decode';
import { jpegFrameHeader, jpegUnsupported } from '../src/data/image_header';
import { decodeInput } from '../src/predict/decode_input';
import { InputError } from '../src/predict/errors';
import { CHEST_XRAY, needsData } from './shared-data';
import { pngChunk as chunk, patchSof, sofAt } from './image-bytes';

const FILM = path.join(CHEST_XRAY, 'val', 'PNEUMONIA', 'person1946_bacteria_4874.jpeg');
/** For the comparisons with the real film only. */
const skip = needsData(FILM);
const SIZE = 224;

/** A gray baseline JPEG with a film's structure (a gradient, a brighter ellipse, fine texture), not a real film. */
async function syntheticFilm(): Promise<Buffer> {
  const [w, h] = [256, 256]; // square and gray like the real film (224×224), so no test resamples it
  const px = Buffer.alloc(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const inside = ((x - w / 2) / (w / 3)) ** 2 + ((y - h / 2) / (h / 3)) ** 2 < 1;
      px[y * w + x] = Math.min(255, Math.round(40 + (150 * y) / h + (inside ? 50 : 0) + ((x * 7 + y * 13) % 11)));
    }
  return sharp(px, { raw: { width: w, height: h, channels: 1 } })
    .toColourspace('b-w')
    .jpeg({ quality: 95 })
    .toBuffer();
}

let jpeg: Buffer;
let gray: Buffer;
let W = 0;
let H = 0;
let want: Uint8Array;

before(async () => {
  jpeg = skip ? await syntheticFilm() : fs.readFileSync(FILM);
  const { data, info } = await sharp(jpeg).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  [gray, W, H] = [data, info.width, info.height];
  want = (await decodeBuffer(jpeg, SIZE)).pixels;
});

// ---- PNG and JPEG written or patched by hand, where the encoders cannot make the variant -------------------

const SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const u32 = (...v: number[]) =>
  Buffer.concat(v.map((n) => Buffer.from([n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255])));

function ihdr(bits: number, colourType: number): Buffer {
  return chunk('IHDR', Buffer.concat([u32(W, H), Buffer.from([bits, colourType, 0, 0, 0])]));
}

/** A 16-bit PNG of the film: `sample(i, c)` is channel c of pixel i. */
function png16(colourType: number, channels: number, sample: (i: number, c: number) => number): Buffer {
  const stride = 1 + W * channels * 2;
  const rows = Buffer.alloc(H * stride);
  for (let i = 0; i < W * H; i++) {
    const at = Math.floor(i / W) * stride + 1 + (i % W) * channels * 2;
    for (let c = 0; c < channels; c++) rows.writeUInt16BE(sample(i, c), at + 2 * c);
  }
  return Buffer.concat([
    SIG,
    ihdr(16, colourType),
    chunk('IDAT', zlib.deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The 8-bit gray PNG of the film with `before` chunks after IHDR and `after` chunks after its IDAT. */
function png8(before: Buffer[] = [], after: Buffer[] = []): Buffer {
  const rows = Buffer.alloc(H * (W + 1));
  for (let y = 0; y < H; y++) gray.copy(rows, y * (W + 1) + 1, y * W, (y + 1) * W);
  const idat = chunk('IDAT', zlib.deflateSync(rows));
  return Buffer.concat([SIG, ihdr(8, 0), ...before, idat, ...after, chunk('IEND', Buffer.alloc(0))]);
}

/** APNG control chunks: acTL (frames), fcTL (a full-size frame), fdAT (a black frame). */
const acTL = (frames: number) => chunk('acTL', u32(frames, 0));
const fcTL = (seq: number) => chunk('fcTL', Buffer.concat([u32(seq, W, H, 0, 0), Buffer.from([0, 1, 0, 1, 0, 0])]));
const fdAT = (seq: number) => chunk('fdAT', Buffer.concat([u32(seq), zlib.deflateSync(Buffer.alloc(H * (W + 1)))]));

/** The JPEG with a DHP segment (a hierarchical JPEG's, the frame header's fields) right after SOI. */
function withDhp(src: Buffer): Buffer {
  const i = sofAt(src);
  const dhp = Buffer.from(src.subarray(i, i + 2 + src.readUInt16BE(i + 2)));
  dhp[1] = 0xde;
  return Buffer.concat([src.subarray(0, 2), dhp, src.subarray(2)]);
}

const meanAbs = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

async function refusal(buf: Buffer): Promise<DecodeError> {
  try {
    await decodeBuffer(buf, SIZE, { name: 'f' });
  } catch (err) {
    assert.ok(err instanceof DecodeError, String(err));
    return err;
  }
  assert.fail('decoded, expected a refusal');
}

// ---- read as the film --------------------------------------------------------------------------------------

test('lossless re-encodings of a film read as exactly the same pixels', { skip }, async () => {
  const raw = (channels: 1 | 2 | 3 | 4, data: Buffer) => sharp(data, { raw: { width: W, height: H, channels } });
  const withAlpha = Buffer.alloc(W * H * 2);
  for (let i = 0; i < W * H; i++) [withAlpha[2 * i], withAlpha[2 * i + 1]] = [gray[i], 255];
  const gama = chunk('gAMA', u32(45455));
  const variants: Record<string, Buffer> = {
    'gray 16-bit PNG': png16(0, 1, (i) => gray[i] * 257),
    'RGB 16-bit PNG': png16(2, 3, (i) => gray[i] * 257),
    'gray+alpha 16-bit PNG, opaque': png16(4, 2, (i, c) => (c ? 65535 : gray[i] * 257)),
    'gray+alpha PNG, opaque': await raw(2, withAlpha).png().toBuffer(),
    'palette PNG': await raw(1, gray).png({ palette: true, colours: 256, dither: 0 }).toBuffer(),
    'interlaced PNG': await raw(1, gray).png({ progressive: true }).toBuffer(),
    'PNG with gAMA': png8([gama]),
    'PNG with an iCCP profile': await raw(1, gray).withIccProfile('p3').png().toBuffer(),
    'PNG stored sideways, eXIf orientation 6': await raw(1, gray)
      .rotate(-90)
      .withMetadata({ orientation: 6 })
      .png()
      .toBuffer(),
    'one-frame APNG, the default image its frame': png8([acTL(1), fcTL(0)]),
    'a JPEG named .png': jpeg,
  };
  for (const [name, buf] of Object.entries(variants)) {
    const got = await decodeBuffer(buf, SIZE, { name });
    assert.deepEqual([got.width, got.height], [W, H], name);
    assert.equal(meanAbs(got.pixels, want), 0, name);
  }
});

test('lossy re-encodings read as nearly the same film, upright whatever the EXIF orientation', { skip }, async () => {
  const q95 = await sharp(jpeg).jpeg({ quality: 95 }).toBuffer();
  const variants: Record<string, Buffer> = {
    'progressive JPEG': await sharp(jpeg).jpeg({ quality: 95, progressive: true }).toBuffer(),
    'EXIF orientation 6': await sharp(q95)
      .rotate(-90)
      .withMetadata({ orientation: 6 })
      .jpeg({ quality: 95 })
      .toBuffer(),
    'EXIF orientation 8': await sharp(q95).rotate(90).withMetadata({ orientation: 8 }).jpeg({ quality: 95 }).toBuffer(),
    'EXIF orientation 3': await sharp(q95)
      .rotate(180)
      .withMetadata({ orientation: 3 })
      .jpeg({ quality: 95 })
      .toBuffer(),
    'EXIF orientation 2 (mirrored)': await sharp(q95)
      .flop()
      .withMetadata({ orientation: 2 })
      .jpeg({ quality: 95 })
      .toBuffer(),
  };
  for (const [name, buf] of Object.entries(variants)) {
    const got = await decodeBuffer(buf, SIZE, { name });
    assert.ok(meanAbs(got.pixels, want) < 1, `${name}: mean difference ${meanAbs(got.pixels, want)}`);
  }
  // Read as stored (sideways), the same film is another picture: the bound above tells the two apart.
  const sideways = await decodeBuffer(await sharp(q95).rotate(-90).jpeg({ quality: 95 }).toBuffer(), SIZE);
  assert.ok(meanAbs(sideways.pixels, want) > 10);
});

test('a transparent border reads black (composited over black), the film inside it unchanged', async () => {
  const B = 40;
  const border = (i: number) => i % W < B || i < B * W || i % W >= W - B || i >= (H - B) * W;
  const rgba = png16(6, 4, (i, c) => (c === 3 ? (border(i) ? 0 : 65535) : gray[i] * 257));
  const got = (await decodeBuffer(rgba, W)).pixels; // at the film's own size: no resampling across the edge
  const film = (await decodeBuffer(jpeg, W)).pixels;
  for (let i = 0; i < W * H; i++) assert.equal(got[i], border(i) ? 0 : film[i], `pixel ${i}`);
});

// ---- refused as unsupported, saying what is read ------------------------------------------------------------

test('a 12-bit, lossless or hierarchical JPEG is refused as unsupported, not as corrupt', async () => {
  const cases: [Buffer, RegExp][] = [
    [patchSof(jpeg, 0xc1, 12), /^12-bit JPEG is not supported: only 8-bit baseline, progressive or arithmetic/],
    [patchSof(jpeg, 0xc3, 8), /^lossless JPEG is not supported/],
    [patchSof(jpeg, 0xc5, 8), /^hierarchical sequential JPEG is not supported/],
    [withDhp(jpeg), /^hierarchical JPEG is not supported/],
  ];
  for (const [buf, message] of cases) {
    const err = await refusal(buf);
    assert.equal(err.code, 'UNSUPPORTED_FORMAT', err.message);
    assert.match(err.detail, message);
    assert.match(err.detail, /export the film as PNG/);
  }
  // Arithmetic coding and progressive JPEGs pass the header check (libjpeg reads them).
  assert.equal(jpegUnsupported(patchSof(jpeg, 0xc9, 8)), undefined);
  assert.equal(jpegUnsupported(patchSof(jpeg, 0xca, 8)), undefined);
  assert.equal(jpegUnsupported(jpeg), undefined);
  // The predictor (CLI and HTTP) passes the refusal on with its code (the server answers 415).
  await assert.rejects(
    decodeInput(patchSof(jpeg, 0xc1, 12), { size: SIZE, limits: DEFAULT_LIMITS, wantDisplay: false }),
    (e: unknown) =>
      e instanceof Error && (e as { code?: string }).code === 'UNSUPPORTED_FORMAT' && /12-bit/.test(e.message),
  );
});

test('an animated PNG is refused: which of its frames is the film is not known', async () => {
  const twoFrames = png8([acTL(2), fcTL(0)], [fcTL(1), fdAT(2)]);
  const err = await refusal(twoFrames);
  assert.equal(err.code, 'UNSUPPORTED_FORMAT');
  assert.equal(err.detail, 'animated PNG (2 frames) is not supported: export the one film as a still PNG or JPEG');
  // A one-frame animation whose frame is not the default image: a viewer shows the frame, the decoder the default.
  const hidden = await refusal(png8([acTL(1)], [fcTL(0), fdAT(1)]));
  assert.equal(hidden.code, 'UNSUPPORTED_FORMAT');
  assert.match(hidden.detail, /^animated PNG whose shown frame is not its default image is not supported/);
});

test('a phone photo in HEIC or AVIF is named, with the formats that are read', async () => {
  const avif = await sharp(jpeg).avif().toBuffer();
  const heic = Buffer.from(avif);
  heic.write('heic', 8, 'latin1'); // the iPhone camera's brand ('ftyp' box); sharp cannot write HEVC itself
  assert.equal(sniffFormat(avif), 'avif');
  assert.equal(sniffFormat(heic), 'heic');
  assert.equal((await refusal(avif)).detail, 'AVIF is not supported here (JPEG or PNG expected)');
  const req = { size: SIZE, limits: DEFAULT_LIMITS, wantDisplay: false };
  await assert.rejects(decodeInput(heic, req), (e: unknown) => {
    assert.ok(e instanceof InputError, String(e));
    assert.equal(e.code, 'UNSUPPORTED_FORMAT');
    assert.equal(e.message, 'HEIC is not supported (JPEG, PNG or DICOM expected)');
    return true;
  });
});

test('a JPEG-LS file (.jls, as some PACS export) is refused as unsupported, named, at any precision', async () => {
  for (const bits of [8, 12, 16]) {
    const err = await refusal(patchSof(jpeg, 0xf7, bits)); // SOF55, JPEG-LS's start of frame
    assert.equal(err.code, 'UNSUPPORTED_FORMAT', err.message);
    assert.match(err.detail, /^JPEG-LS is not supported: only 8-bit baseline, progressive or arithmetic-coded JPEGs/);
    assert.match(err.detail, /export the film as PNG/);
  }
});

test('one JPEG header walker: the frame header past fill bytes, for uploads and DICOM frames alike', () => {
  const sof = sofAt(jpeg);
  assert.deepEqual(jpegFrameHeader(jpeg), { marker: 0xc0, precision: 8, height: H, width: W, components: 1 });
  // Fill bytes (any number of FF) may come before a marker.
  const filled = Buffer.concat([jpeg.subarray(0, sof), Buffer.from([0xff, 0xff, 0xff]), jpeg.subarray(sof)]);
  assert.deepEqual(jpegFrameHeader(filled), jpegFrameHeader(jpeg));
  // JPEG-LS's SOF55 and a hierarchical JPEG's DHP are frame headers too (DICOM's JPEG-LS frames are sized by it).
  assert.deepEqual(jpegFrameHeader(patchSof(jpeg, 0xf7, 16)), {
    marker: 0xf7,
    precision: 16,
    height: H,
    width: W,
    components: 1,
  });
  assert.equal(jpegFrameHeader(withDhp(jpeg))?.marker, 0xde);
  // Not a JPEG, or a scan before any frame header: none.
  assert.equal(jpegFrameHeader(png8()), undefined);
  assert.equal(jpegFrameHeader(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0, 2, 0, 0, 0, 0, 0, 0])), undefined);
});

test('an APNG control chunk with 0 frames is invalid APNG, read as the still PNG a viewer shows', async () => {
  const still = await decodeBuffer(png8(), SIZE);
  for (const [name, buf] of Object.entries({
    'acTL 0 frames': png8([acTL(0)]),
    'acTL 0 frames, a frame control after IDAT': png8([acTL(0)], [fcTL(0), fdAT(1)]),
  })) {
    const got = await decodeBuffer(buf, SIZE, { name });
    assert.deepEqual(got.pixels, still.pixels, name);
  }
});

test('ISO media brands: HEVC ones name HEIC, AVIF ones AVIF, the generic mif1 or msf1 alone HEIF', async () => {
  /** An 'ftyp' box: its major brand, minor version 0, then the compatible brands. */
  const ftyp = (major: string, ...brands: string[]) => {
    const body = Buffer.from(['ftyp', major, '\0\0\0\0', ...brands].join(''), 'latin1');
    return Buffer.concat([u32(4 + body.length), body, chunk('meta', Buffer.alloc(8))]);
  };
  assert.equal(sniffFormat(ftyp('mif1', 'mif1', 'miaf', 'avif')), 'avif');
  assert.equal(sniffFormat(ftyp('msf1', 'msf1', 'avis')), 'avif');
  assert.equal(sniffFormat(ftyp('mif1', 'mif1', 'heic')), 'heic');
  // The HEVC brands name a HEIC whichever is major; the generic brands alone name a HEIF image of another codec.
  for (const b of ['heic', 'heix', 'hevc', 'heim', 'heis']) assert.equal(sniffFormat(ftyp(b, 'mif1', b)), 'heic', b);
  assert.equal(sniffFormat(ftyp('msf1', 'msf1', 'iso8', 'hevc')), 'heic');
  assert.equal(sniffFormat(ftyp('mif1', 'mif1', 'miaf')), 'heif');
  assert.equal(sniffFormat(ftyp('msf1', 'msf1', 'iso8')), 'heif');
  assert.equal(sniffFormat(ftyp('avis', 'msf1', 'avis')), 'avif');
  assert.equal(unsupportedFormat('heif', true), 'HEIF is not supported (JPEG, PNG or DICOM expected)');
  // The brands past the box's end are not its own.
  assert.equal(sniffFormat(Buffer.concat([ftyp('mif1', 'mif1'), Buffer.from('avif', 'latin1')])), 'heif');
  // An AVIF written with mif1 as its major brand (as some encoders do) is refused as AVIF, not HEIC.
  const avif = await sharp(jpeg).avif().toBuffer();
  avif.write('mif1', 8, 'latin1');
  assert.equal((await refusal(avif)).detail, 'AVIF is not supported here (JPEG or PNG expected)');
});
