// `cxr ood evaluate`'s verdict: the gate's threshold is a percentile of the validation films it counts,
// so their false alarms are low by construction; the bars are met only when the held-out estimate meets
// the false-alarm bar too, and the text says which of the two misses it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HeldOutEstimate, HeldOutRate } from '../src/robustness/ood_heldout';
import { formatGateReport, type GateReport, judgeBars, type RateRow } from '../src/robustness/ood_evaluate';

const row = (set: string, group: string, n: number, stopped: number): RateRow => ({
  set,
  group,
  n,
  stopped,
  rate: stopped / n,
  reasons: stopped ? { OOD: stopped } : {},
});
const rate = (n: number, stopped: number): HeldOutRate => ({ n, stopped, rate: stopped / n });

// In-sample: 1 of 200 films stopped (0.5%); every corpus kind refused.
const falseAlarms = {
  overall: row('films', 'all', 200, 1),
  NORMAL: row('films', 'NORMAL', 100, 1),
  PNEUMONIA: row('films', 'PNEUMONIA', 100, 0),
};
const corpus = [row('photo', 'all', 4, 4), row('document', 'all', 4, 4)];

function heldOut(normal: number, pneumonia: number): HeldOutEstimate {
  return {
    method: 'two halves',
    percentile: 99.5,
    thresholds: [10, 11],
    rates: { overall: rate(200, normal + pneumonia), NORMAL: rate(100, normal), PNEUMONIA: rate(100, pneumonia) },
    inSample: { overall: rate(200, 1), NORMAL: rate(100, 1), PNEUMONIA: rate(100, 0) },
  };
}

function report(h: HeldOutEstimate | null): GateReport {
  return {
    model: '/m',
    gate: h ? { format: 'cxr-ood/2', threshold: 10.5, classMeans: true } : null,
    notes: [],
    films: [falseAlarms.NORMAL, falseAlarms.PNEUMONIA],
    falseAlarms,
    corpus,
    heldOut: h,
    bars: judgeBars(falseAlarms, corpus, h),
  };
}

test('met in-sample but 15% held out: the bars are not met, and the text says which', () => {
  const r = report(heldOut(20, 10));
  assert.equal(r.bars.inSampleMet, true);
  assert.equal(r.bars.heldOutMet, false);
  assert.equal(r.bars.met, false);
  assert.deepEqual(r.bars.failures, [
    'held out: false alarms on all films 15.0% > 1.0%',
    'held out: false alarms on NORMAL films 20.0% > 1.0%',
    'held out: false alarms on PNEUMONIA films 10.0% > 1.0%',
  ]);
  const text = formatGateReport(r);
  assert.match(
    text,
    new RegExp(
      'in-sample: bars met; held out: 15\\.0% false alarms \\(NORMAL 20\\.0%, PNEUMONIA 10\\.0%\\); ' +
        'overall 15\\.0%, NORMAL 20\\.0% and PNEUMONIA 10\\.0% are over the 1\\.0% bar',
    ),
  );
  assert.match(text, /^bars NOT met: held out: false alarms on all films 15\.0% > 1\.0%/m);
  assert.doesNotMatch(text, /^bars met$/m);
});

test('within the bar in-sample and held out: bars met', () => {
  const r = report(heldOut(1, 0));
  assert.deepEqual([r.bars.met, r.bars.inSampleMet, r.bars.heldOutMet], [true, true, true]);
  const text = formatGateReport(r);
  assert.match(text, /held out: 0\.5% false alarms \(NORMAL 1\.0%, PNEUMONIA 0\.0%\); within the 1\.0% bar/);
  assert.match(text, /^bars met$/m);
});

// Held out, 2 of 100 NORMAL films stopped and no PNEUMONIA film: 1.0% overall, at the bar, while NORMAL's 2.0% is
// over it. The line named only the overall figure and then "over the bar"; it names NORMAL.
test('a class over the bar while the overall rate is not: the line names the class', () => {
  const r = report(heldOut(2, 0));
  assert.equal(r.bars.heldOutMet, false);
  const text = formatGateReport(r);
  assert.match(
    text,
    /held out: 1\.0% false alarms \(NORMAL 2\.0%, PNEUMONIA 0\.0%\); NORMAL 2\.0% is over the 1\.0% bar$/m,
  );
  assert.doesNotMatch(text, /, over the/);
});

test('without a gate there is no held-out estimate: the in-sample verdict stands alone', () => {
  const r = report(null);
  assert.deepEqual([r.bars.met, r.bars.inSampleMet, r.bars.heldOutMet], [true, true, null]);
  assert.doesNotMatch(formatGateReport(r), /held out/);
});

test('an in-sample miss is named as in-sample, a refusal miss as such', () => {
  const worse = { ...falseAlarms, NORMAL: row('films', 'NORMAL', 100, 3) };
  const b = judgeBars(worse, [row('photo', 'all', 4, 3)], heldOut(0, 0));
  assert.deepEqual([b.met, b.inSampleMet, b.heldOutMet], [false, false, true]);
  assert.deepEqual(b.failures, [
    'in-sample false alarms on NORMAL films 3.0% > 1.0%',
    'refusal of photo 75.0% < 95.0%',
  ]);
});
