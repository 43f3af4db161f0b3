// `cxr calibrate` restates the evaluations stored in a model folder under the new calibration
// (train/restate_evaluations.ts): where the old operating points coincide, where the new calibration parts
// them, where the assessed films' metrics cannot follow, and where a stored file cannot be read.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { evaluate, evaluateKept } from '../src/eval';
import { type CalibrationState, restateEvaluations } from '../src/train/restate_evaluations';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const labels = [0, 0, 1, 1];
const probs = [0.1, 0.3, 0.7, 0.9];

/** A model folder holding one evaluation `test` at `threshold`, with `extra` in its predictions file. */
function folder(threshold: number, extra: Record<string, unknown> = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-restate-'));
  dirs.push(dir);
  fs.mkdirSync(path.join(dir, 'predictions'));
  fs.mkdirSync(path.join(dir, 'metrics'));
  fs.writeFileSync(path.join(dir, 'predictions', 'test.json'), JSON.stringify({ labels, probs, ...extra }));
  fs.writeFileSync(path.join(dir, 'metrics', 'test.json'), JSON.stringify(evaluate(labels, probs, { threshold })));
  return dir;
}

function state(
  points: Record<string, number>,
  temperature = 1,
  defaultOperatingPoint: string | undefined = 'balanced',
): CalibrationState {
  return {
    temperature,
    logitBias: 0,
    tta: ['identity'],
    operatingPoints: Object.fromEntries(Object.entries(points).map(([n, t]) => [n, { threshold: t }])),
    ...(defaultOperatingPoint ? { defaultOperatingPoint } : {}),
  };
}

const read = (dir: string, file: string) => JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
const exists = (dir: string, file: string) => fs.existsSync(path.join(dir, file));

test('an evaluation at screening = balanced is restated when both keep one threshold', () => {
  const dir = folder(0.5);
  const lines: string[] = [];
  const before = state({ screening: 0.5, balanced: 0.5 });
  const r = restateEvaluations(dir, before, state({ screening: 0.6, balanced: 0.6 }, 2), (l) => lines.push(l));
  assert.deepEqual(r, { restated: ['test'], stale: [], assessedStale: [] });
  assert.equal(read(dir, 'metrics/test.json').threshold, 0.6);
  // Temperature 2 halves every logit: 0.9 = sigmoid(2.197) becomes sigmoid(1.099) = 0.75.
  assert.ok(Math.abs(read(dir, 'predictions/test.json').probs[3] - 0.75) < 1e-12);
  assert.match(lines.join('\n'), /test: restated .*screening = balanced threshold 0\.600/);
  assert.ok(!exists(dir, 'stale'));
});

