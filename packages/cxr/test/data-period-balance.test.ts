import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classCounts, epochOrder } from '../src/data/balance';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { periodGrouper, periodWeights } from '../src/data/period_balance';
import { runTraining } from '../src/train/run';

// NORMAL2 numbers 1..40 all present, then a sparse stretch: every tenth number from 50 to 240.
const dense = Array.from({ length: 40 }, (_, i) => `NORMAL2-IM-${String(i + 1).padStart(4, '0')}`);
const sparse = Array.from({ length: 20 }, (_, i) => `NORMAL2-IM-${String(50 + 10 * i).padStart(4, '0')}`);

test('films from a sparse stretch of patient numbers weigh more, capped, dense ones weigh 1', () => {
  const patients = [...dense, ...sparse, 'file:gan-1.png'];
  const labels = patients.map(() => 0);
  const w = periodWeights(patients, labels, { window: 5, maxWeight: 4 });
  assert.equal(w.length, patients.length);
  for (let i = 0; i < 35; i++) assert.equal(w[i], 1, dense[i]);
  // Inside the sparse stretch 1 of 11 numbers has a film against the median's 11 of 11: capped at 4.
  for (let i = 41; i < 59; i++) assert.equal(w[i], 4, patients[i]);
  assert.ok(w.every((x) => x >= 1 && x <= 4));
  assert.equal(w[patients.length - 1], 1, 'an unnumbered film weighs 1');
  // A larger cap lets the sparsest films weigh more; a cap of 1 switches the weighting off.
  assert.ok(Math.max(...periodWeights(patients, labels, { window: 5, maxWeight: 10 })) > 4);
  assert.ok(periodWeights(patients, labels, { window: 5, maxWeight: 1 }).every((x) => x === 1));
  // A power above 1 squares the ratio before the cap: films between 1 and the cap move further from 1.
  const plain = periodWeights(patients, labels, { window: 5, maxWeight: 20 });
  const squared = periodWeights(patients, labels, { window: 5, maxWeight: 20, power: 2 });
  const between = [...plain.keys()].filter((i) => plain[i] > 1 && plain[i] ** 2 < 20);
  assert.ok(between.length > 0, 'the fixture has films between 1 and the cap');
  for (const i of between) assert.ok(Math.abs(squared[i] - plain[i] ** 2) < 1e-9, patients[i]);
  assert.ok(squared.every((x) => x >= 1 && x <= 20));
});

test('classes and series are weighed apart', () => {
  // The same numbers as PNEUMONIA films (another class) or IM- films (another series) do not
  // make the sparse NORMAL2 stretch dense.
  const patients = [...dense, ...sparse, ...sparse.map((p) => p.replace('NORMAL2-', ''))];
  const labels = [...dense.map(() => 0), ...sparse.map(() => 0), ...sparse.map(() => 0)];
  const w = periodWeights(patients, labels, { window: 5 });
  assert.equal(w[50], 4);
  // The IM- series is evenly sparse on its own: every film at its median.
  assert.ok(w.slice(60).every((x) => x === 1));
  const asPneumonia = periodWeights([...dense, ...dense], [...dense.map(() => 0), ...dense.map(() => 1)]);
  assert.ok(asPneumonia.every((x) => x === 1));
  assert.throws(() => periodWeights(dense, [0]), /40 patient ids for 1 labels/);
  assert.throws(() =>
    periodWeights(
      dense,
      dense.map(() => 0),
      { maxWeight: 0.5 },
    ),
  );
});

test('weighted epochs keep the class sizes of the mode and draw in proportion to the weights', () => {
  const labels = [...Array(30).fill(1), ...Array(10).fill(0)] as number[];
  // NORMAL image 30 weighs 4, the other NORMAL images 1: 30 draws over a total weight of 13.
  const weights = labels.map((_, i) => (i === 30 ? 4 : 1));
  const counts = new Map<number, number>();
  for (let epoch = 0; epoch < 20; epoch++) {
    const order = epochOrder(labels, 'oversample', 3, epoch, weights);
    assert.deepEqual(classCounts(order.map((i) => labels[i])), [30, 30]);
    for (const i of order) counts.set(i, (counts.get(i) ?? 0) + 1);
    // Systematic draws stray by at most one from their expectation (30 · 4/13 ≈ 9.2).
    const heavy = order.filter((i) => i === 30).length;
    assert.ok(heavy === 9 || heavy === 10, `heavy image drawn ${heavy} times`);
  }
  // Over the epochs every light NORMAL image comes about 30/13 ≈ 2.3 times an epoch.
  for (let i = 31; i < 40; i++) assert.ok(Math.abs(counts.get(i)! / 20 - 30 / 13) < 0.35, `${i}: ${counts.get(i)}`);
  // Unweighted PNEUMONIA images of equal weight each come once.
  for (let i = 0; i < 30; i++) assert.equal(counts.get(i), 20);
  assert.deepEqual(epochOrder(labels, 'oversample', 3, 1, weights), epochOrder(labels, 'oversample', 3, 1, weights));
  assert.deepEqual(classCounts(epochOrder(labels, 'none', 3, 0, weights).map((i) => labels[i])), [10, 30]);
  assert.deepEqual(classCounts(epochOrder(labels, 'undersample', 3, 0, weights).map((i) => labels[i])), [10, 10]);
  assert.throws(() => epochOrder(labels, 'oversample', 3, 0, [1, 2]), /2 weights for 40 images/);
  assert.throws(
    () =>
      epochOrder(
        labels,
        'oversample',
        3,
        0,
        labels.map(() => 0),
      ),
    /not a positive number/,
  );
});

test('period groups name the series and whether a film sits in a sparse stretch of its class', () => {
  const patients = [...dense, ...sparse, 'person3', 'file:x.png'];
  const labels = [...dense.map(() => 0), ...sparse.map(() => 0), 1, 0];
  const group = periodGrouper(patients, labels, 5);
  assert.equal(group(dense[10], 0), 'NORMAL2-IM dense');
  assert.equal(group(sparse[5], 0), 'NORMAL2-IM sparse');
  // A film outside the reference: counted by the reference films around its number.
  assert.equal(group('NORMAL2-IM-0012', 0), 'NORMAL2-IM dense');
  assert.equal(group('NORMAL2-IM-0175', 0), 'NORMAL2-IM sparse');
  assert.equal(group('person3', 1), 'person dense');
  // No reference films of that class and series, or no number: no period.
  assert.equal(group(dense[10], 1), 'NORMAL2-IM (no period)');
  assert.equal(group('file:x.png', 0), 'file:x.png (no period)');
});

test('period balancing is refused with an ImageNet backbone trained head first, before any data is read', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-period-'));
  await assert.rejects(
    runTraining({
      data: path.join(out, 'no-data'),
      out,
      recipeName: 'cxr',
      overrides: { backbone: 'mobilenet_v1_0.25', periodBalance: { window: 25, maxWeight: 4 } },
      log: () => {},
    }),
    /periodBalance need a whole-model run: from scratch, or a backbone with endToEnd/,
  );
  fs.rmSync(out, { recursive: true, force: true });
});
