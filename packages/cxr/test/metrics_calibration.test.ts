import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyTemperature,
  balancedPoint,
  confusionAt,
  evaluate,
  fitPlatt,
  fitTemperature,
  logit,
  operatingPoints,
  SCREENING_SENSITIVITY,
  screeningPoint,
  seededRandom,
  sigmoid,
  temperatureBoundNote,
  temperatureNll,
} from '../src/eval';

function normals(n: number, seed: number): number[] {
  const rand = seededRandom(seed);
  const out: number[] = [];
  while (out.length < n) {
    const u = 1 - rand();
    const v = rand();
    out.push(Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
  }
  return out;
}

/** Labels drawn from well-calibrated logits; the model reports them multiplied by `t`. */
function overconfident(n: number, t: number, seed: number) {
  const rand = seededRandom(seed + 1);
  const trueLogits = normals(n, seed).map((z) => 2 * z);
  const labels = trueLogits.map((z) => (rand() < sigmoid(z) ? 1 : 0));
  return { labels, logits: trueLogits.map((z) => z * t) };
}

test('temperature scaling recovers a known temperature', () => {
  for (const t of [0.5, 2.5]) {
    const { labels, logits } = overconfident(20000, t, 11);
    const fitted = fitTemperature(logits, labels);
    assert.ok(Math.abs(fitted - t) / t < 0.06, `T = ${t}: fitted ${fitted}`);
    assert.ok(temperatureNll(logits, labels, fitted) < temperatureNll(logits, labels, 1));
    const probs = logits.map(sigmoid);
    // Calibration improves; the ranking and so the AUC do not change.
    const before = evaluate(labels, probs, { bootstrap: { n: 0 } });
    const after = evaluate(labels, applyTemperature(probs, fitted), { bootstrap: { n: 0 } });
    assert.ok(after.ece < before.ece, `ece ${before.ece} -> ${after.ece}`);
    assert.ok(Math.abs(after.auc! - before.auc!) < 1e-9);
  }
});

test('the temperature search stays within its bounds on separable data', () => {
  const t = fitTemperature([-3, -1, 2, 4], [0, 0, 1, 1], { min: 0.1, max: 10 });
  assert.ok(t >= 0.1 && t < 0.1001, String(t));
  assert.throws(() => fitTemperature([], []), RangeError);
  assert.throws(() => fitTemperature([Infinity], [1]), /finite/);
});

test('a fit cut short at a bound of the default range gets a note saying which and why', () => {
  // Separable: the fit runs into the lower bound. Uninformative (scores unrelated to labels): the upper.
  const sharp = fitTemperature([-3, -1, 2, 4], [0, 0, 1, 1]);
  assert.match(String(temperatureBoundNote(sharp)), /lower bound T=0\.05: the validation films are separated/);
  const flat = fitTemperature([-3, 3, -3, 3], [0, 0, 1, 1]);
  assert.match(String(temperatureBoundNote(flat)), /upper bound T=20: the validation scores hardly separate/);
  const { labels, logits } = overconfident(2000, 2.5, 3);
  assert.equal(temperatureBoundNote(fitTemperature(logits, labels)), null);
});

test('Platt scaling recovers a known slope and bias', () => {
  // The model reports t·z − k for a well-calibrated logit z: sigmoid(reported / t + k / t) is calibrated.
  for (const [t, k] of [
    [0.5, 1.5],
    [2, -3],
  ]) {
    const { labels, logits } = overconfident(20000, 1, 5);
    const reported = logits.map((z) => t * z - k);
    const fit = fitPlatt(reported, labels);
    assert.ok(Math.abs(fit.temperature - t) / t < 0.05, `T ${fit.temperature} vs ${t}`);
    assert.ok(Math.abs(fit.bias - k / t) < 0.1, `bias ${fit.bias} vs ${k / t}`);
    // Temperature alone cannot move the level: its cross-entropy is worse.
    const nll = (T: number, b: number) =>
      reported.reduce((s, z, i) => s - Math.log(labels[i] ? sigmoid(z / T + b) : 1 - sigmoid(z / T + b)), 0);
    assert.ok(nll(fit.temperature, fit.bias) < nll(fitTemperature(reported, labels), 0));
  }
});

test('Platt scaling stays finite on separable data and keeps the ranking', () => {
  const logits = [-4, -3, -2.5, -1, 1, 2, 3, 5, 6, 7];
  const labels = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1];
  const fit = fitPlatt(logits, labels);
  assert.ok(fit.temperature > 0 && Number.isFinite(fit.temperature), `T ${fit.temperature}`);
  assert.ok(Number.isFinite(fit.bias));
  assert.throws(() => fitPlatt([1, 2], [1]), /equally long/);
  assert.throws(() => fitPlatt([1, Number.NaN], [1, 0]), /finite/);
});

