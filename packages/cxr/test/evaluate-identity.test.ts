// An evaluation `cxr evaluate --out` stores records the model that made it (name, version, sha256). It used
// to go into any folder named, another model's run folder too, whose report then showed it under that model's
// title; now evaluate refuses a folder that holds another model, and where an evaluation is read back (the
// report, calibrate's restating) one recording another model is left out rather than taken as the folder's.
// Also: text `cxr evaluate` says the pipeline's note ("no ood.json ...") once, on stderr, not again on stdout.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { register } from '../src/cli/evaluate';
import { runEvaluation } from '../src/cli/evaluate_run';
import { evaluate } from '../src/eval';
import { modelIdentity } from '../src/models/io';
import { writeReport } from '../src/report/write_report';
import { type CalibrationState, restateEvaluations } from '../src/train/restate_evaluations';
import { runInProcess } from './in-process-cli';
import { CHEST_XRAY, haveData, makeSeededModel, TINY_SEEDED, tempDir } from './ood-fixtures';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
const skip = !haveData && 'no shared/data';
const VAL = path.join(CHEST_XRAY, 'val');
const tiny = TINY_SEEDED;
const read = (dir: string, file: string) => JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));

/** `cxr evaluate ARGS` in this process: its stdout and stderr (the test runner's own reports pass through). */
const evaluateCli = (...args: string[]) => runInProcess([register], ['evaluate', ...args]);

test('evaluate --out records the model; refuses a folder holding another model; the report skips one', {
  skip,
}, async () => {
  const dir = tempDir('evaluate-identity');
  dirs.push(dir);
  const a = await makeSeededModel(path.join(dir, 'a'), { ...tiny, seed: 1 });
  const b = await makeSeededModel(path.join(dir, 'b'), { ...tiny, seed: 2 });
  const idA = modelIdentity(a).sha256;

  await runEvaluation({ modelDir: a, data: VAL, out: a, warn: () => {} });
  for (const f of ['metrics/eval-val.json', 'predictions/eval-val.json']) {
    assert.deepEqual(read(a, f).model, { name: 'seeded-test', version: '0.0.1', sha256: idA }, f);
  }

  // Another model's folder is refused, before anything is written there.
  await assert.rejects(runEvaluation({ modelDir: a, data: VAL, out: b, warn: () => {} }), (e: Error) => {
    assert.match(e.message, new RegExp(`^--out ${b} holds another model, seeded-test 0\\.0\\.1 \\(sha256 `));
    assert.match(e.message, new RegExp(`Write it to the evaluated model's own folder \\(--out ${a}\\)`));
    return true;
  });
  assert.ok(!fs.existsSync(path.join(b, 'metrics')) && !fs.existsSync(path.join(b, 'predictions')));
  // A copy of the model is the model; a folder without one is no model's.
  const copy = path.join(dir, 'a-copy');
  fs.cpSync(a, copy, { recursive: true });
  await runEvaluation({ modelDir: a, data: VAL, out: copy, warn: () => {} });
  await runEvaluation({ modelDir: a, data: VAL, out: path.join(dir, 'plain'), warn: () => {} });

  // A folder that got another model's evaluation before the refusal: its report leaves it out and says so.
  for (const f of ['metrics/eval-val.json', 'predictions/eval-val.json', 'metrics/eval-val-assessed.json']) {
    if (!fs.existsSync(path.join(a, f))) continue;
    fs.mkdirSync(path.join(b, path.dirname(f)), { recursive: true });
    fs.copyFileSync(path.join(a, f), path.join(b, f));
  }
  // One of an earlier version, which records no model, is still read as the folder's.
  const { model: _none, ...old } = read(a, 'metrics/eval-val.json');
  fs.writeFileSync(path.join(b, 'metrics', 'test.json'), JSON.stringify(old));
  const r = await writeReport(b);
  assert.ok(
    r.warnings.some((w) => /^skipped eval-val: an evaluation of another model, seeded-test 0\.0\.1/.test(w)),
    r.warnings.join('\n'),
  );
  const html = fs.readFileSync(path.join(b, 'report', 'index.html'), 'utf8');
  assert.doesNotMatch(html, /id="split-eval-val"/);
  assert.match(html, /id="split-test"/);
  // The model's own folder shows its own evaluation.
  const own = await writeReport(a);
  assert.ok(!own.warnings.some((w) => /another model/.test(w)), own.warnings.join('\n'));
  assert.match(fs.readFileSync(path.join(a, 'report', 'index.html'), 'utf8'), /id="split-eval-val"/);
});

