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

test('a saturated calibration keeps the middle inside the plateau: distinct scores near 1 or 0 stay distinct', () => {
  // A temperature on its search's lower bound (0.05) on a nearly separated set: the hard NORMAL film at
  // logit 1.5 and the lowest PNEUMONIA film at 1.7 both score above 1 - 1e-12.
  const zs = [-8, -6, -5, -4, 1.5, 1.7, 3, 5, 6, 8];
  const labels = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1];
  const probs = zs.map((z) => sigmoid(z / 0.05));
  const mid = plateauMiddlePoint(labels, probs);
  assert.deepEqual([mid.sensitivity, mid.specificity], [1, 1], `threshold ${mid.threshold}`);
  assert.ok(mid.threshold > probs[4] && mid.threshold <= probs[5]);
  const z = Math.log(mid.threshold) - Math.log1p(-mid.threshold);
  // Doubles near 1 are 1.1e-16 apart, so 1 - sigmoid(34) = 1.7e-15 holds only to a few per cent.
  assert.ok(Math.abs(z - 32) < 0.1, `the middle of logits 30 and 34, not ${z}`);

  // Both ends above 1 - 1e-12, and (mirrored) both below 1e-12.
  const high = [0.1, 0.2, 1 - 1e-13, 1 - 5e-14, 1 - 2e-14, 1];
  const top = plateauMiddlePoint([0, 0, 0, 1, 1, 1], high, 0);
  assert.ok(top.threshold > high[2] && top.threshold <= high[3], `threshold ${top.threshold}`);
  assert.deepEqual([top.sensitivity, top.specificity], [1, 1]);
  const low = [0, 2e-14, 5e-14, 1e-13, 0.8, 0.9];
  const bottom = plateauMiddlePoint([0, 0, 0, 1, 1, 1], low, 0);
  assert.ok(bottom.threshold > low[2] && bottom.threshold <= low[3], `threshold ${bottom.threshold}`);
  assert.deepEqual([bottom.sensitivity, bottom.specificity], [1, 1]);
});

test('where no threshold lies between the two ends, the top of the plateau is taken', () => {
  // 1 - 2^-53 is the last double below 1: nothing lies between it and 1.
  const probs = [0.1, 1 - Number.EPSILON / 2, 1];
  const p = plateauMiddlePoint([0, 0, 1], probs, 0);
  assert.equal(p.threshold, 1);
  assert.deepEqual([p.sensitivity, p.specificity], [1, 1]);
});
