// Review of the data pipeline (session 33): each test holds a bug fixed then.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { cacheImages } from '../src/data/cache';
import type { ImageRecord, Label } from '../src/data/dataset';
import { decodeFile } from '../src/data/decode';
import { recordedSplit, splitOf } from '../src/data/dataset_images';
import { splitByPatient } from '../src/data/split';
import { CHEST_XRAY, needsData } from './shared-data';

test("mode 'block': patients whose names carry no number reach validation too, whole and by id", () => {
  // Names no pattern knows ('file:<name>'), as a folder of another source's films gives them: each used to be a
  // series of one patient, whose share rounded to 0, so the block validation set was empty.
  const items = Array.from({ length: 40 }, (_, i) => ({
    patient: `file:scan_${String(i).padStart(2, '0')}.png`,
    label: (i % 2) as Label,
  }));
  const { train, val } = splitByPatient(items, { valFraction: 0.25, mode: 'block', seed: 3 });
  assert.equal(val.length, 10, 'a quarter of each class');
  assert.equal(val.filter((r) => r.label === 0).length, 5);
  // The lowest ids of each class, whatever the seed.
  assert.deepEqual(
    val.map((r) => r.patient),
    Array.from({ length: 10 }, (_, i) => `file:scan_${String(i).padStart(2, '0')}.png`),
  );
  assert.deepEqual(
    splitByPatient(items, { valFraction: 0.25, mode: 'block', seed: 99 }).valIndices,
    splitByPatient([...items].reverse(), { valFraction: 0.25, mode: 'block', seed: 3 })
      .val.map((r) => items.indexOf(r))
      .sort((a, b) => a - b),
  );
  const valIds = new Set(val.map((r) => r.patient));
  assert.ok(train.every((r) => !valIds.has(r.patient)));
  // Numbered series are split as before beside them.
  const mixed = [
    ...items,
    ...Array.from({ length: 8 }, (_, i) => ({ patient: `IM-${String(10 + i).padStart(4, '0')}`, label: 0 as Label })),
  ];
  const m = splitByPatient(mixed, { valFraction: 0.25, mode: 'block' });
  assert.deepEqual(
    m.val.filter((r) => r.patient.startsWith('IM-')).map((r) => r.patient),
    ['IM-0010', 'IM-0011'],
  );
});

// The cache hashes each file, then reads it again to decode it. A read that fails at that second moment (an
// I/O error, a file being replaced), or that gives other bytes, was written into the pack under the hash of
// the first read: the content was skipped on every later run, or kept another content's pixels.
const skip = needsData(path.join(CHEST_XRAY, 'val'));
let tmp = '';
after(async () => {
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

/** Makes the n-th read (1-based) of `file` through fs.promises.readFile answer `answer` instead. */
function onRead(file: string, nth: number, answer: () => Promise<Buffer>): () => void {
  const fsp = fsSync.promises as { readFile: typeof fs.readFile };
  const real = fsp.readFile;
  let reads = 0;
  fsp.readFile = ((p: fsSync.PathLike, ...rest: unknown[]) => {
    if (String(p) === file && ++reads === nth) return answer();
    return (real as (...a: unknown[]) => Promise<unknown>)(p, ...rest);
  }) as typeof fs.readFile;
  return () => {
    fsp.readFile = real;
  };
}

async function smallSplit(name: string): Promise<{ records: ImageRecord[]; cacheDir: string; files: string[] }> {
  if (!tmp) tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'cxr-review-s33-'));
  const dir = path.join(tmp, name, 'NORMAL');
  await fs.mkdir(dir, { recursive: true });
  const src = path.join(CHEST_XRAY, 'val', 'NORMAL');
  const names = (await fs.readdir(src)).sort().slice(0, 3);
  for (const n of names) await fs.copyFile(path.join(src, n), path.join(dir, n));
  const files = names.map((n) => path.join(dir, n));
  const records = files.map((p) => ({ path: p, split: 'train' as const, label: 0 as Label, patient: p }));
  return { records, cacheDir: path.join(tmp, name, 'cache'), files };
}

