// Generates the bad-input corpus in a temp folder: every way an upload can be wrong that we
// could think of, made from scratch or from a real sample (never stored in the repository).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import { pngChunk as chunk } from './image-bytes';
import { DICOM_FILE, XRAY_JPEG } from './serve-fixtures';

export interface BadFile {
  name: string;
  file: string;
  /** What the server must answer: one status, or any of a list. */
  status: number | number[];
  /** What a clear message must mention (case-insensitive). */
  message?: RegExp;
}

// ---- PNG, written by hand so that headers can lie -------------------------------------------

function ihdr(width: number, height: number, bitDepth = 8, colourType = 0): Buffer {
  const d = Buffer.alloc(13);
  d.writeUInt32BE(width, 0);
  d.writeUInt32BE(height, 4);
  d[8] = bitDepth;
  d[9] = colourType;
  return chunk('IHDR', d);
}

const PNG_SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A real, complete, solid-black gray PNG of any size, streamed through deflate row by row. */
async function solidPng(width: number, height: number): Promise<Buffer> {
  const deflate = zlib.createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (b: Buffer) => parts.push(b));
  const done = new Promise((resolve, reject) => {
    deflate.on('end', resolve);
    deflate.on('error', reject);
  });
  const row = Buffer.alloc(width + 1); // filter byte 0 + zero pixels
  for (let y = 0; y < height; y++) {
    if (!deflate.write(row)) await new Promise((r) => deflate.once('drain', r));
  }
  deflate.end();
  await done;
  return Buffer.concat([
    PNG_SIG,
    ihdr(width, height),
    chunk('IDAT', Buffer.concat(parts)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A tiny valid image body under a header that claims another size. */
function lyingPng(width: number, height: number): Buffer {
  const idat = zlib.deflateSync(Buffer.alloc(2 * 2 + 2));
  return Buffer.concat([PNG_SIG, ihdr(width, height), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}

// ---- DICOM (explicit VR little endian), with or without what a reader needs -----------------

const LONG_VRS = new Set(['OB', 'OW', 'OF', 'SQ', 'UT', 'UN']);

function element(group: number, elem: number, vr: string, value: Buffer | string | number): Buffer {
  let v: Buffer;
  if (typeof value === 'number') {
    v = Buffer.alloc(vr === 'UL' ? 4 : 2);
    if (vr === 'UL') v.writeUInt32LE(value);
    else v.writeUInt16LE(value);
  } else if (typeof value === 'string') {
    v = Buffer.from(value.length % 2 ? value + (vr === 'UI' ? '\0' : ' ') : value, 'latin1');
  } else {
    v = value.length % 2 ? Buffer.concat([value, Buffer.alloc(1)]) : value;
  }
  const head = Buffer.alloc(LONG_VRS.has(vr) ? 12 : 8);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(elem, 2);
  head.write(vr, 4, 'latin1');
  if (LONG_VRS.has(vr)) head.writeUInt32LE(v.length, 8);
  else head.writeUInt16LE(v.length, 6);
  return Buffer.concat([head, v]);
}

function dicom(opts: {
  transferSyntax?: string;
  rows?: number;
  cols?: number;
  pixels?: Buffer | null;
  encapsulated?: boolean;
  /** NumberOfFrames (0028,0008); absent when not given. */
  frames?: number;
}): Buffer {
  const ts = opts.transferSyntax ?? '1.2.840.10008.1.2.1';
  const metaBody = Buffer.concat([
    element(0x0002, 0x0001, 'OB', Buffer.from([0, 1])),
    element(0x0002, 0x0002, 'UI', '1.2.840.10008.5.1.4.1.1.1'),
    element(0x0002, 0x0003, 'UI', '1.2.3.4.5.6.7.8.9'),
    element(0x0002, 0x0010, 'UI', ts),
    element(0x0002, 0x0012, 'UI', '1.2.3.4'),
  ]);
  const rows = opts.rows ?? 64,
    cols = opts.cols ?? 64;
  const parts = [
    Buffer.alloc(128),
    Buffer.from('DICM', 'latin1'),
    element(0x0002, 0x0000, 'UL', metaBody.length),
    metaBody,
    element(0x0008, 0x0060, 'CS', 'CR'),
    element(0x0010, 0x0010, 'PN', 'Test^Patient'),
    element(0x0018, 0x0015, 'CS', 'CHEST'),
    element(0x0028, 0x0002, 'US', 1),
    element(0x0028, 0x0004, 'CS', 'MONOCHROME2'),
    ...(opts.frames === undefined ? [] : [element(0x0028, 0x0008, 'IS', String(opts.frames))]),
    element(0x0028, 0x0010, 'US', rows),
    element(0x0028, 0x0011, 'US', cols),
    element(0x0028, 0x0100, 'US', 8),
    element(0x0028, 0x0101, 'US', 8),
    element(0x0028, 0x0102, 'US', 7),
    element(0x0028, 0x0103, 'US', 0),
  ];
  if (opts.pixels) {
    if (opts.encapsulated) {
      // Undefined length, an empty offset table item, one fragment, then the sequence delimiter.
      const head = Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff]);
      const item = (b: Buffer) => {
        const h = Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0, 0, 0, 0]);
        h.writeUInt32LE(b.length, 4);
        return Buffer.concat([h, b]);
      };
      parts.push(head, item(Buffer.alloc(0)), item(opts.pixels), Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]));
    } else {
      parts.push(element(0x7fe0, 0x0010, 'OB', opts.pixels));
    }
  }
  return Buffer.concat(parts);
}

