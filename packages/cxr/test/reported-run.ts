// A run folder as `cxr train` leaves it (cxr.json with these operating points, validation scores and metrics),
// reported with `cxr report`'s writer: for the tests that read what the report says of a model's points.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { evaluate, operatingPoints } from '../src/eval';
import { writeReport } from '../src/report';
import { syntheticScores } from './synthetic-scores';

/** A JSON file written where its folder may not exist yet. */
export function writeJsonFile(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value));
}

/** The report page (index.html) of a tiny run in `dir` whose cxr.json records `points`. */
export async function reportOfPoints(dir: string, points: Record<string, unknown>): Promise<string> {
  const val = syntheticScores(60, 35, 1, 1.2);
  writeJsonFile(path.join(dir, 'cxr.json'), {
    name: 'tiny',
    version: '0.0.1',
    arch: 'cxrnet',
    inputSize: 32,
    operatingPoints: points,
    defaultOperatingPoint: 'balanced',
  });
  writeJsonFile(path.join(dir, 'predictions', 'val.json'), val);
  writeJsonFile(path.join(dir, 'metrics', 'val.json'), evaluate(val.labels, val.probs, { threshold: 0.5 }));
  await writeReport(dir);
  return fs.readFileSync(path.join(dir, 'report', 'index.html'), 'utf8');
}

/**
 * A run folder scored `val` on validation, its cxr.json (named `name`) with the operating points chosen on those
 * scores, its metrics, and `log` as its training log where given; then `cxr report`'s page written for it.
 */
export async function reportedRun(
  dir: string,
  val: { labels: number[]; probs: number[] },
  name: string,
  log?: Record<string, number>[],
): Promise<void> {
  const ops = operatingPoints(val.labels, val.probs);
  writeJsonFile(path.join(dir, 'cxr.json'), {
    name,
    version: '0.0.1',
    arch: 'cxrnet',
    inputSize: 32,
    thresholds: { screening: ops.screening.threshold, balanced: ops.balanced.threshold },
  });
  writeJsonFile(path.join(dir, 'predictions', 'val.json'), val);
  writeJsonFile(
    path.join(dir, 'metrics', 'val.json'),
    evaluate(val.labels, val.probs, { threshold: ops.balanced.threshold, bootstrap: { n: 50, seed: 1 } }),
  );
  if (log) fs.writeFileSync(path.join(dir, 'log.jsonl'), log.map((l) => JSON.stringify(l)).join('\n'));
  await writeReport(dir);
}