test('a read that fails while the pack is built skips the film this run only', { skip }, async () => {
  const { records, cacheDir, files } = await smallSplit('read-fails');
  const quiet = { size: 16, cacheDir, warn: () => {}, progress: false, concurrency: 1 };
  const restore = onRead(files[1], 2, async () => {
    throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
  });
  let first: Awaited<ReturnType<typeof cacheImages>>;
  try {
    first = await cacheImages(records, quiet);
  } finally {
    restore();
  }
  assert.deepEqual(
    first.skipped.map((s) => [s.path, s.code]),
    [[files[1], 'READ_FAILED']],
  );
  const again = await cacheImages(records, quiet);
  assert.deepEqual(again.skipped, [], 'the film reads now: it is not skipped for good');
  assert.equal(again.length, 3);
});

test('a file whose bytes change while the pack is built never leaves its new pixels under its old hash', {
  skip,
}, async () => {
  const { records, cacheDir, files } = await smallSplit('changes');
  const quiet = { size: 16, cacheDir, warn: () => {}, progress: false, concurrency: 1 };
  const other = await fs.readFile(files[2]);
  const restore = onRead(files[0], 2, async () => other);
  try {
    await cacheImages(records, quiet);
  } finally {
    restore();
  }
  const again = await cacheImages(records, quiet);
  const i = again.images.findIndex((im) => im.path === files[0]);
  assert.ok(i >= 0, 'the film is in the set');
  const want = await decodeFile(files[0], 16);
  assert.deepEqual(Buffer.from(again.pixelsOf(i)), Buffer.from(want.pixels), "the film's own pixels");
});

test("a cxr.json that records no data.splitSeed is split by its recipe's splitSeed, as training split it", () => {
  const recipe = { valFraction: 0.2, seed: 7, splitSeed: 42, limitPerClass: 0, valSplit: 'random' as const };
  const recorded = recordedSplit({ data: {}, recipe });
  assert.equal(recorded.seed, splitOf(recipe).seed);
  assert.equal(recorded.seed, 42);
  // Without a splitSeed the training seed is the split's, both ways.
  assert.equal(recordedSplit({ data: {}, recipe: { ...recipe, splitSeed: undefined } }).seed, 7);
});

test('a pack an earlier cxr wrote with a failed read is rebuilt, and never lends that failure', { skip }, async () => {
  const { records, cacheDir, files } = await smallSplit('old-pack');
  const quiet = { size: 16, cacheDir, warn: () => {}, progress: false, concurrency: 1 };
  const built = await cacheImages(records, quiet);
  // What the earlier buildPack wrote when the second read of files[1] failed: its content among the failures.
  const base = built.stats.packFile.replace(/\.u8$/, '');
  const index = JSON.parse(await fs.readFile(`${base}.json`, 'utf8'));
  const sha = built.images.find((im) => im.path === files[1])!.sha256;
  const k = index.slots.findIndex((s: { sha256: string }) => s.sha256 === sha);
  const per = 16 * 16;
  const u8 = await fs.readFile(`${base}.u8`);
  await fs.writeFile(`${base}.u8`, Buffer.concat([u8.subarray(0, k * per), u8.subarray((k + 1) * per)]));
  index.slots.splice(k, 1);
  index.failures.push({ sha256: sha, code: 'READ_FAILED', detail: 'cannot read (EIO)' });
  await fs.writeFile(`${base}.json`, JSON.stringify(index));
  // A subset builds a new pack with that one as its donor.
  const subset = await cacheImages(records.slice(1), { ...quiet, name: 'subset' });
  assert.deepEqual(subset.skipped, [], 'no donor lends a failed read');
  assert.equal(subset.length, 2);
  const again = await cacheImages(records, quiet);
  assert.deepEqual(again.skipped, [], 'the pack itself is rebuilt');
  assert.equal(again.length, 3);
});
