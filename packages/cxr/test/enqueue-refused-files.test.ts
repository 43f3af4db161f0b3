// `cxr enqueue FOLDER` on an archive: every file a worker would refuse by its leading bytes (a phone's HEIC or
// WebP, an empty file, a 12-bit JPEG, an animated PNG) is named on stderr with why and its code, as `cxr predict`
// names it, and is not queued; the others are; files that are no images by name and bytes are only counted; the
// exit status is predict's (2 when some were refused). And without -r, a sub-folder holding only images the
// decoder does not read (HEIC) still gets the hint. Images made here; the real Redis (scripts/stack.sh).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { Redis } from 'ioredis';
import { collectInputs } from '../src/predict/batch';
import { CLI, makeTinyModel, tempDir } from './serve-fixtures';
import { type Stack, stackUnavailable, startStack, stopStack } from './stack-fixture';

const skip = stackUnavailable();
let stack: Stack | undefined;
let redis: Redis | undefined;
let root = '';
let modelDir = '';
let archive = '';
let good = '';
let bad = '';
let nested = '';

/** A PNG chunk; its CRC is left zero: the header check refuses the file before any decoder reads it. */
function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, Buffer.from(type, 'latin1'), data, Buffer.alloc(4)]);
}

/** The JPEG with its baseline frame header's sample precision set to `bits`. */
function withPrecision(jpeg: Buffer, bits: number): Buffer {
  const b = Buffer.from(jpeg);
  for (let i = 2; i + 4 < b.length; i++) {
    if (b[i] === 0xff && b[i + 1] === 0xc0) {
      b[i + 4] = bits;
      return b;
    }
  }
  throw new Error('no SOF0 marker');
}

/** The leading bytes of an ISO media file of `brand` (HEIC): what sniffing reads. */
function isoMedia(brand: string): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32BE(24, 0);
  b.write(`ftyp${brand}`, 4, 'latin1');
  return b;
}

/** Each refused file's name, its reason (start) and code: predict's row for the same file says the same. */
const REFUSED: [string, RegExp, string][] = [
  ['IMG_0001.HEIC', /^HEIC is not supported \(JPEG, PNG or DICOM expected\)/, 'UNSUPPORTED_FORMAT'],
  ['IM000002', /^empty file \(0 bytes\)$/, 'EMPTY'],
  ['animated.png', /^animated PNG \(2 frames\) is not supported/, 'UNSUPPORTED_FORMAT'],
  ['deep.jpg', /^12-bit JPEG is not supported/, 'UNSUPPORTED_FORMAT'],
  ['empty.jpg', /^empty file \(0 bytes\)$/, 'EMPTY'],
  ['photo.webp', /^WEBP is not supported \(JPEG, PNG or DICOM expected\)/, 'UNSUPPORTED_FORMAT'],
];
/** Queued: whole films, and a cut-short PNG, whose damage only a worker reading it all finds. */
const QUEUED = ['a.jpeg', 'b.png', 'cut.png'];
/** No images by name and bytes: counted, never named. */
const OTHERS = ['README', 'Thumbs.db', 'notes.txt'];

before(async () => {
  root = tempDir('enqueue-refused');
  const pixels = Uint8Array.from({ length: 120 * 100 }, (_, i) => ((i % 120) * 3 + Math.floor(i / 120)) % 256);
  const raw = { raw: { width: 120, height: 100, channels: 1 as const } };
  const jpeg = await sharp(pixels, raw).jpeg().toBuffer();
  const png = await sharp(pixels, raw).png().toBuffer();
  archive = path.join(root, 'archive');
  fs.mkdirSync(archive);
  const put = (name: string, data: Buffer | string) => fs.writeFileSync(path.join(archive, name), data);
  put('a.jpeg', jpeg);
  put('b.png', png);
  put('IMG_0001.HEIC', isoMedia('heic'));
  // acTL (2 frames, 0 plays) right after IHDR (8-byte signature + 25-byte chunk), before IDAT.
  put(
    'animated.png',
    Buffer.concat([png.subarray(0, 33), chunk('acTL', Buffer.from([0, 0, 0, 2, 0, 0, 0, 0])), png.subarray(33)]),
  );
  put('cut.png', png.subarray(0, Math.floor(png.length / 2)));
  put('deep.jpg', withPrecision(jpeg, 12));
  put('empty.jpg', '');
  put('IM000002', ''); // an extensionless DICOM name, left empty by a failed copy
  put('photo.webp', Buffer.concat([Buffer.from('RIFF\x20\0\0\0WEBPVP8 ', 'latin1'), Buffer.alloc(24)]));
  put('README', 'Study exported from PACS.\n');
  put('Thumbs.db', Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0, 0, 1, 2]));
  put('notes.txt', 'not a film');

  good = path.join(root, 'good');
  fs.mkdirSync(good);
  fs.writeFileSync(path.join(good, 'a.jpeg'), jpeg);
  fs.writeFileSync(path.join(good, 'notes.txt'), 'not a film');
  bad = path.join(root, 'bad');
  fs.mkdirSync(bad);
  fs.writeFileSync(path.join(bad, 'IMG_0001.HEIC'), isoMedia('heic'));
  fs.writeFileSync(path.join(bad, 'empty.jpg'), '');

  // A folder whose films are all in sub-folders: one of a phone's HEIC photos only, one of notes only.
  nested = path.join(root, 'nested');
  fs.mkdirSync(path.join(nested, 'phone'), { recursive: true });
  fs.mkdirSync(path.join(nested, 'reports'));
  fs.writeFileSync(path.join(nested, 'phone', 'IMG_0002.HEIC'), isoMedia('heic'));
  fs.writeFileSync(path.join(nested, 'reports', 'notes.txt'), 'not a film');

  if (skip) return;
  modelDir = await makeTinyModel(path.join(root, 'model'));
  stack = startStack('enqueue-refused', ['redis']);
  redis = new Redis(stack.env.CXR_REDIS_URL);
});
after(() => {
  redis?.disconnect();
  stopStack(stack);
  fs.rmSync(root, { recursive: true, force: true });
});

