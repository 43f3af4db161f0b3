// The page offers one choice per distinct threshold: two operating points that coincide (as
// screening and balanced did on the shipped model before it was recalibrated) are one switch position.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { distinctOperatingPoints } from '../src/predict/operating_points';

test('coinciding operating points are one choice, named by both, the default first', () => {
  const same = distinctOperatingPoints({
    operatingPoints: { screening: { threshold: 0.557 }, balanced: { threshold: 0.557 } },
    defaultOperatingPoint: 'balanced',
  });
  assert.deepEqual(same, [{ names: ['balanced', 'screening'], threshold: 0.557 }]);
});

test("distinct operating points stay separate, in the model's order", () => {
  const two = distinctOperatingPoints({
    operatingPoints: { screening: { threshold: 0.154 }, balanced: { threshold: 0.557 }, strict: { threshold: 0.557 } },
    defaultOperatingPoint: 'balanced',
  });
  assert.deepEqual(
    two.map((d) => d.names),
    [['screening'], ['balanced', 'strict']],
  );
});
