import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  averagePrecision,
  evaluate,
  formatMetricsTable,
  Metrics,
  pairedAucDifference,
  prCurve,
  reliabilityBins,
  rocAuc,
  rocCurve,
  seededRandom,
  wilsonInterval,
} from '../src/eval';

const close = (actual: number | null, expected: number, tol = 1e-9, what = '') => {
  assert.ok(actual !== null && Math.abs(actual - expected) <= tol, `${what}: expected ${expected}, got ${actual}`);
};

// Ten cases with a tie across classes at 0.7 and a tie within a class at 0.4.
const labels = [1, 1, 1, 0, 1, 0, 0, 1, 0, 0];
const probs = [0.9, 0.8, 0.7, 0.7, 0.6, 0.4, 0.4, 0.3, 0.2, 0.1];

test('metrics on a small example match values computed by hand', () => {
  const m = evaluate(labels, probs, { threshold: 0.5, bootstrap: { n: 200, seed: 7 } });
  // Called positive (>= 0.5): 0.9 0.8 0.7 0.7 0.6 -> labels 1 1 1 0 1.
  assert.deepEqual(m.confusion, { tp: 4, fp: 1, tn: 4, fn: 1 });
  assert.equal(m.n, 10);
  close(m.accuracy, 0.8, 1e-12, 'accuracy');
  close(m.sensitivity, 0.8, 1e-12, 'sensitivity');
  close(m.specificity, 0.8, 1e-12, 'specificity');
  close(m.precision, 0.8, 1e-12, 'precision');
  close(m.f1, 0.8, 1e-12, 'f1');
  // Positives beat 5, 5, 4.5 (tie at 0.7), 4 and 2 negatives: 20.5 / 25.
  close(m.auc, 0.82, 1e-12, 'auc');
  // AP = .2*1 + .2*1 + .2*(3/4) + .2*(4/5) + .2*(5/8)
  close(m.pr_auc, 0.835, 1e-12, 'pr_auc');
  // Squared errors: .01 .04 .09 .49 .16 .16 .16 .49 .04 .01
  close(m.brier, 0.165, 1e-12, 'brier');
  // Bins 9,8,7(two),6,4(two),3,2,1: gaps .1 .2 .2x2 .4 .4x2 .7 .2 .1 over 10 cases.
  close(m.ece, 0.29, 1e-12, 'ece');
  assert.equal(m.threshold, 0.5);
  assert.equal(m.notes, undefined);
  // Wilson 8/10.
  close(m.ci95.accuracy[0], 0.4901624, 1e-6, 'acc lo');
  close(m.ci95.accuracy[1], 0.9433178, 1e-6, 'acc hi');
  const [lo, hi] = m.ci95.auc!;
  assert.ok(lo <= 0.82 && 0.82 <= hi && lo >= 0 && hi <= 1, `auc CI ${lo}..${hi}`);
  // The shape is what the run directory stores.
  Metrics.parse(JSON.parse(JSON.stringify(m)));
});

test('the bootstrap is reproducible from its seed', () => {
  const a = evaluate(labels, probs, { bootstrap: { n: 300, seed: 42 } });
  const b = evaluate(labels, probs, { bootstrap: { n: 300, seed: 42 } });
  const c = evaluate(labels, probs, { bootstrap: { n: 300, seed: 43 } });
  assert.deepEqual(a.ci95.auc, b.ci95.auc);
  assert.notDeepEqual(a.ci95.auc, c.ci95.auc);
});

test('the AUC bootstrap interval narrows with more data and covers the truth', () => {
  const rand = seededRandom(3);
  const ys: number[] = [];
  const ps: number[] = [];
  for (let i = 0; i < 600; i++) {
    const y = i % 2;
    ys.push(y);
    // Positives ~ U(0.3, 1), negatives ~ U(0, 0.7): true AUC = 1 - 0.5 * 0.4 * 0.4 / (0.7 * 0.7).
    ps.push(y ? 0.3 + 0.7 * rand() : 0.7 * rand());
  }
  const truth = 1 - (0.5 * 0.4 * 0.4) / 0.49;
  const m = evaluate(ys, ps);
  const [lo, hi] = m.ci95.auc!;
  assert.ok(lo < truth && truth < hi, `[${lo}, ${hi}] should cover ${truth}`);
  assert.ok(hi - lo < 0.08, `interval too wide: ${hi - lo}`);
});

