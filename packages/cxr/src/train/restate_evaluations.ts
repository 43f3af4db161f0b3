// After `cxr calibrate`, the evaluations `cxr evaluate --out` stored in the model folder (predictions/ and
// metrics/, every split but the run's own val.json, which calibrate writes itself) hold probabilities of the
// old calibration and metrics at the old thresholds, so the rewritten report would draw new thresholds over
// old scores. A calibration maps the model's logit z to sigmoid(z / T + b), one monotone function per
// calibration: the old probability gives z back exactly, so each stored evaluation is restated under the new
// calibration without running the model. Where it cannot be (new test-time views change z itself; a
// threshold that was no operating point of the old calibration), the files are moved aside under stale/
// rather than left to contradict cxr.json.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { evaluate, evaluateKept, sigmoid } from '../eval';
import type { Metrics } from '../eval/metrics_schema';
import type { ModelMeta } from '../models/metadata';
import { Predictions } from '../report/run_dir';
import { makeDirs } from '../make_dirs';

/** What of a calibration the stored evaluations depend on. */
export type CalibrationState = Pick<ModelMeta, 'temperature' | 'logitBias' | 'operatingPoints' | 'tta'>;

export interface RestateResult {
  /** Evaluations restated under the new calibration (their names, e.g. test or eval-val). */
  restated: string[];
  /** Evaluations moved to stale/ with why. */
  stale: { name: string; why: string }[];
}

/** The model's logit behind a probability of calibration (T, b); ±Infinity for 1 and 0. */
function logitBehind(p: number, temperature: number, bias: number): number {
  return (Math.log(p) - Math.log1p(-p) - bias) * temperature;
}

/**
 * The operating point whose threshold an evaluation used, by name (thresholds are stored as computed);
 * undefined when none or several had it (two points can share a threshold on a small validation set).
 */
function pointOf(threshold: number, points: CalibrationState['operatingPoints']): string | undefined {
  const named = Object.keys(points).filter((name) => Math.abs(points[name].threshold - threshold) < 1e-12);
  return named.length === 1 ? named[0] : undefined;
}

function readJson(file: string): unknown {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

export function restateEvaluations(
  dir: string,
  before: CalibrationState,
  after: CalibrationState,
  log: (line: string) => void = () => {},
): RestateResult {
  const predDir = path.join(dir, 'predictions');
  const metricsDir = path.join(dir, 'metrics');
  const names = fs.existsSync(predDir)
    ? fs
        .readdirSync(predDir)
        .filter((f) => f.endsWith('.json') && f !== 'val.json')
        .map((f) => f.slice(0, -'.json'.length))
    : [];
  const result: RestateResult = { restated: [], stale: [] };
  const sameViews = JSON.stringify(before.tta) === JSON.stringify(after.tta);
  for (const name of names) {
    const metricsFile = path.join(metricsDir, `${name}.json`);
    const assessedFile = path.join(metricsDir, `${name}-assessed.json`);
    let why: string | undefined;
    try {
      const stored = readJson(path.join(predDir, `${name}.json`)) as Record<string, unknown>;
      const predictions = Predictions.parse(stored);
      const metrics = readJson(metricsFile) as Metrics;
      const point = pointOf(metrics.threshold, before.operatingPoints);
      if (!sameViews) why = 'new test-time views change the scores themselves';
      else if (point === undefined || !after.operatingPoints[point])
        why = `its threshold ${metrics.threshold} is not one operating point of the old calibration`;
      if (why === undefined && point !== undefined) {
        const threshold = after.operatingPoints[point].threshold;
        const probs = predictions.probs.map((p) =>
          sigmoid(
            logitBehind(p, before.temperature, before.logitBias ?? 0) / after.temperature + (after.logitBias ?? 0),
          ),
        );
        fs.writeFileSync(path.join(predDir, `${name}.json`), JSON.stringify({ ...stored, probs }));
        fs.writeFileSync(
          metricsFile,
          JSON.stringify(evaluate(predictions.labels, probs, { threshold }), null, 2) + '\n',
        );
        const verdicts = stored.verdicts as string[] | undefined;
        const assessed =
          verdicts && evaluateKept(predictions.labels, probs, (i) => verdicts[i] === 'assessed', { threshold });
        if (assessed) fs.writeFileSync(assessedFile, JSON.stringify(assessed, null, 2) + '\n');
        result.restated.push(name);
        log(`${name}: restated under the new calibration (${point} threshold ${threshold.toFixed(3)})`);
        continue;
      }
    } catch (e) {
      why = `it cannot be read (${(e as Error).message.split('\n')[0]})`;
    }
    // An earlier calibration's stale copy stays: this one goes beside it (name-2, name-3, ...).
    let aside = path.join(dir, 'stale', name);
    for (let k = 2; fs.existsSync(aside); k++) aside = path.join(dir, 'stale', `${name}-${k}`);
    makeDirs(aside);
    for (const f of [path.join(predDir, `${name}.json`), metricsFile, assessedFile])
      if (fs.existsSync(f)) fs.renameSync(f, path.join(aside, `${path.basename(path.dirname(f))}-${path.basename(f)}`));
    result.stale.push({ name, why: why ?? 'unknown' });
    log(`${name}: moved to ${aside} (${why}); run cxr evaluate --out again for figures under the new calibration`);
  }
  return result;
}
