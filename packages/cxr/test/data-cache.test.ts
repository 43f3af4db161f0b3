import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { cacheImages, PREPROCESS_VERSION } from '../src/data/cache';
import { scanDataset } from '../src/data/dataset';
import { decodeFile } from '../src/data/decode';

import { DATA, needsData } from './shared-data';
const VAL = path.join(DATA, 'chest_xray', 'val');
const skip = needsData(VAL);
const SIZE = 32;
let tmp = '';
let root = '';
let cacheDir = '';

// A small split in a temp folder: six real images, a byte-identical copy of one, and three
// files that cannot be decoded.
before(async () => {
  if (skip) return;
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cxr-cache-'));
  root = path.join(tmp, 'data', 'train');
  cacheDir = path.join(tmp, 'cache');
  for (const cls of ['NORMAL', 'PNEUMONIA']) {
    await fs.mkdir(path.join(root, cls), { recursive: true });
    for (const name of (await fs.readdir(path.join(VAL, cls))).sort().slice(0, 3)) {
      await fs.copyFile(path.join(VAL, cls, name), path.join(root, cls, name));
    }
  }
  await fs.copyFile(
    path.join(VAL, 'NORMAL', 'NORMAL2-IM-1427-0001.jpeg'),
    path.join(root, 'NORMAL', 'NORMAL2-IM-1427-0002.jpeg'),
  );
  await fs.writeFile(path.join(root, 'NORMAL', 'IM-9999-0001.jpeg'), '');
  await fs.writeFile(path.join(root, 'NORMAL', 'readme.jpeg'), 'not an image');
  const whole = await fs.readFile(path.join(VAL, 'PNEUMONIA', 'person1954_bacteria_4886.jpeg'));
  await fs.writeFile(path.join(root, 'PNEUMONIA', 'person9999_bacteria_1.jpeg'), whole.subarray(0, 2000));
});
after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const BAD = ['IM-9999-0001.jpeg', 'person9999_bacteria_1.jpeg', 'readme.jpeg'];

test('corrupt and unsupported files are reported by name and skipped; the cache is reused', { skip }, async () => {
  const records = await scanDataset(root);
  assert.equal(records.length, 10);

  const warnings: string[] = [];
  const first = await cacheImages(records, { size: SIZE, cacheDir, warn: (l) => warnings.push(l) });
  assert.equal(first.length, 7);
  assert.deepEqual(first.skipped.map((s) => path.basename(s.path)).sort(), BAD);
  assert.deepEqual(first.skipped.map((s) => s.code).sort(), ['EMPTY', 'TRUNCATED', 'UNSUPPORTED_FORMAT']);
  assert.equal(warnings.length, 3);
  for (const name of BAD)
    assert.ok(
      warnings.some((w) => w.includes(name)),
      `a warning names ${name}`,
    );
  assert.equal(first.stats.reused, false);
  // decoded + copied + duplicates = the images; the three that failed are only in `skipped`.
  assert.equal(first.stats.decoded, 6, 'the duplicate is decoded once, the failures are not counted');
  assert.equal(first.stats.copied, 0);
  assert.equal(first.stats.duplicates, 1);
  assert.ok(first.images.every((im) => !BAD.includes(path.basename(im.path))));

  // Same pixels as a direct decode, and the duplicate shares its slot.
  const i = first.images.findIndex((im) => im.path.endsWith('NORMAL2-IM-1427-0001.jpeg'));
  const j = first.images.findIndex((im) => im.path.endsWith('NORMAL2-IM-1427-0002.jpeg'));
  assert.deepEqual(first.pixelsOf(i), (await decodeFile(first.images[i].path, SIZE)).pixels);
  assert.equal(first.images[i].slot, first.images[j].slot);

  const again: string[] = [];
  const second = await cacheImages(records, { size: SIZE, cacheDir, warn: (l) => again.push(l) });
  assert.equal(second.stats.reused, true);
  assert.equal(second.stats.decoded, 0);
  assert.equal(second.stats.packFile, first.stats.packFile);
  assert.deepEqual(again, warnings, 'skipped files are reported again without decoding');
  assert.deepEqual(
    second.images.map((im) => im.path),
    first.images.map((im) => im.path),
  );
  for (let k = 0; k < second.length; k++) assert.deepEqual(second.pixelsOf(k), first.pixelsOf(k));
});