test('applyTemperature works from probabilities', () => {
  close(applyTemperature(0.5, 3), 0.5);
  close(applyTemperature(sigmoid(4), 2), sigmoid(2));
  close(applyTemperature(0.2, 1), 0.2);
  assert.deepEqual(applyTemperature([0.5, 0.5], 2), [0.5, 0.5]);
  close(logit(sigmoid(-3.25)), -3.25, 1e-9);
  assert.ok(applyTemperature(1, 2) < 1 && applyTemperature(0, 0.5) >= 0);
  assert.throws(() => applyTemperature(0.3, 0), RangeError);
});

function close(a: number, b: number, tol = 1e-12) {
  assert.ok(Math.abs(a - b) <= tol, `expected ${b}, got ${a}`);
}

test('operating points meet their definitions', () => {
  const rand = seededRandom(5);
  const labels: number[] = [];
  const probs: number[] = [];
  for (let i = 0; i < 400; i++) {
    const y = rand() < 0.6 ? 1 : 0;
    labels.push(y);
    probs.push(Math.round(1000 * Math.min(1, Math.max(0, (y ? 0.62 : 0.38) + 0.22 * normals(1, 100 + i)[0]))) / 1000);
  }
  const sens = (t: number) => {
    const c = confusionAt(labels, probs, t);
    return { sensitivity: c.tp / (c.tp + c.fn), specificity: c.tn / (c.tn + c.fp) };
  };
  const { screening, balanced } = operatingPoints(labels, probs, SCREENING_SENSITIVITY, 'youden');
  assert.equal(screening.name, 'screening');
  assert.ok(screening.sensitivity >= SCREENING_SENSITIVITY);
  assert.deepEqual(sens(screening.threshold), {
    sensitivity: screening.sensitivity,
    specificity: screening.specificity,
  });
  // Any higher threshold loses sensitivity below the target.
  const higher = [...new Set(probs)].filter((p) => p > screening.threshold);
  for (const t of higher) assert.ok(sens(t).sensitivity < SCREENING_SENSITIVITY, `threshold ${t} also reaches 99%`);

  assert.equal(balanced.name, 'balanced');
  const j = balanced.sensitivity + balanced.specificity - 1;
  for (const t of new Set(probs)) {
    const s = sens(t);
    assert.ok(s.sensitivity + s.specificity - 1 <= j + 1e-12, `threshold ${t} has a higher Youden J`);
  }
  assert.deepEqual(sens(balanced.threshold), { sensitivity: balanced.sensitivity, specificity: balanced.specificity });
  assert.ok(screening.threshold < balanced.threshold, 'screening is a distinct, more sensitive point here');
});

test('operating points on a tiny example', () => {
  const labels = [1, 1, 1, 0, 1, 0, 0, 1, 0, 0];
  const probs = [0.9, 0.8, 0.7, 0.7, 0.6, 0.4, 0.4, 0.3, 0.2, 0.1];
  // All five positives are reached first at 0.3 (3 false positives above it).
  assert.deepEqual(screeningPoint(labels, probs), {
    name: 'screening',
    threshold: 0.3,
    sensitivity: 1,
    specificity: 0.4,
    rule: 'sensitivity>=0.95',
  });
  assert.deepEqual(screeningPoint(labels, probs, 0.8), {
    name: 'screening',
    threshold: 0.6,
    sensitivity: 0.8,
    specificity: 0.8,
    rule: 'sensitivity>=0.8',
  });
  // Youden J by threshold: 0.9 .2, 0.8 .4, 0.7 .4, 0.6 .6, 0.4 .2, 0.3 .4, 0.2 .2, 0.1 0.
  assert.deepEqual(balancedPoint(labels, probs), {
    name: 'balanced',
    threshold: 0.6,
    sensitivity: 0.8,
    specificity: 0.8,
    rule: 'youden',
  });
  assert.throws(() => balancedPoint([1, 1], [0.2, 0.3]), /both/);
});
