// An image cache that cannot be made or written (CXR_CACHE=/proc/x, a file in the way, a read-only home) is
// no reason to fail: evaluate, train and robustness say so once on stderr, decode in memory and write nothing
// there. Before, they stopped with "cxr: ENOENT: ... mkdir" (train after writing recipe.json into --out).
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { cacheImages } from '../src/data/cache';
import { scanDataset } from '../src/data/dataset';
import { initEngine } from '../src/engine';
import { extractFeatures } from '../src/train/transfer_features';
import { needsData, REPO } from './shared-data';
import { linkFilms } from './tiny-films';

const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const SHIPPED = path.join(REPO, 'models', 'default');
const skip = needsData(path.join(SHIPPED, 'cxr.json'));
const WARNING =
  /warning: image cache (\S+) is not writable \(([^)]+)\); running without it \(set CXR_CACHE to a writable folder/g;
let tmp = '';
let flat = '';
let kaggle = '';
/** A regular file given as the cache folder: nothing may be written beside it or into it. */
let fileInTheWay = '';

before(() => {
  if (skip) return;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-cache-ro-'));
  flat = linkFilms(path.join(tmp, 'flat'), 4, 'flat');
  kaggle = linkFilms(path.join(tmp, 'kaggle'), 8, 'kaggle');
  fs.mkdirSync(path.join(tmp, 'blocked'));
  fileInTheWay = path.join(tmp, 'blocked', 'cache');
  fs.writeFileSync(fileInTheWay, 'not a folder\n');
});
after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function cxr(cache: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, CXR_CACHE: cache },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, warnings: [...r.stderr.matchAll(WARNING)] };
}

/** The blocked folder holds the file, unchanged, and nothing else (no pack, no temporary file). */
function assertNothingWritten(): void {
  assert.deepEqual(fs.readdirSync(path.join(tmp, 'blocked')), ['cache']);
  assert.equal(fs.readFileSync(fileInTheWay, 'utf8'), 'not a folder\n');
}

test('cacheImages without a writable cache: the films from memory, one warning, nothing written', {
  skip,
}, async () => {
  const records = await scanDataset(flat);
  const warnings: string[] = [];
  const warn = (l: string) => warnings.push(l);
  const a = await cacheImages(records, { size: 16, cacheDir: fileInTheWay, warnUnwritable: warn, progress: false });
  const b = await cacheImages(records, { size: 24, cacheDir: fileInTheWay, warnUnwritable: warn, progress: false });
  assert.equal(a.length, 8);
  assert.equal(b.length, 8);
  assert.equal(a.stats.decoded, 8, 'every film decoded');
  assert.ok(
    a.pixelsOf(0).some((v) => v > 0),
    'real pixels',
  );
  assert.deepEqual(warnings, [
    `warning: image cache ${fileInTheWay} is not writable (a file is in the way); running without it ` +
      '(set CXR_CACHE to a writable folder to keep decoded films between runs)',
  ]);
  assertNothingWritten();
  // Where filling the cache is the point (cxr data cache), it cannot go on without it.
  await assert.rejects(
    cacheImages(records, { size: 20, cacheDir: fileInTheWay, mustWrite: true, progress: false }),
    new RegExp(`^Error: image cache ${fileInTheWay}: cannot write there \\(a file is in the way\\)`),
  );
  assertNothingWritten();
});

test('transfer features without a writable cache: computed, said once, not kept', { skip }, async () => {
  await initEngine(1);
  const set = { size: 4, pixels: new Uint8Array(2 * 16).fill(7), labels: Uint8Array.of(0, 1), files: [], patients: [] };
  const warnings: string[] = [];
  const cacheDir = path.join(tmp, 'blocked', 'cache', 'sub');
  const f = await extractFeatures((x) => tf.mean(x, [1, 2]), 1, set, {
    identity: 't',
    cacheDir,
    warnUnwritable: (l) => warnings.push(l),
  });
  assert.equal(f.cached, false);
  assert.ok(Math.abs(f.data[0] - 7 / 255) < 1e-6, `feature ${f.data[0]}`);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /^warning: feature cache .*blocked\/cache\/sub is not writable \(a file is in the way\)/);
  assertNothingWritten();
});

test('cxr evaluate and robustness go on without a cache under /proc', {
  skip: skip || (!fs.existsSync('/proc/self') && 'no /proc'),
}, () => {
  const cache = `/proc/cxr-test-cache-${process.pid}`;
  const ev = cxr(cache, 'evaluate', '--model', SHIPPED, '--data', flat, '--json');
  assert.equal(ev.code, 0, ev.stderr);
  assert.equal(JSON.parse(ev.stdout).n, 8, 'every film scored');
  assert.equal(ev.warnings.length, 1, ev.stderr);
  assert.equal(ev.warnings[0][1], cache);
  assert.equal(ev.warnings[0][2], 'no folder can be made there');
  assert.doesNotMatch(ev.stderr, /ENOENT/);
  const rob = cxr(cache, 'robustness', '--model', SHIPPED, '--data', flat, '--changes', 'blur', '--json');
  assert.equal(rob.code, 0, rob.stderr);
  assert.equal(rob.warnings.length, 1, rob.stderr);
  assert.equal(fs.existsSync(cache), false);
});

test('cxr train finishes its run without a writable cache, and writes nothing there', { skip }, () => {
  const out = path.join(tmp, 'run');
  const args = ['--model', 'reference', '--input-size', '32', '--epochs', '1', '--batch-size', '4'];
  const r = cxr(fileInTheWay, 'train', '--data', kaggle, '--out', out, ...args, '--no-report', '--no-gate');
  assert.equal(r.code, 0, r.stderr);
  // Training and validation both load through the cache: still one line.
  assert.equal(r.warnings.length, 1, r.stderr);
  assert.ok(fs.existsSync(path.join(out, 'cxr.json')), 'the run finished');
  assert.ok(fs.existsSync(path.join(out, 'metrics', 'val.json')));
  assertNothingWritten();
});
