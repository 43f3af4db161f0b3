// `cxr enqueue FOLDER` on an archive: every file a worker would refuse from cheap checks (a phone's HEIC or WebP,
// an empty file, a 12-bit JPEG, an animated PNG by their leading bytes; a JPEG or PNG cut short by its last
// bytes; a file over the byte limit by its size, a JPEG over the pixel limit by its header) is named on stderr
// with the worker's reason and code, as `cxr predict` names it, and is not queued; the others are (a film with
// bytes after its end too); files that are no images by name and bytes are only counted, an empty extensionless
// file skipped and named; the exit status is predict's (2 when some were refused), and a folder with no film is
// an error before Redis is asked. And without -r, a sub-folder holding only images the decoder does not read
// (HEIC) still gets the hint. Images made here; the real Redis (scripts/stack.sh).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { collectInputs } from '../src/predict/batch';
import sharp from 'sharp';
import { DecodeError, decodeBuffer, readImageFile } from '../src/data/decode';
import { CUT, EMPTY_SKIPPED, FILMS, OTHERS, REFUSED_BY_HEADER, makeArchive } from './archive-fixtures';
import { isoMedia, sofAt } from './image-bytes';
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

/** Each refused file's name, its reason (start) and code: predict's row for the same file says the same. */
const REFUSED: [string, RegExp, string][] = [
  ...REFUSED_BY_HEADER,
  // Stops inside a chunk: found from its chunk lengths, not by a decode.
  [CUT, /^truncated PNG: premature end of PNG image/, 'TRUNCATED'],
];
/** Queued: the whole films. */
const QUEUED = FILMS;

