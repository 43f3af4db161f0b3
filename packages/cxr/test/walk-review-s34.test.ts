// Review of a newcomer's first hour with cxr (session 34): what a user meets on the documented paths.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pairFilms } from '../src/cli/compare_run';
import { runEvaluation } from '../src/cli/evaluate_run';
import { register as registerTrain } from '../src/cli/train';
import { Command } from 'commander';
import { CHEST_XRAY, haveData, makeSeededModel, tempDir } from './ood-fixtures';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

test('compare --split validation of models with different patient splits says so, not "make films readable"', () => {
  // Two models trained with other --seed (so other split seeds): each one's own validation split holds other films.
  const a = {
    split: 'validation',
    files: ['n1', 'p1', 'n2'],
    labels: [0, 1, 0],
    probs: [0.1, 0.8, 0.2],
    unreadable: [],
  };
  const b = {
    split: 'validation',
    files: ['n1', 'p3', 'n4'],
    labels: [0, 1, 0],
    probs: [0.2, 0.7, 0.3],
    unreadable: [],
  };
  assert.throws(
    () => pairFilms(a, b),
    (e: Error) => {
      assert.match(e.message, /record different validation splits \(A 3 films, B 3, 1 in both\)/);
      assert.match(e.message, /p1: in A's validation split only/);
      assert.match(e.message, /n4: in B's validation split only/);
      assert.match(e.message, /the same --split-seed/);
      assert.doesNotMatch(e.message, /could not read|Make each film readable/);
      return true;
    },
  );
});

test("evaluate --out: a second model's evaluation of the same films does not silently replace the first's", {
  skip: !haveData && 'no shared/data',
}, async () => {
  const dir = tempDir('walk-eval');
  dirs.push(dir);
  const tiny = { inputSize: 32, widths: [4, 8, 8, 8] };
  const a = await makeSeededModel(path.join(dir, 'a'), { ...tiny, seed: 1 });
  const b = await makeSeededModel(path.join(dir, 'b'), { ...tiny, seed: 2 });
  const data = path.join(dir, 'films');
  for (const c of ['NORMAL', 'PNEUMONIA']) {
    fs.mkdirSync(path.join(data, c), { recursive: true });
    for (const f of fs.readdirSync(path.join(CHEST_XRAY, 'val', c)).slice(0, 2))
      fs.copyFileSync(path.join(CHEST_XRAY, 'val', c, f), path.join(data, c, f));
  }
  // A folder without a cxr.json: an evaluations folder, which may hold several models' evaluations.
  const out = path.join(dir, 'evals');
  const run = (modelDir: string, overwrite = false) =>
    runEvaluation({ modelDir, data, out, overwrite, progress: false, warn: () => {} });
  await run(a);
  const metricsFile = path.join(out, 'metrics', 'all.json');
  const shaA = JSON.parse(fs.readFileSync(metricsFile, 'utf8')).model.sha256;
  await run(a); // The same model again (a rerun): replaced without asking, as before.
  await assert.rejects(run(b), /already holds an evaluation of these films by another model under the name 'all'/);
  assert.equal(JSON.parse(fs.readFileSync(metricsFile, 'utf8')).model.sha256, shaA, "A's evaluation is kept");
  await run(b, true);
  assert.notEqual(JSON.parse(fs.readFileSync(metricsFile, 'utf8')).model.sha256, shaA, '--overwrite replaces it');
});

test('train refuses --model with a backbone (--backbone or a transfer recipe) rather than drop --model', async () => {
  const dir = tempDir('walk-train');
  dirs.push(dir);
  const out = path.join(dir, 'run');
  const train = (...extra: string[]) => {
    const program = new Command('cxr').exitOverride();
    registerTrain(program);
    return program.parseAsync(['train', '--data', dir, '--out', out, '--model', 'reference', ...extra], {
      from: 'user',
    });
  };
  await assert.rejects(train('--backbone', 'mobilenet_v1_0.25'), /--model reference .* --backbone .* give one of them/);
  await assert.rejects(train('--recipe', 'seed6-transfer'), /--recipe seed6-transfer transfers .* backbone auto/);
  assert.ok(!fs.existsSync(out), 'a refused run leaves no folder');
});