// ---- the corpus -----------------------------------------------------------------------------

export async function writeCorpus(dir: string, maxUploadBytes: number): Promise<BadFile[]> {
  fs.mkdirSync(dir, { recursive: true });
  const jpeg = fs.readFileSync(XRAY_JPEG);
  const dcm = fs.readFileSync(DICOM_FILE);
  const png = await sharp(jpeg).resize(256).png().toBuffer();
  const gray = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#777' } }).toColourspace('b-w');
  const out: BadFile[] = [];
  const add = (name: string, data: Buffer | string, status: number | number[], message?: RegExp) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, data);
    out.push({ name, file, status, message });
  };
  const UNSUPPORTED = /not supported|not a JPEG, PNG or DICOM/i;
  const CORRUPT = /corrupt|truncated|invalid|cannot|missing|no pixel/i;

  add('empty.jpg', Buffer.alloc(0), 400, /empty/);
  add('truncated-half.jpeg', jpeg.subarray(0, jpeg.length >> 1), [400, 422], CORRUPT);
  add('truncated-header.jpeg', jpeg.subarray(0, 200), [400, 422], CORRUPT);
  add('soi-eoi-only.jpeg', Buffer.from([0xff, 0xd8, 0xff, 0xd9]), [400, 422], CORRUPT);
  add(
    'jpeg-then-html.jpeg',
    Buffer.concat([jpeg.subarray(0, 4), Buffer.from('<html><script>alert(1)</script></html>')]),
    [400, 422],
    CORRUPT,
  );
  add('truncated-half.png', png.subarray(0, png.length >> 1), [400, 422], CORRUPT);
  add('signature-only.png', PNG_SIG, [400, 422], CORRUPT);
  const flipped = Buffer.from(png);
  for (let i = 100; i < flipped.length - 20; i += 97) flipped[i] ^= 0xff;
  add('corrupted-idat.png', flipped, [400, 422], CORRUPT);
  add('zero-width.png', lyingPng(0, 10), [400, 422], CORRUPT);
  add('huge-20000x20000.png', await solidPng(20000, 20000), 413, /pixel/i);
  add('bomb-header-100000x100000.png', lyingPng(100000, 100000), 413, /pixel/i);
  add(
    'cmyk.jpeg',
    await sharp({ create: { width: 300, height: 300, channels: 3, background: '#808080' } })
      .toColourspace('cmyk')
      .jpeg()
      .toBuffer(),
    [200, 415, 422],
  );
  add('text-renamed.jpg', 'This is not an image, just some text renamed to .jpg\n', 415, UNSUPPORTED);
  add('page.html', '<!doctype html><html><body><img src=x onerror=alert(1)></body></html>', 415, UNSUPPORTED);
  add('data.json', JSON.stringify({ image: 'base64...', probability: 1 }), 415, UNSUPPORTED);
  add(
    'drawing.svg',
    '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    415,
    UNSUPPORTED,
  );
  add('doc.pdf', '%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n', 415, UNSUPPORTED);
  add('archive.zip', Buffer.from([0x50, 0x4b, 0x03, 0x04, ...Buffer.alloc(40)]), 415, UNSUPPORTED);
  add('animation.gif', await gray.clone().gif().toBuffer(), 415, /GIF/);
  add('image.webp', await gray.clone().webp().toBuffer(), 415, /WEBP/i);
  add('image.tiff', await gray.clone().tiff().toBuffer(), 415, /TIFF/i);
  add('image.bmp', Buffer.concat([Buffer.from('BM', 'latin1'), Buffer.alloc(60)]), 415, /BMP/i);
  add('random.png', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251)), 415, UNSUPPORTED);
  add('truncated-half.dcm', dcm.subarray(0, dcm.length >> 1), [400, 422], CORRUPT);
  add('preamble-only.dcm', dcm.subarray(0, 132), [400, 415, 422]);
  add('no-pixel-data.dcm', dicom({ pixels: null }), [400, 422], /pixel/i);
  add(
    'unsupported-syntax-mpeg2.dcm',
    dicom({ transferSyntax: '1.2.840.10008.1.2.4.100', pixels: Buffer.alloc(256, 7), encapsulated: true }),
    [415, 422],
    /transfer syntax|not supported|unsupported/i,
  );
  add('short-pixel-data.dcm', dicom({ rows: 512, cols: 512, pixels: Buffer.alloc(100) }), [400, 422], CORRUPT);
  add(
    'huge-dimensions.dcm',
    dicom({ rows: 65535, cols: 65535, pixels: Buffer.alloc(64) }),
    [413, 422],
    /pixel|limit|expected/i,
  );
  // NumberOfFrames against the pixel data: frames missing, or a multi-frame file without its count.
  const FRAMES = /\(7FE0,0010\).*NumberOfFrames/;
  add('frames-missing.dcm', dicom({ frames: 3, pixels: Buffer.alloc(64 * 64, 90) }), 422, FRAMES);
  add('multiframe-without-count.dcm', dicom({ pixels: Buffer.alloc(3 * 64 * 64, 90) }), 422, FRAMES);
  add('zero-rows.dcm', dicom({ rows: 0, cols: 64, pixels: Buffer.alloc(64) }), [400, 422]);
  add(
    'huge-upload.jpeg',
    Buffer.concat([jpeg.subarray(0, 4), Buffer.alloc(maxUploadBytes + 1024, 0x42)]),
    413,
    /limit/,
  );
  return out;
}