test('Wilson interval matches published values', () => {
  // Newcombe (1998), Stat Med 17:857, table I.
  const a = wilsonInterval(81, 263)!;
  close(a[0], 0.2553, 5e-5, '81/263 lo');
  close(a[1], 0.3662, 5e-5, '81/263 hi');
  const b = wilsonInterval(15, 148)!;
  close(b[0], 0.0624, 5e-5, '15/148 lo');
  close(b[1], 0.1605, 5e-5, '15/148 hi');
  // 0/n: lower 0, upper z^2 / (n + z^2).
  const z2 = 1.959963984540054 ** 2;
  assert.deepEqual(wilsonInterval(0, 20), [0, z2 / (20 + z2)]);
  assert.equal(wilsonInterval(0, 0), null);
  assert.throws(() => wilsonInterval(3, 2), RangeError);
});

test('AUC is 1, 0.5 and 0 for perfect, uninformative and inverted scores', () => {
  const ys = [0, 0, 0, 1, 1, 1];
  assert.equal(rocAuc(ys, [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]), 1);
  assert.equal(rocAuc(ys, [0.9, 0.8, 0.7, 0.3, 0.2, 0.1]), 0);
  assert.equal(rocAuc(ys, [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]), 0.5);
  assert.equal(rocAuc([0, 1, 0, 1], [0.2, 0.2, 0.8, 0.8]), 0.5);
  const perfect = evaluate(ys, [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], { bootstrap: { n: 100, seed: 1 } });
  assert.deepEqual(perfect.ci95.auc, [1, 1]);
  assert.equal(perfect.pr_auc, 1);
});

test('a single-class set gives null AUC with a reason, and no NaN anywhere', () => {
  const m = evaluate([0, 0, 0, 0], [0.1, 0.6, 0.3, 0.2]);
  const json = JSON.stringify(m);
  assert.ok(!json.includes('NaN') && !json.includes('Infinity'), json);
  assert.equal(m.auc, null);
  assert.equal(m.pr_auc, null);
  assert.equal(m.sensitivity, null);
  assert.equal(m.ci95.auc, null);
  assert.equal(m.ci95.sensitivity, null);
  assert.equal(m.specificity, 0.75);
  assert.equal(m.f1, 0);
  assert.ok(
    m.notes?.some((n) => n.includes('AUC')),
    String(m.notes),
  );
  Metrics.parse(JSON.parse(json));

  const allPos = evaluate([1, 1, 1], [0.2, 0.4, 0.9], { threshold: 0.95 });
  assert.equal(allPos.auc, null);
  assert.equal(allPos.specificity, null);
  assert.equal(allPos.precision, null);
  assert.equal(allPos.pr_auc, 1);
  assert.ok(!JSON.stringify(allPos).includes('NaN'));
});

test('invalid input is rejected with a clear error', () => {
  assert.throws(() => evaluate([], []), /empty/);
  assert.throws(() => evaluate([0, 1], [0.5]), /length/);
  assert.throws(() => evaluate([0, 2], [0.5, 0.5]), /labels\[1\]/);
  assert.throws(() => evaluate([0, 1], [0.5, NaN]), /probs\[1\]/);
  assert.throws(() => evaluate([0, 1], [0.5, 1.2]), /probs\[1\]/);
  assert.throws(() => evaluate([0, 1], [0.5, 0.5], { threshold: 2 }), /threshold/);
});

