// Review of src/eval (session 33): hand-made inputs at the edges of the textbook definitions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  balancedPoint,
  evaluate,
  operatingPoints,
  plateauMiddlePoint,
  screeningPoint,
  wilsonInterval,
} from '../src/eval';

test('Wilson interval: n/n has an upper bound of exactly 1 and 0/n a lower bound of exactly 0', () => {
  // The formula gives exactly 1 at p = 1 and 0 at p = 0; rounding used to leave 0.9999999999999999 (10/10, 148/148,
  // 201/201) and 3.5e-18 (0/100) in cxr's figures.
  for (const n of [1, 10, 20, 148, 201, 234, 1000]) {
    assert.equal(wilsonInterval(n, n)![1], 1, `${n}/${n}`);
    assert.equal(wilsonInterval(0, n)![0], 0, `0/${n}`);
  }
  const m = evaluate([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0], [0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1]);
  assert.equal(m.ci95.sensitivity![1], 1);
  assert.equal(m.ci95.accuracy[1], 1);
});

test("Youden's rule: a tie of J goes to the higher threshold even where the sums round differently", () => {
  // 2 pneumonia, 6 normal, scores falling: at 6/9 sensitivity 1/2 and specificity 4/6, at 2/9 sensitivity 1 and
  // specificity 1/6: J = 1/6 at both (and lower everywhere else). 1/2 + 4/6 rounds 1 ulp below 1 + 1/6.
  const labels = [0, 0, 1, 0, 0, 0, 1, 0];
  const probs = labels.map((_, i) => (8 - i) / 9);
  const p = balancedPoint(labels, probs);
  assert.equal(p.threshold, 6 / 9);
  assert.equal(p.sensitivity, 0.5);
  assert.equal(p.specificity, 4 / 6);
});

test('plateau middle: a validation set of 130,000 distinct probabilities does not overflow the stack', () => {
  const n = 130_000;
  const labels = Array.from({ length: n }, (_, i) => (i < n / 2 ? 0 : 1));
  const probs = labels.map((_, i) => (i + 0.5) / n);
  const p = plateauMiddlePoint(labels, probs);
  // Separated classes: the middle of the gap between the last normal and the first pneumonia film.
  assert.equal(p.sensitivity, 1);
  assert.equal(p.specificity, 1);
  assert.ok(p.threshold > probs[n / 2 - 1] && p.threshold <= probs[n / 2]);
  assert.equal(operatingPoints(labels, probs).balanced.threshold, p.threshold);
});

test('screening point: an unreachable sensitivity target is refused, not a point without a threshold', () => {
  const labels = [0, 1, 0, 1];
  const probs = [0.2, 0.8, 0.4, 0.6];
  assert.throws(() => screeningPoint(labels, probs, 1.5), RangeError);
  assert.throws(() => screeningPoint(labels, probs, Number.NaN), RangeError);
  assert.throws(() => operatingPoints(labels, probs, 1.01), RangeError);
  // The reachable extremes still work: 1 takes the lowest threshold that catches every pneumonia, 0 the highest.
  assert.equal(screeningPoint(labels, probs, 1).threshold, 0.6);
  assert.equal(screeningPoint(labels, probs, 0).threshold, 0.8);
});

test('evaluate: bootstrap options with n or seed undefined take the defaults', () => {
  const labels = [0, 1, 0, 1, 1, 0];
  const probs = [0.1, 0.9, 0.6, 0.4, 0.7, 0.3];
  const plain = evaluate(labels, probs);
  assert.deepEqual(evaluate(labels, probs, { bootstrap: { n: undefined } }), plain);
  assert.deepEqual(evaluate(labels, probs, { bootstrap: { n: undefined, seed: undefined } }), plain);
  assert.ok(plain.ci95.auc !== null);
});