test('text evaluate says the "no ood.json" note once (stderr), --json keeps it in notes', { skip }, async () => {
  const dir = tempDir('evaluate-note');
  dirs.push(dir);
  const model = await makeSeededModel(path.join(dir, 'model'), tiny);
  const text = await evaluateCli('--model', model, '--data', VAL, '--threads', '1');
  const noOod = /^note: .*ood\.json/gm;
  assert.equal(text.stderr.match(noOod)?.length, 1, text.stderr);
  assert.doesNotMatch(text.stdout, /ood\.json/, 'the table does not repeat it');
  assert.match(text.stdout, /Confusion matrix/);
  const json = await evaluateCli('--model', model, '--data', VAL, '--threads', '1', '--json');
  const m = JSON.parse(json.stdout) as { notes: string[]; pipelineNotes: string[] };
  assert.ok(
    m.notes.some((n) => /ood\.json/.test(n)),
    m.notes.join('; '),
  );
  assert.deepEqual(m.pipelineNotes, m.notes.slice(0, m.pipelineNotes.length));
  assert.equal(json.stderr.match(noOod)?.length, 1, json.stderr);
});

/** A model folder holding one evaluation `test` at threshold 0.5, recording `model` (none: an older file). */
function folder(model?: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-restate-identity-'));
  dirs.push(dir);
  const labels = [0, 0, 1, 1];
  const probs = [0.1, 0.3, 0.7, 0.9];
  const rec = model ? { model } : {};
  fs.mkdirSync(path.join(dir, 'predictions'));
  fs.mkdirSync(path.join(dir, 'metrics'));
  fs.writeFileSync(path.join(dir, 'predictions', 'test.json'), JSON.stringify({ labels, probs, ...rec }));
  const metrics = { ...evaluate(labels, probs, { threshold: 0.5 }), ...rec };
  fs.writeFileSync(path.join(dir, 'metrics', 'test.json'), JSON.stringify(metrics));
  return dir;
}

test("calibrate's restating moves another model's evaluation aside, and records the new identity", () => {
  const state = (t: number, temperature: number): CalibrationState => ({
    temperature,
    logitBias: 0,
    tta: ['identity'],
    operatingPoints: { balanced: { threshold: t } },
    defaultOperatingPoint: 'balanced',
  });
  const mine = { name: 'm', version: '1', sha256: 'a'.repeat(64) };
  const renewed = { ...mine, sha256: 'b'.repeat(64) };
  const identity = { before: mine.sha256, after: renewed };

  const other = folder({ name: 'other', version: '2', sha256: 'c'.repeat(64) });
  const lines: string[] = [];
  const r = restateEvaluations(other, state(0.5, 1), state(0.6, 2), (l) => lines.push(l), identity);
  assert.deepEqual(r.restated, []);
  assert.match(r.stale[0].why, /^it is an evaluation of another model, other 2 \(sha256 cccccccccccc…\)/);
  assert.ok(fs.existsSync(path.join(other, 'stale', 'test', 'metrics-test.json')));
  assert.ok(!fs.existsSync(path.join(other, 'metrics', 'test.json')));

  const own = folder(mine);
  assert.deepEqual(restateEvaluations(own, state(0.5, 1), state(0.6, 2), () => {}, identity).restated, ['test']);
  assert.deepEqual(read(own, 'metrics/test.json').model, renewed);
  assert.deepEqual(read(own, 'predictions/test.json').model, renewed);

  // An older file records no model: restated as before, and it is not made to claim one.
  const older = folder();
  assert.deepEqual(restateEvaluations(older, state(0.5, 1), state(0.6, 2), () => {}, identity).restated, ['test']);
  assert.equal(read(older, 'metrics/test.json').model, undefined);
});