test('ROC and PR curves and reliability bins give the plotted points', () => {
  const roc = rocCurve(labels, probs);
  assert.deepEqual(roc[0], { threshold: null, fpr: 0, tpr: 0 });
  assert.deepEqual(roc[roc.length - 1], { threshold: 0.1, fpr: 1, tpr: 1 });
  // One point per distinct probability (8) plus the origin.
  assert.equal(roc.length, 9);
  assert.deepEqual(roc[3], { threshold: 0.7, fpr: 0.2, tpr: 0.6 });
  // Trapezoids under the ROC points give the same AUC as Mann–Whitney.
  let area = 0;
  for (let i = 1; i < roc.length; i++) area += ((roc[i].fpr - roc[i - 1].fpr) * (roc[i].tpr + roc[i - 1].tpr)) / 2;
  close(area, 0.82, 1e-12, 'trapezoid');

  const pr = prCurve(labels, probs);
  assert.deepEqual(pr[0], { threshold: null, recall: 0, precision: 1 });
  assert.deepEqual(pr[3], { threshold: 0.7, recall: 0.6, precision: 0.75 });
  assert.deepEqual(pr[pr.length - 1], { threshold: 0.1, recall: 1, precision: 0.5 });
  close(averagePrecision(labels, probs), 0.835, 1e-12, 'ap');
  // Perfectly ranked, 9 positives: exactly 1, never a hair over (which the metrics schema refuses).
  const nine = [...Array(9).fill(1), 0, 0];
  assert.equal(
    averagePrecision(
      nine,
      nine.map((y, i) => (y ? 0.9 - i / 100 : 0.1 + i / 100)),
    ),
    1,
  );
  Metrics.parse(
    JSON.parse(
      JSON.stringify(
        evaluate(
          nine,
          nine.map((y) => (y ? 0.9 : 0.1)),
        ),
      ),
    ),
  );

  const bins = reliabilityBins(labels, probs);
  assert.equal(bins.length, 10);
  assert.deepEqual(bins[0], { lo: 0, hi: 0.1, count: 0, meanProb: null, fracPositive: null });
  assert.equal(bins[7].count, 2);
  close(bins[7].meanProb, 0.7, 1e-12);
  assert.equal(bins[7].fracPositive, 0.5);
  assert.equal(reliabilityBins([1], [1])[9].count, 1, 'p = 1 falls in the last bin');
});

test('the terminal table shows values, intervals and the confusion matrix', () => {
  const text = formatMetricsTable(evaluate(labels, probs, { bootstrap: { n: 100, seed: 1 } }), { title: 'test split' });
  assert.match(text, /^test split/);
  assert.match(text, /Sensitivity\s+80\.0%\s+37\.6% – 96\.4%/);
  assert.match(text, /ROC AUC\s+0\.820\s+0\.\d{3} – [01]\.\d{3}/);
  assert.match(text, /actual pneumonia\s+1\s+4/);
  assert.match(text, /actual normal\s+4\s+1/);
});

test('pairedAucDifference: the AUC difference on the same cases, with a paired bootstrap interval', () => {
  const rand = seededRandom(11);
  const labels: number[] = [];
  const weak: number[] = [];
  const strong: number[] = [];
  for (let i = 0; i < 300; i++) {
    const y = i % 3 === 0 ? 0 : 1;
    const noise = rand() + rand() - 1;
    labels.push(y);
    weak.push(1 / (1 + Math.exp(-((y ? 0.6 : -0.6) + 2 * noise))));
    strong.push(1 / (1 + Math.exp(-((y ? 2 : -2) + 2 * noise))));
  }
  const d = pairedAucDifference(labels, weak, strong, { n: 400, seed: 3 })!;
  close(d.difference, rocAuc(labels, strong)! - rocAuc(labels, weak)!, 1e-12, 'difference');
  assert.ok(
    d.ci95![0] > 0 && d.ci95![0] < d.difference && d.difference < d.ci95![1],
    `interval ${d.ci95} around ${d.difference}, above 0`,
  );
  // The same model against itself: no difference in any resample.
  assert.deepEqual(pairedAucDifference(labels, weak, weak, { n: 50 }), { difference: 0, ci95: [0, 0] });
  // The paired interval is narrower than the two unpaired AUC intervals' spread would suggest.
  const a = evaluate(labels, weak, { bootstrap: { n: 400, seed: 3 } }).ci95.auc!;
  assert.ok(d.ci95![1] - d.ci95![0] < (a[1] - a[0]) * 2);
  assert.equal(pairedAucDifference([1, 1, 1], [0.2, 0.5, 0.9], [0.1, 0.2, 0.3]), null, 'one class only: no AUC');
});