function enqueue(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, 'enqueue', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, CXR_REDIS_URL: stack!.env.CXR_REDIS_URL, CXR_MODEL: modelDir },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Counts {
  queued: number;
  skipped: number;
  missing: number;
  notFilms: number;
  depth: { waiting: number };
}

test('without -r: a sub-folder holding only HEIC photos gets the hint; one holding only notes does not', () => {
  const found = collectInputs([nested], false, { imageLike: true });
  assert.deepEqual(found.foldersWithImagesBelow, [nested]);
  assert.deepEqual(found.jobs, [], 'nothing in the folder itself');
  fs.rmSync(path.join(nested, 'phone'), { recursive: true });
  try {
    assert.deepEqual(collectInputs([nested], false, { imageLike: true }).foldersWithImagesBelow, []);
  } finally {
    fs.mkdirSync(path.join(nested, 'phone'));
    fs.writeFileSync(path.join(nested, 'phone', 'IMG_0002.HEIC'), isoMedia('heic'));
  }
});

test('cxr enqueue DIR: each refused image named with why and its code, the rest queued; exit 2', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  await redis!.flushdb();
  const r = enqueue(archive, '--json');
  assert.equal(r.code, 2, r.stderr);
  for (const [name, reason, code] of REFUSED) {
    const prefix = `cxr enqueue: not queued: ${path.join(archive, name)}: `;
    const line = r.stderr.split('\n').find((l) => l.startsWith(prefix));
    assert.ok(line, `no stderr line for ${name}:\n${r.stderr}`);
    assert.ok(line.endsWith(` (${code})`), line);
    assert.match(line.slice(prefix.length, -` (${code})`.length), reason, line);
  }
  for (const name of [...QUEUED, ...OTHERS]) assert.ok(!r.stderr.includes(name), `${name} named:\n${r.stderr}`);
  const out = JSON.parse(r.stdout) as Counts;
  assert.deepEqual(
    { queued: out.queued, notFilms: out.notFilms, skipped: out.skipped, missing: out.missing },
    { queued: QUEUED.length, notFilms: REFUSED.length, skipped: OTHERS.length, missing: 0 },
  );
  assert.equal(out.depth.waiting, QUEUED.length, 'no refused file reached the queue');

  // The text summary says how many were refused; the films are found queued already.
  const again = enqueue(archive);
  assert.equal(again.code, 2, again.stderr);
  assert.match(
    again.stdout,
    /^0 queued, 3 already queued, 0 already done, 3 skipped \(not chest films or not images\)/,
  );
  assert.match(again.stdout, /, 6 refused \(named above\) \(queue /);
});

test('cxr enqueue: exit 0 when every image was taken (non-images aside), 1 when none was; -r hint for HEIC', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  await redis!.flushdb();
  const ok = enqueue(good, '--json');
  assert.equal(ok.code, 0, ok.stderr);
  assert.doesNotMatch(ok.stderr, /not queued/);
  assert.deepEqual((JSON.parse(ok.stdout) as Counts).queued, 1);

  const none = enqueue(bad, '--json');
  assert.equal(none.code, 1, none.stderr);
  assert.match(none.stderr, /IMG_0001\.HEIC: HEIC is not supported .*\(UNSUPPORTED_FORMAT\)/);
  assert.match(none.stderr, /empty\.jpg: empty file \(0 bytes\) \(EMPTY\)/);
  const counts = JSON.parse(none.stdout) as Counts;
  assert.deepEqual({ queued: counts.queued, notFilms: counts.notFilms }, { queued: 0, notFilms: 2 });

  const hint = enqueue(nested, '--json');
  assert.match(hint.stderr, /hint: .*nested has sub-folders with images; add -r to include them/);
});
