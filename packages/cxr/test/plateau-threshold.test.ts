// The balanced operating point on a saturated validation set: Youden's maximum sits on the edge of
// a flat plateau and jumps when one hard film moves; the middle of the plateau (in logit space)
// stays put, and cxr.json records which rule chose it.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { balancedPoint, operatingPoints, plateauMiddlePoint, SCREENING_SENSITIVITY } from '../src/eval';

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const logit = (p: number) => Math.log(p / (1 - p));
const linspace = (a: number, b: number, n: number) => Array.from({ length: n }, (_, i) => a + ((b - a) * i) / (n - 1));

/** 50 NORMAL films at logits -5..-1, 150 PNEUMONIA films at 1..5 (the first one movable): a gap (-1, 1). */
function saturated(firstPneumoniaLogit = 1) {
  const normal = linspace(-5, -1, 50);
  const pneumonia = linspace(1, 5, 150);
  pneumonia[0] = firstPneumoniaLogit;
  return {
    labels: [...normal.map(() => 0), ...pneumonia.map(() => 1)],
    probs: [...normal, ...pneumonia].map(sigmoid),
  };
}

test("Youden's maximum sits on the plateau's edge; its middle sits in the middle of the gap", () => {
  const { labels, probs } = saturated();
  const youden = balancedPoint(labels, probs);
  assert.ok(Math.abs(logit(youden.threshold) - 1) < 1e-9, `Youden at logit ${logit(youden.threshold)}`);
  // Within tolerance 0 the plateau is exactly the gap: its middle is logit 0.
  const exact = plateauMiddlePoint(labels, probs, 0);
  assert.ok(Math.abs(logit(exact.threshold)) < 1e-9, `middle at logit ${logit(exact.threshold)}`);
  assert.deepEqual([exact.sensitivity, exact.specificity, exact.rule], [1, 1, 'youden-plateau-middle']);
  // The default tolerance also admits losing one PNEUMONIA film of 150 (J 0.993): a little higher.
  const mid = plateauMiddlePoint(labels, probs);
  const z = logit(mid.threshold);
  assert.ok(z > 0 && z < 0.1, `middle at logit ${z}`);
  assert.equal(mid.sensitivity, 1);
  assert.equal(mid.specificity, 1);
});

test('one hard film moving into the gap moves Youden across it, the middle hardly', () => {
  const before = saturated();
  const after = saturated(-0.9);
  const y0 = logit(balancedPoint(before.labels, before.probs).threshold);
  const y1 = logit(balancedPoint(after.labels, after.probs).threshold);
  assert.ok(Math.abs(y1 - y0) > 1.8, `Youden moved from ${y0} to ${y1}`);
  const m0 = logit(plateauMiddlePoint(before.labels, before.probs).threshold);
  const m1 = logit(plateauMiddlePoint(after.labels, after.probs).threshold);
  assert.ok(Math.abs(m1 - m0) < 0.1, `the middle moved from ${m0} to ${m1}`);
});

test("operatingPoints uses the plateau's middle by default and records the rule; 'youden' keeps the old point", () => {
  const { labels, probs } = saturated();
  const robust = operatingPoints(labels, probs);
  assert.equal(robust.balanced.rule, 'youden-plateau-middle');
  assert.equal(robust.balanced.threshold, plateauMiddlePoint(labels, probs).threshold);
  // Screening never lies above balanced (here both catch every pneumonia, so they coincide).
  assert.ok(robust.screening.threshold <= robust.balanced.threshold);
  const old = operatingPoints(labels, probs, SCREENING_SENSITIVITY, 'youden');
  assert.equal(old.balanced.rule, 'youden');
  assert.equal(old.balanced.threshold, balancedPoint(labels, probs).threshold);
});
