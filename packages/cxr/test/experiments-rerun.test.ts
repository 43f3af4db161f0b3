// `cxr experiments seed` run again on its folder: a --gan-model of another split refused before any row trains
// (and worded as a split mismatch where no validation patient leaked), a row that --overwrite starts training
// again no longer finished once stopped (--resume trains it, not keeps the old model), no old robustness
// benchmark shown beside a model trained since, Ctrl-C naming the row it stopped, and --only redrawing the
// comparison with every finished row of --out, not only its own.
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initEngine } from '../src/engine';
import { isFinished } from '../src/experiments/run_experiment';
import { runSeedExperiments } from '../src/experiments/seed';
import { QUICK } from '../src/gan/config';
import { trainGan } from '../src/gan/train';
import { RECIPES } from '../src/train/presets';
import { CHEST_XRAY, needsData } from './shared-data';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const skip = needsData();
const quick = { data: CHEST_XRAY, quick: true, log: () => {} };
let tmp = '';

before(async () => {
  if (skip) return;
  await initEngine(1);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-exp-rerun-'));
});

test('experiments seed refuses a GAN of another split before any row trains, with advice it takes', {
  skip,
}, async () => {
  // 20 films per class: experiments seed --quick splits 40 per class (on these films no validation patient of
  // that split is among the GAN's training patients).
  const gan = path.join(tmp, 'gan20');
  const config = { ...QUICK, epochs: 1, limitPerClass: 20 };
  await trainGan({ data: CHEST_XRAY, out: gan, config, checkPerClass: 0, progress: false, log: () => {} });
  const out = path.join(tmp, 'gan-exp');
  await assert.rejects(runSeedExperiments({ ...quick, out, only: ['cxr', 'gan-mix'], ganModel: gan }), (e) => {
    const m = (e as Error).message;
    assert.match(m, /^--gan-model .* was trained on another patient split than this run's/);
    assert.match(m, /none of this run's \d+ validation patients is among the GAN's training patients, yet another/);
    assert.doesNotMatch(m, /likenesses would enter training/);
    assert.match(m, /--seed 42 --val-fraction 0\.15 --limit-per-class 40\) and pass it as --gan-model: /);
    assert.match(m, /experiments seed trains every row on this split$/);
    assert.doesNotMatch(m, /give this run the GAN's split/);
    return true;
  });
  assert.equal(fs.existsSync(path.join(out, 'cxr')), false, 'the row before the GAN row trained');
});

test('experiments seed: no stale benchmark, --only tables every finished row, an interrupted --overwrite', {
  skip,
}, async () => {
  const out = path.join(tmp, 'exp');
  const row = path.join(out, 'seed1-baseline');
  const bench = path.join(row, 'robustness', 'robustness.json');
  const one = { ...quick, out, only: ['seed1-baseline'] };
  const [first] = (await runSeedExperiments({ ...one, robustness: { limit: 4 } })).summaries;
  assert.ok(first.robustness, 'benchmarked');

  // A benchmark of another model version than the folder holds is not shown (nor trusted) beside it.
  const result = JSON.parse(fs.readFileSync(bench, 'utf8'));
  fs.writeFileSync(bench, JSON.stringify({ ...result, model: { ...result.model, version: 'another' } }));
  const notes: string[] = [];
  const kept = await runSeedExperiments({ ...one, resume: true, log: (l) => notes.push(l) });
  assert.equal(kept.summaries[0].robustness, undefined);
  assert.ok(notes.some((l) => /measured model version another, not the version .*left out of the table/.test(l)));

  // Trained again without --robustness: the old model's benchmark is dropped, not shown for the new one.
  fs.writeFileSync(bench, JSON.stringify(result));
  const again = await runSeedExperiments({ ...one, overwrite: true });
  assert.equal(again.summaries[0].robustness, undefined);
  assert.equal(fs.existsSync(bench), false, 'the old benchmark outlived its model');

  // --only another row: the comparison still lists the finished row of the call before.
  const more = await runSeedExperiments({ ...quick, out, only: ['seed2-balanced'] });
  assert.deepEqual(
    more.summaries.map((s) => path.basename(s.runDir)),
    ['seed1-baseline', 'seed2-balanced'],
  );
  const md = fs.readFileSync(path.join(out, 'comparison.md'), 'utf8');
  for (const name of ['seed1-baseline', 'seed2-balanced']) assert.ok(md.includes(RECIPES[name].title), name);

  // --overwrite stopped in the row's first epoch: the row is no finished run any more (--resume retrains it),
  // and the line says which row was running.
  const args = [MAIN, 'experiments', 'seed', '--data', CHEST_XRAY, '--out', out, '--quick'];
  const child = spawn(process.execPath, [...args, '--only', 'seed1-baseline', '--overwrite', '--threads', '1']);
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
    if (/^training /m.test(stderr) && child.signalCode === null) child.kill('SIGINT');
  });
  const signal = await new Promise((resolve) => child.on('exit', (_, s) => resolve(s)));
  assert.equal(signal, 'SIGINT', stderr);
  assert.match(stderr, /\ninterrupted during row seed1-baseline; continue with: cxr experiments seed .* --resume/);
  assert.equal(isFinished(row), false, 'the old model still counts as finished');
  assert.equal(isFinished(path.join(out, 'seed2-balanced')), true);
});