before(async () => {
  root = tempDir('enqueue-refused');
  ({ archive, good, bad } = await makeArchive(root));

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
  for (const name of OTHERS) assert.ok(!r.stderr.includes(name), `${name} named:\n${r.stderr}`);
  // A queued film is named only with its job (to follow with GET /jobs/ID), never as refused.
  for (const name of QUEUED) {
    const said = r.stderr.split('\n').filter((l) => l.includes(path.join(archive, name)));
    assert.ok(said.length === 1 && said[0].startsWith('cxr enqueue: queued: '), `${name} named:\n${r.stderr}`);
  }
  // An empty extensionless file is no film refused: skipped, and named as such.
  for (const name of EMPTY_SKIPPED) {
    assert.ok(r.stderr.includes(`cxr enqueue: skipped: ${path.join(archive, name)}: empty file (0 bytes)`), r.stderr);
    assert.ok(!r.stderr.includes(`not queued: ${path.join(archive, name)}`), r.stderr);
  }
  const out = JSON.parse(r.stdout) as Counts;
  assert.deepEqual(
    { queued: out.queued, notFilms: out.notFilms, skipped: out.skipped, missing: out.missing },
    { queued: QUEUED.length, notFilms: REFUSED.length, skipped: OTHERS.length + EMPTY_SKIPPED.length, missing: 0 },
  );
  assert.equal(out.depth.waiting, QUEUED.length, 'no refused file reached the queue');

  // The text summary says how many were refused; the films are found queued already.
  const again = enqueue(archive);
  assert.equal(again.code, 2, again.stderr);
  assert.match(
    again.stdout,
    /^0 queued, 2 already queued, 0 already done, 4 skipped \(not chest films or not images\)/,
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

/** Bytes from a fixed seed (an LCG): noise that compresses badly, the same on every run. */
function noise(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** What the worker says of a file: readImageFile, then the decoder (decodeBuffer); null when it reads it. */
async function workerVerdict(file: string): Promise<{ code: string; detail: string } | null> {
  try {
    await decodeBuffer(await readImageFile(file), 32);
    return null;
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    return { code: e.code, detail: e.detail };
  }
}

test("cxr enqueue: a JPEG or PNG cut short, a file over the byte or pixel limit refused in the worker's words", {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  await redis!.flushdb();
  const dir = path.join(root, 'checked');
  fs.mkdirSync(dir);
  const raw = (side: number) => ({ raw: { width: side, height: side, channels: 1 as const } });
  // Past the leading bytes read (256 KiB): their ends are found from their last bytes.
  const bigJpeg = await sharp(noise(800 * 800), raw(800))
    .jpeg({ quality: 95 })
    .toBuffer();
  const bigPng = await sharp(noise(700 * 700, 7), raw(700))
    .png()
    .toBuffer();
  assert.ok(bigJpeg.length > 300_000 && bigPng.length > 300_000, 'larger than the leading bytes read');
  const jpeg = fs.readFileSync(path.join(archive, 'a.jpeg'));
  const png = fs.readFileSync(path.join(archive, 'b.png'));
  const wide = Buffer.from(jpeg);
  wide.writeUInt16BE(10_000, sofAt(wide) + 5); // height
  wide.writeUInt16BE(10_000, sofAt(wide) + 7); // width: 100 megapixels, over the 50 allowed
  const files: Record<string, Buffer> = {
    'cut-big.jpg': bigJpeg.subarray(0, Math.floor(bigJpeg.length * 0.6)),
    'cut-big.png': bigPng.subarray(0, Math.floor(bigPng.length * 0.6)),
    'cut-small.jpg': jpeg.subarray(0, jpeg.length - 2), // only its end marker missing
    'wide.jpg': wide,
    // Whole films the worker reads: bytes after the end marker (a phone's motion photo), a PNG without IEND.
    'motion.jpg': Buffer.concat([bigJpeg, noise(100 * 1024, 3)]),
    'trailer.jpg': Buffer.concat([jpeg, Buffer.alloc(4000, 7)]),
    'no-iend.png': png.subarray(0, png.length - 12),
  };
  for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), bytes);
  // Over the worker's input limit (64 MiB), without writing 64 MiB: a sparse file after a JPEG's header.
  const huge = path.join(dir, 'huge.jpg');
  fs.writeFileSync(huge, jpeg);
  fs.truncateSync(huge, 64 * 1024 * 1024 + 1);

  const r = enqueue(dir, '--json');
  assert.equal(r.code, 2, r.stderr);
  const refused: Record<string, string> = {
    'cut-big.jpg': 'TRUNCATED',
    'cut-big.png': 'TRUNCATED',
    'cut-small.jpg': 'TRUNCATED',
    'huge.jpg': 'TOO_LARGE',
    'wide.jpg': 'TOO_MANY_PIXELS',
  };
  for (const name of [...Object.keys(files), 'huge.jpg'].sort()) {
    const file = path.join(dir, name);
    const verdict = await workerVerdict(file);
    const line = r.stderr.split('\n').find((l) => l.startsWith(`cxr enqueue: not queued: ${file}: `));
    if (refused[name] === undefined) {
      assert.equal(verdict, null, `${name}: the worker reads it`);
      assert.equal(line, undefined, `${name} refused:\n${r.stderr}`);
      continue;
    }
    // Refused with the code and words the worker (and `cxr predict`'s row) gives the same file.
    assert.equal(verdict?.code, refused[name], name);
    assert.equal(line, `cxr enqueue: not queued: ${file}: ${verdict.detail} (${verdict.code})`);
  }
  const out = JSON.parse(r.stdout) as Counts;
  assert.deepEqual({ queued: out.queued, notFilms: out.notFilms }, { queued: 3, notFilms: 5 });
  assert.equal(out.depth.waiting, 3, 'no refused file reached the queue');
});

test('cxr enqueue on a folder with no film: says what it looked for, exit 1, nothing queued; as cxr predict', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  await redis!.flushdb();
  const empty = path.join(root, 'empty');
  fs.mkdirSync(empty);
  const notes = path.join(root, 'notes-only');
  fs.mkdirSync(notes);
  fs.writeFileSync(path.join(notes, 'notes.txt'), 'no films here');
  fs.writeFileSync(path.join(notes, 'LICENSE'), '');
  for (const [dir, skipped] of [
    [empty, ''],
    [notes, ' (2 non-image file(s) skipped)'],
  ] as const) {
    const r = enqueue(dir, '--json');
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '', 'no counts: nothing was asked of the queue');
    const said = `${dir}: no JPEG, PNG or DICOM files in this folder (looked for JPEG, PNG and DICOM files`;
    assert.ok(r.stderr.includes(`cxr enqueue: ${said}`), r.stderr);
    assert.match(r.stderr, /\.jpg, \.jpeg, \.png, \.dcm/);
    assert.ok(r.stderr.includes(`cxr: enqueue: nothing to queue in ${dir}${skipped}\n`), r.stderr);
    // `cxr predict` says the same of the same folder, with the same status, before any model is loaded.
    const p = spawnSync(process.execPath, [CLI, 'predict', dir, '--model', path.join(root, 'none')], {
      encoding: 'utf8',
    });
    assert.equal(p.status, 1, p.stderr);
    assert.ok(p.stderr.includes(`cxr predict: ${said}`), p.stderr);
    assert.ok(p.stderr.includes(`cxr: predict: nothing to predict in ${dir}${skipped}\n`), p.stderr);
  }
  assert.equal(await redis!.dbsize(), 0, 'nothing written to Redis');
});
