// `cxr calibrate` rewrites the model folder's report (when it has one) so that the page shows the new
// temperature and thresholds that cxr.json and the model card now hold, and takes --threads like its siblings.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { register } from '../src/cli/calibrate';
import { readMeta } from '../src/models/io';
import { writeReport } from '../src/report/write_report';
import { runEvaluation } from '../src/cli/evaluate_run';
import { runInProcess } from './in-process-cli';
import { CHEST_XRAY, haveData, makeSeededModel, TINY_SEEDED, tempDir } from './ood-fixtures';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** `cxr calibrate ARGS`, its stdout and stderr. */
const calibrate = (...args: string[]) => runInProcess([register], ['calibrate', ...args]);

const tiny = TINY_SEEDED;
const temperatureRow = (html: string) => /Calibration temperature<\/td><td>([0-9.]+)</.exec(html)?.[1];

test('cxr calibrate rewrites the report of a folder that has one, and says so', {
  skip: !haveData && 'no shared/data',
}, async () => {
  const dir = tempDir('calibrate-report');
  dirs.push(dir);
  const model = await makeSeededModel(path.join(dir, 'model'), tiny);
  await writeReport(model);
  const page = path.join(model, 'report', 'index.html');
  assert.equal(temperatureRow(fs.readFileSync(page, 'utf8')), '1.500', 'the fixture reports its own temperature');

  const r = await calibrate('--model', model, '--data', CHEST_XRAY, '--threads', '1', '--json');
  const json = JSON.parse(r.stdout) as { temperature: number; report: string | null };
  assert.equal(json.report, page);
  assert.match(r.stderr, /report rewritten with the new calibration: .*index\.html/);
  const html = fs.readFileSync(page, 'utf8');
  assert.notEqual(json.temperature.toFixed(3), '1.500');
  assert.equal(temperatureRow(html), json.temperature.toFixed(3));
  const balanced = readMeta(model).operatingPoints.balanced.threshold;
  assert.ok(html.includes(`<td>${balanced.toFixed(3)}</td>`), 'the new balanced threshold is on the page');
});

test('cxr calibrate writes no report where the folder had none; --threads takes a positive integer', {
  skip: !haveData && 'no shared/data',
}, async () => {
  const dir = tempDir('calibrate-noreport');
  dirs.push(dir);
  const model = await makeSeededModel(path.join(dir, 'model'), tiny);
  const r = await calibrate('--model', model, '--data', CHEST_XRAY, '--threads', '1', '--json');
  assert.equal((JSON.parse(r.stdout) as { report: string | null }).report, null);
  assert.ok(!fs.existsSync(path.join(model, 'report')));
  await assert.rejects(calibrate('--model', model, '--data', CHEST_XRAY, '--threads', 'two'), /positive integer/);
});

test('evaluations stored in the folder are restated under the new calibration, as a new evaluation finds them', {
  skip: !haveData && 'no shared/data',
}, async () => {
  const dir = tempDir('calibrate-restate');
  dirs.push(dir);
  const model = await makeSeededModel(path.join(dir, 'model'), tiny);
  const kaggleVal = path.join(CHEST_XRAY, 'val');
  await runEvaluation({ modelDir: model, data: kaggleVal, out: model });
  await runEvaluation({ modelDir: model, data: kaggleVal, out: model, operatingPoint: 'screening' });
  const stored = (file: string) => JSON.parse(fs.readFileSync(path.join(model, file), 'utf8'));
  const oldProbs = stored('predictions/eval-val.json').probs as number[];

  await calibrate('--model', model, '--data', CHEST_XRAY, '--threads', '1', '--rule', 'youden');
  // A fresh evaluation under the new calibration (into another folder) is what the restated files must say.
  const fresh = path.join(dir, 'fresh');
  const now = await runEvaluation({ modelDir: model, data: kaggleVal, out: fresh, operatingPoint: 'screening' });
  const restated = stored('predictions/eval-val.json').probs as number[];
  const expected = JSON.parse(fs.readFileSync(path.join(fresh, 'predictions', 'eval-val.json'), 'utf8')).probs;
  assert.notDeepEqual(restated, oldProbs, 'the probabilities changed with the calibration');
  restated.forEach((p, i) => assert.ok(Math.abs(p - expected[i]) < 1e-6, `film ${i}: ${p} vs ${expected[i]}`));
  const metrics = stored('metrics/eval-val.json');
  assert.equal(metrics.threshold, readMeta(model).operatingPoints.screening.threshold, 'at the same operating point');
  assert.deepEqual(metrics.confusion, now.confusion);
  assert.ok(Math.abs(metrics.ece - now.ece) < 1e-6);

  // New test-time views change the scores themselves: the old evaluation is moved aside, not restated.
  await calibrate('--model', model, '--data', CHEST_XRAY, '--threads', '1', '--tta', 'identity', 'zoom-in');
  assert.ok(!fs.existsSync(path.join(model, 'predictions', 'eval-val.json')));
  assert.ok(fs.existsSync(path.join(model, 'stale', 'eval-val', 'predictions-eval-val.json')));
  assert.ok(fs.existsSync(path.join(model, 'predictions', 'val.json')), "the run's own validation file stays");
  // Another evaluation made stale by a later calibration goes beside the first, not over it.
  await runEvaluation({ modelDir: model, data: kaggleVal, out: model });
  await calibrate('--model', model, '--data', CHEST_XRAY, '--threads', '1', '--tta', 'identity');
  assert.ok(fs.existsSync(path.join(model, 'stale', 'eval-val', 'predictions-eval-val.json')));
  assert.ok(fs.existsSync(path.join(model, 'stale', 'eval-val-2', 'predictions-eval-val.json')));
});
