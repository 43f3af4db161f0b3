// A restated evaluation (train/restate_evaluations.ts) records one operating point name that the new cxr.json
// holds, never the joined "balanced = screening" calibrate prints: the report and `cxr evaluate` read the name
// back, and a reader looks it up in cxr.json. Here the name the evaluation recorded left the calibration, or
// never had its threshold, while other names at its threshold stay together.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { evaluate } from '../src/eval';
import { EvaluationOrigin } from '../src/eval/metrics_schema';
import { type CalibrationState, restateEvaluations } from '../src/train/restate_evaluations';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const labels = [0, 0, 1, 1];
const probs = [0.1, 0.3, 0.7, 0.9];

/** A model folder holding one evaluation `test` at `threshold` that records it was asked for `operatingPoint`. */
function folder(threshold: number, operatingPoint: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-restate-name-'));
  dirs.push(dir);
  fs.mkdirSync(path.join(dir, 'predictions'));
  fs.mkdirSync(path.join(dir, 'metrics'));
  fs.writeFileSync(path.join(dir, 'predictions', 'test.json'), JSON.stringify({ labels, probs }));
  const metrics = { ...evaluate(labels, probs, { threshold }), source: '/data/x (test)', operatingPoint };
  fs.writeFileSync(path.join(dir, 'metrics', 'test.json'), JSON.stringify(metrics));
  return dir;
}

function state(points: Record<string, number>, defaultOperatingPoint = 'balanced'): CalibrationState {
  const operatingPoints = Object.fromEntries(Object.entries(points).map(([n, t]) => [n, { threshold: t }]));
  return { temperature: 1, logitBias: 0, tta: ['identity'], operatingPoints, defaultOperatingPoint };
}

/** Restates the folder's evaluation; what its metrics file then records, and calibrate's lines. */
function restate(dir: string, before: CalibrationState, now: CalibrationState) {
  const lines: string[] = [];
  const r = restateEvaluations(dir, before, now, (l) => lines.push(l));
  assert.deepEqual(r, { restated: ['test'], stale: [], assessedStale: [] });
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'metrics', 'test.json'), 'utf8'));
  return { recorded: EvaluationOrigin.parse(json), threshold: json.threshold as number, log: lines.join('\n') };
}

test('an evaluation whose point left the calibration records one name it has, and says so', () => {
  const before = state({ screening: 0.5, balanced: 0.5, sensitive: 0.5 });
  const now = state({ screening: 0.6, balanced: 0.6 });
  const r = restate(folder(0.5, 'sensitive'), before, now);
  assert.equal(r.recorded.operatingPoint, 'balanced', "the model's default, of the names at its threshold");
  assert.ok(Object.hasOwn(now.operatingPoints, r.recorded.operatingPoint!), 'a name of the new cxr.json');
  assert.equal(r.recorded.source, '/data/x (test)');
  assert.equal(r.threshold, 0.6);
  // calibrate's line still names every point the evaluation stands for, and the name it now records.
  assert.match(r.log, /\(screening = balanced threshold 0\.600; it was evaluated at sensitive, which the new /);
  assert.match(r.log, /calibration no longer has: it now records balanced\)/);

  // Without the default among them: the first in cxr.json's order.
  const noDefault = restate(
    folder(0.5, 'sensitive'),
    state({ sensitive: 0.5, screening: 0.5, balanced: 0.5 }, 'sensitive'),
    state({ screening: 0.6, balanced: 0.6 }, 'screening'),
  );
  assert.equal(noDefault.recorded.operatingPoint, 'screening');
});

test('an evaluation recording a point that was not at its threshold records one that was', () => {
  const before = state({ screening: 0.5, balanced: 0.5, strict: 0.8 });
  const r = restate(folder(0.5, 'strict'), before, state({ screening: 0.6, balanced: 0.6, strict: 0.9 }));
  assert.equal(r.recorded.operatingPoint, 'balanced');
  assert.equal(r.threshold, 0.6);
  assert.match(r.log, /it was evaluated at strict, which was not at its threshold: it now records balanced\)/);
});

test('a recorded name the new calibration keeps at the shared threshold is kept', () => {
  const before = state({ screening: 0.5, balanced: 0.5 });
  const r = restate(folder(0.5, 'screening'), before, state({ screening: 0.6, balanced: 0.6 }));
  assert.equal(r.recorded.operatingPoint, 'screening');
  assert.doesNotMatch(r.log, /it was evaluated at/);
});