test('where the new calibration parts coinciding points, the default is taken, else the first, and said', () => {
  const dir = folder(0.5);
  const lines: string[] = [];
  const before = state({ screening: 0.5, balanced: 0.5 });
  const r = restateEvaluations(dir, before, state({ screening: 0.2, balanced: 0.6 }), (l) => lines.push(l));
  assert.deepEqual(r.restated, ['test']);
  assert.equal(read(dir, 'metrics/test.json').threshold, 0.6, "balanced, the model's default");
  assert.match(lines.join('\n'), /restated at balanced, the model's default; for screening run cxr evaluate/);

  const other = folder(0.5);
  const noDefault = state({ screening: 0.5, balanced: 0.5 }, 1, 'strict');
  restateEvaluations(other, noDefault, state({ screening: 0.2, balanced: 0.6 }));
  assert.equal(read(other, 'metrics/test.json').threshold, 0.2, "screening, first in cxr.json's order");
});

test('a threshold that was no operating point is moved to stale/ with a true reason', () => {
  const dir = folder(0.45);
  const r = restateEvaluations(dir, state({ screening: 0.5, balanced: 0.5 }), state({ screening: 0.6, balanced: 0.6 }));
  assert.deepEqual(r.restated, []);
  assert.match(r.stale[0].why, /threshold 0\.45 was none of the old calibration's operating points/);
  assert.ok(exists(dir, 'stale/test/metrics-test.json'));
  assert.ok(!exists(dir, 'metrics/test.json'));
});

test('metrics of the assessed films follow the new calibration, or go to stale/ where they cannot', () => {
  const pts = state({ screening: 0.2, balanced: 0.5 });
  const next = state({ screening: 0.3, balanced: 0.6 }, 2);
  const old = JSON.stringify(evaluate(labels, probs, { threshold: 0.5 }));
  // With verdicts, the assessed films' metrics are recomputed at the new threshold.
  const verdicts = ['assessed', 'refused', 'assessed', 'assessed'];
  const withVerdicts = folder(0.5, { verdicts });
  fs.writeFileSync(path.join(withVerdicts, 'metrics', 'test-assessed.json'), old);
  restateEvaluations(withVerdicts, pts, next);
  const newProbs = read(withVerdicts, 'predictions/test.json').probs as number[];
  const expected = evaluateKept(labels, newProbs, (i) => verdicts[i] === 'assessed', { threshold: 0.6 });
  assert.deepEqual(read(withVerdicts, 'metrics/test-assessed.json'), expected);

  // Without verdicts the assessed films are unknown: the old file would keep the old figures, so it goes.
  for (const [extra, why] of [
    [{}, /holds no verdicts/],
    [{ verdicts: ['refused', 'refused', 'refused', 'refused'] }, /assesses no film/],
  ] as const) {
    const dir = folder(0.5, extra);
    fs.writeFileSync(path.join(dir, 'metrics', 'test-assessed.json'), old);
    const lines: string[] = [];
    const r = restateEvaluations(dir, pts, next, (l) => lines.push(l));
    assert.deepEqual(r.restated, ['test']);
    assert.ok(!exists(dir, 'metrics/test-assessed.json'), 'no file keeps the old figures beside the new');
    assert.match(r.assessedStale?.[0]?.why ?? '', why);
    assert.ok(exists(dir, 'stale/test/metrics-test-assessed.json'));
    assert.match(lines.join('\n'), /test-assessed\.json moved to .*stale/);
  }
});

test('an unreadable or invalid stored file is moved to stale/ with what is wrong, and calibrate goes on', () => {
  const pts = state({ screening: 0.2, balanced: 0.5 });
  const next = state({ screening: 0.3, balanced: 0.6 }, 2);
  const cases: [string, (dir: string) => void, RegExp][] = [
    ['not JSON', (d) => fs.writeFileSync(path.join(d, 'metrics', 'test.json'), '{'), /metrics\/test\.json is not JSON/],
    [
      'no threshold',
      (d) => fs.writeFileSync(path.join(d, 'metrics', 'test.json'), JSON.stringify({ n: 4 })),
      /metrics\/test\.json: not a metrics file: .*threshold/,
    ],
    ['missing', (d) => fs.rmSync(path.join(d, 'metrics', 'test.json')), /metrics\/test\.json cannot be read/],
    [
      'verdicts of other films',
      (d) =>
        fs.writeFileSync(path.join(d, 'predictions', 'test.json'), JSON.stringify({ labels, probs, verdicts: [] })),
      /has 0 verdicts for 4 films/,
    ],
    [
      'verdicts not strings',
      (d) =>
        fs.writeFileSync(path.join(d, 'predictions', 'test.json'), JSON.stringify({ labels, probs, verdicts: [1] })),
      /predictions\/test\.json has unreadable verdicts/,
    ],
  ];
  for (const [what, spoil, why] of cases) {
    const dir = folder(0.5);
    spoil(dir);
    const r = restateEvaluations(dir, pts, next);
    assert.equal(r.stale.length, 1, what);
    assert.match(r.stale[0].why, why, what);
    assert.doesNotMatch(r.stale[0].why, /\n/, `${what}: one line`);
    assert.ok(exists(dir, 'stale/test/predictions-test.json'), what);
  }
});

test('the films an evaluation found the model trained on stay recorded after a restate', () => {
  const pts = state({ screening: 0.2, balanced: 0.5 });
  const next = state({ screening: 0.3, balanced: 0.6 }, 2);
  const overlap = {
    warning: 'warning: of the 4 films, 1 were in m training split (it learned them)',
    root: '/data/chest_xray',
    matchedBy: 'fingerprint',
    training: { count: 1, files: ['NORMAL/a.jpeg'] },
    validation: { count: 0, files: [] },
  };
  const dir = folder(0.5);
  const metricsFile = path.join(dir, 'metrics', 'test.json');
  fs.writeFileSync(metricsFile, JSON.stringify({ ...read(dir, 'metrics/test.json'), trainingOverlap: overlap }));
  assert.deepEqual(restateEvaluations(dir, pts, next).restated, ['test']);
  assert.equal(read(dir, 'metrics/test.json').threshold, 0.6);
  assert.deepEqual(read(dir, 'metrics/test.json').trainingOverlap, overlap);
  // One that found none records that it looked (null), and keeps saying so.
  const none = folder(0.5);
  fs.writeFileSync(
    path.join(none, 'metrics', 'test.json'),
    JSON.stringify({ ...read(none, 'metrics/test.json'), trainingOverlap: null }),
  );
  restateEvaluations(none, pts, next);
  assert.equal(read(none, 'metrics/test.json').trainingOverlap, null);
});
