// `cxr experiments heatmap --limit N` took N films first and only then dropped those the model
// does not call positive, so a folder that opened with negative films measured fewer than N, or
// refused with "nothing to explain". It must measure up to N of the films the model calls positive.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { heatmapTable } from '../src/experiments/heatmap';
import { REPO, SAMPLES_FULLRES, needsData } from './shared-data';

const SHIPPED = path.join(REPO, 'models', 'default');
const skip = needsData(SAMPLES_FULLRES, path.join(SHIPPED, 'cxr.json'));
let dir: string;

before(() => {
  if (skip) return;
  // Two clear NORMAL films sort first, three clear pneumonia films after them.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-heatmap-'));
  const films = [
    ['a.jpeg', 'NORMAL/NORMAL2-IM-1035-0001.jpeg'],
    ['b.jpeg', 'NORMAL/IM-0172-0001.jpeg'],
    ['c.jpeg', 'PNEUMONIA/person1073_bacteria_3008.jpeg'],
    ['d.jpeg', 'PNEUMONIA/person1463_bacteria_3808.jpeg'],
    ['e.jpeg', 'PNEUMONIA/person625_bacteria_2499.jpeg'],
  ];
  for (const [name, src] of films) fs.copyFileSync(path.join(SAMPLES_FULLRES, src), path.join(dir, name));
});
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('--limit N measures N films the model calls positive, whatever comes first', { skip }, async () => {
  // Every film: only the three pneumonia films are positive (the premise of the two below).
  assert.equal((await heatmapTable(SHIPPED, { images: dir }, { limit: 10 })).films, 3);
  // Before the fix: the first film (NORMAL) was taken, then dropped, and the run refused.
  assert.equal((await heatmapTable(SHIPPED, { images: dir }, { limit: 1 })).films, 1);
  // Before the fix: films 0 and 2 were taken and only one of them measured.
  const two = await heatmapTable(SHIPPED, { images: dir }, { limit: 2 });
  assert.equal(two.films, 2);
  assert.ok(two.rows.every((r) => r.deletion.every(Number.isFinite)));
});
