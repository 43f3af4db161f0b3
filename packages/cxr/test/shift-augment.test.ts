// Site-shift augmentation: seeded, changes about the asked share of films, refuses what cannot run
// inside a training step, and a recipe with it trains and records it.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkShiftAugment, shiftAugmentBatch, SITE_SHIFT_AUGMENT } from '../src/data/shift_augment';
import { initEngine } from '../src/engine';
import { runTraining } from '../src/train/run';
import { CHEST_XRAY, needsData } from './shared-data';

const data = CHEST_XRAY;
const skip = needsData(data);
process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');

function films(n: number, size: number): Uint8Array {
  const px = new Uint8Array(n * size * size);
  for (let i = 0; i < px.length; i++) px[i] = (i * 37 + Math.floor(i / size) * 11) % 256;
  return px;
}

test('shiftAugmentBatch is seeded and changes about the asked share of films', () => {
  const n = 200,
    size = 16,
    per = size * size;
  const a = films(n, size),
    b = films(n, size),
    c = films(n, size);
  shiftAugmentBatch(a, n, size, SITE_SHIFT_AUGMENT, 'seed-1');
  shiftAugmentBatch(b, n, size, SITE_SHIFT_AUGMENT, 'seed-1');
  shiftAugmentBatch(c, n, size, SITE_SHIFT_AUGMENT, 'seed-2');
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const orig = films(n, size);
  let changed = 0;
  for (let i = 0; i < n; i++) if (a.subarray(i * per, (i + 1) * per).some((v, k) => v !== orig[i * per + k])) changed++;
  assert.ok(changed > 0.35 * n && changed < 0.65 * n, `${changed} of ${n} changed at probability 0.5`);
  const none = films(n, size);
  shiftAugmentBatch(none, n, size, { ...SITE_SHIFT_AUGMENT, probability: 0 }, 'seed-1');
  assert.deepEqual(none, orig);
});

test('checkShiftAugment refuses unknown and asynchronous changes', () => {
  assert.doesNotThrow(() => checkShiftAugment(SITE_SHIFT_AUGMENT));
  assert.throws(() => checkShiftAugment({ ...SITE_SHIFT_AUGMENT, changes: ['jpeg'] }), /asynchronous/);
  assert.throws(() => checkShiftAugment({ ...SITE_SHIFT_AUGMENT, changes: ['sepia'] }), /unknown change/);
});

test('the cxr-shift recipe trains on a small subset and records its augmentation', { skip }, async () => {
  await initEngine();
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-shift-'));
  const r = await runTraining({
    data,
    out,
    recipeName: 'cxr-shift',
    report: false,
    progress: false,
    log: () => {},
    overrides: { inputSize: 48, epochs: 1, limitPerClass: 40, valFraction: 0.3, batchSize: 16, tta: [] },
  });
  assert.deepEqual(r.meta.recipe.shiftAugment, SITE_SHIFT_AUGMENT);
  await assert.rejects(
    runTraining({
      data,
      out: fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-shift-')),
      recipeName: 'cxr-shift',
      report: false,
      progress: false,
      log: () => {},
      overrides: { inputSize: 48, epochs: 1, limitPerClass: 40, normalize: 'equalize' },
    }),
    /normalize none/,
  );
});
