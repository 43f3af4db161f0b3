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
import { Redis } from 'ioredis';
import { collectInputs } from '../src/predict/batch';
import { CUT, FILMS, OTHERS, REFUSED_BY_HEADER, makeArchive } from './archive-fixtures';
import { isoMedia } from './image-bytes';
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
const REFUSED = REFUSED_BY_HEADER;
/** Queued: whole films, and a cut-short PNG, whose damage only a worker reading it all finds. */
const QUEUED = [...FILMS, CUT];

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