test('a subset or a changed file reuses what other packs hold', { skip }, async () => {
  const records = await scanDataset(root);
  const quiet = { size: SIZE, cacheDir, warn: () => {} };
  await cacheImages(records, quiet);

  // The empty file, NORMAL2-IM-1427-0001 and its copy -0002, and NORMAL2-IM-1430-0001.
  const subset = await cacheImages(records.slice(0, 4), { ...quiet, name: 'subset' });
  assert.equal(subset.stats.reused, false);
  assert.equal(subset.stats.decoded, 0);
  assert.equal(subset.length, 3);
  assert.equal(subset.stats.copied, 2, "the other pack's recorded failure is skipped, not copied");
  assert.equal(subset.stats.duplicates, 1);
  assert.equal(subset.skipped.length, 1);

  // Another size is another cache.
  const other = await cacheImages(records.slice(0, 2), { ...quiet, size: 16 });
  assert.equal(other.stats.decoded, 1, 'the empty file is tried, and skipped');
  assert.equal(other.skipped.length, 1);

  const changed = path.join(root, 'PNEUMONIA', 'person1946_bacteria_4874.jpeg');
  await fs.copyFile(path.join(root, 'PNEUMONIA', 'person1947_bacteria_4876.jpeg'), changed);
  const after = await cacheImages(await scanDataset(root), quiet);
  assert.equal(after.stats.decoded, 0, 'new content that another pack already holds is copied');
  await fs.appendFile(changed, Buffer.from([0])); // trailing byte: still a valid JPEG, new hash
  const after2 = await cacheImages(await scanDataset(root), quiet);
  assert.equal(after2.stats.decoded, 1);
});

test('a damaged pack is rebuilt', { skip }, async () => {
  const records = (await scanDataset(root)).filter((r) => !BAD.includes(path.basename(r.path))).slice(0, 3);
  const opts = { size: SIZE, cacheDir, warn: () => {}, name: 'damaged' };
  const first = await cacheImages(records, opts);
  await fs.truncate(first.stats.packFile, 10);
  const second = await cacheImages(records, opts);
  assert.equal(second.stats.reused, false);
  assert.equal(second.length, 3);
  assert.deepEqual(second.pixelsOf(2), first.pixelsOf(2));
});

test('a cache of an older decoding is never read, and named once so its space can be freed', { skip }, async () => {
  const records = (await scanDataset(root)).filter((r) => !BAD.includes(path.basename(r.path))).slice(0, 2);
  const own = path.join(tmp, 'older-cache');
  // A pack an older cxr wrote for these very films, at this size, under its own version's folder.
  const current = await cacheImages(records, { size: SIZE, cacheDir: own, warn: () => {} });
  const older = path.join(own, `images-v${PREPROCESS_VERSION - 1}`);
  await fs.rename(path.join(own, `images-v${PREPROCESS_VERSION}`), older);
  const lines: string[] = [];
  const again = await cacheImages(records, { size: SIZE, cacheDir: own, warn: (l) => lines.push(l) });
  assert.equal(again.stats.reused, false, 'decoded again, not read from the older folder');
  assert.ok(current.stats.decoded > 0);
  assert.equal(again.stats.decoded, current.stats.decoded);
  assert.deepEqual(again.pixelsOf(1), current.pixelsOf(1));
  assert.equal(lines.filter((l) => l.includes(older) && /no longer read/.test(l)).length, 1, lines.join('\n'));
  await fs.access(older); // kept: an older checkout may still use it
  // Said once per process, not on every pack.
  const later: string[] = [];
  await cacheImages(records.slice(0, 1), { size: SIZE, cacheDir: own, warn: (l) => later.push(l) });
  assert.deepEqual(later, []);
});
