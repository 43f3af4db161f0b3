import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classCounts, classWeights, epochOrder, lossWeights } from '../src/data/balance';

const labels = [...Array(30).fill(1), ...Array(10).fill(0)] as number[];

test('class weights equalise the classes', () => {
  assert.deepEqual(classCounts(labels), [10, 30]);
  const [w0, w1] = classWeights(labels);
  assert.equal(w0 * 10, w1 * 30);
  assert.equal(w0 * 10 + w1 * 30, 40);
  assert.deepEqual(lossWeights(labels, 'oversample'), [1, 1]);
});

test('none and class-weights visit every image once, shuffled', () => {
  for (const mode of ['none', 'class-weights'] as const) {
    const order = epochOrder(labels, mode, 1, 0);
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      labels.map((_, i) => i),
    );
    assert.notDeepEqual(
      order,
      labels.map((_, i) => i),
    );
  }
});

test('oversample and undersample balance the classes', () => {
  const over = epochOrder(labels, 'oversample', 1, 0);
  assert.deepEqual(classCounts(over.map((i) => labels[i])), [30, 30]);
  // Every minority image appears 3 times: whole passes, not random draws with replacement.
  const seen = new Map<number, number>();
  for (const i of over) if (labels[i] === 0) seen.set(i, (seen.get(i) ?? 0) + 1);
  assert.ok([...seen.values()].every((n) => n === 3));

  const under = epochOrder(labels, 'undersample', 1, 0);
  assert.deepEqual(classCounts(under.map((i) => labels[i])), [10, 10]);
  assert.equal(new Set(under).size, 20);
});

test('orders are seeded per epoch', () => {
  assert.deepEqual(epochOrder(labels, 'undersample', 5, 2), epochOrder(labels, 'undersample', 5, 2));
  assert.notDeepEqual(epochOrder(labels, 'undersample', 5, 2), epochOrder(labels, 'undersample', 5, 3));
  assert.notDeepEqual(epochOrder(labels, 'none', 5, 2), epochOrder(labels, 'none', 6, 2));
});

test('bad labels and modes are refused', () => {
  assert.throws(() => classCounts([0, 2]), RangeError);
  assert.throws(() => epochOrder(labels, 'smote' as never, 1, 0), /unknown mode/);
});
