// The robustness benchmark's ECE is `cxr evaluate`'s (the same function, the same bins), results that
// computed it otherwise (15 bins before 2026-12-05) are recognised, and an experiment resumed on such a
// result benchmarks the run again rather than putting the two ECEs side by side.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { evaluate, expectedCalibrationError, reliabilityBins } from '../src/eval/metrics';
import { runExperiment } from '../src/experiments/run_experiment';
import { METRIC_LABELS } from '../src/robustness/charts';
import {
  ECE_BINS,
  eceComparable,
  readRobustnessResult,
  type RobustnessResult,
  rowMetrics,
  summarise,
} from '../src/robustness/metrics';
import { DATA, makeTinyModel, tempDir } from './serve-fixtures';
import { needsData } from './shared-data';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const TRAIN = path.join(DATA, 'chest_xray', 'train');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

// Scores whose ECE depends on the bins: 0.61 (NORMAL) and 0.69 (PNEUMONIA) share a tenth, not a fifteenth.
const labels = [0, 0, 1, 0, 1, 1, 0, 1];
const probs = [0.05, 0.61, 0.69, 0.31, 0.93, 0.55, 0.2, 0.88];

test("a robustness row's ECE is `cxr evaluate`'s on the same scores", () => {
  const evaluated = evaluate(labels, probs, { bootstrap: { n: 0 } }).ece;
  assert.notEqual(evaluated, expectedCalibrationError(labels, probs, 15), 'the fixture tells the bins apart');
  assert.equal(rowMetrics(labels, probs, probs, 0.5).ece, evaluated);
  assert.equal(ECE_BINS, reliabilityBins(labels, probs).length);
  assert.match(METRIC_LABELS.ece, new RegExp(`\\(${ECE_BINS} bins\\)`));
});

/** A benchmark result with one clean row, as `cxr robustness` writes it (eceBins left out when undefined). */
function result(eceBins: number | undefined): RobustnessResult {
  const rows = [{ change: 'clean', strength: 0, parameter: 'none', ...rowMetrics(labels, probs, probs, 0.5) }];
  return {
    format: 'cxr-robustness/1',
    model: { name: 'tiny-test', version: '0.0.1', sha256: 'x', dir: '.' },
    data: { path: '.', source: 'test', n: labels.length, normal: 4, pneumonia: 4, files: [] },
    operatingPoint: { name: 'balanced', threshold: 0.5 },
    tta: [],
    seed: 1,
    ...(eceBins === undefined ? {} : { eceBins }),
    rows,
    summary: summarise(rows),
    outside: null,
    seconds: 1,
    createdAt: '2026-11-01T00:00:00.000Z',
  };
}

function writeResult(runDir: string, r: RobustnessResult): void {
  fs.mkdirSync(path.join(runDir, 'robustness'), { recursive: true });
  fs.writeFileSync(path.join(runDir, 'robustness', 'robustness.json'), JSON.stringify(r));
}

test('a result that does not record its bins was computed with 15 and is not comparable with evaluate', () => {
  const dir = tempDir('robustness-ece');
  dirs.push(dir);
  writeResult(path.join(dir, 'old'), result(undefined));
  writeResult(path.join(dir, 'new'), result(ECE_BINS));
  const old = readRobustnessResult(path.join(dir, 'old'))!;
  assert.equal(old.eceBins, 15);
  assert.equal(eceComparable(old), false);
  assert.equal(eceComparable(readRobustnessResult(path.join(dir, 'new'))!), true);
});

test('an experiment resumed on a 15-bin benchmark benchmarks the run again', {
  skip: needsData(TRAIN),
}, async () => {
  const dir = tempDir('robustness-ece-run');
  dirs.push(dir);
  const runDir = await makeTinyModel(path.join(dir, 'run'), { inputSize: 32 });
  fs.mkdirSync(path.join(runDir, 'metrics'));
  fs.writeFileSync(path.join(runDir, 'metrics', 'val.json'), JSON.stringify(evaluate(labels, probs)));
  writeResult(runDir, result(undefined));
  const lines: string[] = [];
  const summary = await runExperiment({
    data: TRAIN,
    runDir,
    recipeName: 'cxr',
    name: 'tiny-test',
    title: 'tiny',
    overrides: {},
    resume: true,
    robustness: { limit: 2, outside: false },
    log: (l) => lines.push(l),
  });
  assert.ok(
    lines.some((l) => l.startsWith('robustness of tiny-test')),
    lines.join('\n'),
  );
  const fresh = readRobustnessResult(runDir)!;
  assert.equal(fresh.eceBins, ECE_BINS);
  assert.equal(fresh.data.n, 4, 'benchmarked on the films asked for, not the old result');
  assert.equal(summary.robustness?.meanEce, fresh.summary.meanEce);
});
