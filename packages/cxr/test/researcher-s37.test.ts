// A first-time researcher's walk through train → evaluate → compare → report → robustness → experiments
// (session 37): what the reports and refusals told them that was not so, or did not tell them.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { evaluate, operatingPoints } from '../src/eval';
import { writeReport } from '../src/report';
import { RECIPE_NOTE, recipeTable } from '../src/report/comparison_recipes';
import { readRunDir } from '../src/report/run_dir';
import { linkedTrainFilms, needsData } from './shared-data';
import { reportOfPoints, writeJsonFile } from './reported-run';
import { syntheticScores } from './synthetic-scores';

const made: string[] = [];
after(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

function tmpDir(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cxr-s37-researcher-${name}-`));
  made.push(dir);
  return dir;
}

const writeJson = writeJsonFile;

const reportOf = (points: Record<string, unknown>) => reportOfPoints(tmpDir('run'), points);

/** The glossary's entry on operating points, tags dropped. */
function operatingPointWords(html: string): string {
  const at = html.indexOf('<dt>Threshold and operating points</dt>');
  assert.ok(at >= 0, 'the glossary explains operating points');
  const dd = html.slice(at, html.indexOf('</dd>', at));
  return dd.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
}

test("the report's glossary states the screening target the model's points were chosen with, not 95%", async () => {
  // The points `cxr train` writes today: screening at validation sensitivity >= 0.99, balanced at J's plateau middle.
  const val = syntheticScores(60, 35, 2, 1.2);
  const ops = operatingPoints(val.labels, val.probs);
  assert.equal(ops.screening.rule, 'sensitivity>=0.99', 'the rule cxr train records');
  const words = operatingPointWords(await reportOf(ops));
  assert.ok(words.includes('at least 99% of pneumonia'), `screening's target: ${words}`);
  assert.ok(!words.includes('95%'), `the glossary still says 95%: ${words}`);
  assert.ok(words.includes('within 0.01'), `balanced's plateau rule: ${words}`);
});

test('a model whose points were chosen with other rules gets those rules in its glossary', async () => {
  const words = operatingPointWords(
    await reportOf({
      screening: { threshold: 0.2, sensitivity: 0.96, specificity: 0.7, rule: 'sensitivity>=0.95' },
      balanced: { threshold: 0.5, sensitivity: 0.9, specificity: 0.9, rule: 'youden' },
    }),
  );
  assert.ok(words.includes('at least 95% of pneumonia'), `screening's target: ${words}`);
  assert.ok(words.includes('maximises sensitivity + specificity'), `balanced's rule: ${words}`);
  assert.ok(!words.includes('within 0.01'), `not the plateau rule: ${words}`);
});

test("the per-recipe table's outside count says it sums the runs, unlike its other cells (means)", () => {
  const s = syntheticScores(60, 35, 2, 1.2);
  const metrics = evaluate(s.labels, s.probs, { threshold: 0.5 });
  // Two seeds of one recipe, each calling 3 of the val folder's 8 NORMAL films PNEUMONIA.
  const outside = { n: 16, normal: 8, specificity: 0.625, auc: 0.7 };
  const shift = { robustSensitivity: 0.8, meanAuc: 0.85, meanNormalScoreShift: 0.01, outside };
  const run = {
    group: 'cxr-shift',
    metrics,
    robustness: { robustSpecificity: 0.7, worstSpecificity: 0.1, meanEce: 0.2, shift },
  };
  const table = recipeTable([run, run]);
  assert.ok(table, 'a table for the grouped runs');
  const last = table.rows[0].cells.at(-1);
  assert.equal(last?.[0], '6/16', 'the count over both runs');
  const label = table.head.at(-1) ?? '';
  assert.ok(/all runs|summed|over the runs/i.test(label), `the column's header reads as one run's count: ${label}`);
  assert.ok(/last column counts/.test(RECIPE_NOTE), `the note says every cell is a mean: ${RECIPE_NOTE}`);
});

const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const cxr = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

test('cxr robustness on a folder of the films the model trained on warns, as cxr evaluate does', {
  skip: needsData(),
}, () => {
  // A tiny model on 10 films per class; the researcher then benchmarks it on its own train/ folder.
  const root = linkedTrainFilms(tmpDir('data'), 10);
  const run = path.join(tmpDir('run'), 'm');
  const train = cxr(
    'train',
    '--data',
    root,
    '--out',
    run,
    '--epochs',
    '1',
    '--input-size',
    '32',
    '--no-report',
    '--threads',
    '1',
  );
  assert.equal(train.status, 0, train.stderr.slice(-400));
  const bench = (data: string) =>
    cxr(
      'robustness',
      '--model',
      run,
      '--data',
      data,
      '--changes',
      'blur',
      '--strengths',
      '1',
      '--no-outside',
      '--threads',
      '1',
    );
  const own = bench(path.join(root, 'train'));
  assert.equal(own.status, 0, own.stderr.slice(-400));
  assert.ok(/warning: of the 20 films, \d+ were in .*'s training split/.test(own.stderr), own.stderr.slice(0, 600));
  // The root itself means the model's validation split: what it holds is no surprise to warn of.
  const split = bench(root);
  assert.equal(split.status, 0, split.stderr.slice(-400));
  assert.ok(!split.stderr.includes('warning: of the'), split.stderr.slice(0, 600));
});

test("cxr report on an evaluate --out folder draws the assessed films' curves, not 'no predictions file'", async () => {
  // What `cxr evaluate --out` writes: one predictions file with each film's verdict, metrics for all films and for
  // those the pipeline would assess (here all but the first two NORMAL films, which the gate stops).
  const dir = tmpDir('eval');
  const s = syntheticScores(40, 20, 3, 1.2);
  const verdicts = s.labels.map((_, i) => (i === 20 || i === 21 ? 'cannot-assess' : 'assessed'));
  writeJson(path.join(dir, 'predictions', 'eval-val.json'), { ...s, verdicts });
  writeJson(path.join(dir, 'metrics', 'eval-val.json'), evaluate(s.labels, s.probs, { threshold: 0.5 }));
  const keep = (_: unknown, i: number) => verdicts[i] === 'assessed';
  const assessed = evaluate(s.labels.filter(keep), s.probs.filter(keep), { threshold: 0.5 });
  writeJson(path.join(dir, 'metrics', 'eval-val-assessed.json'), assessed);
  const { files } = await writeReport(dir);
  const html = fs.readFileSync(path.join(dir, 'report', 'index.html'), 'utf8');
  assert.ok(!html.includes('no predictions file'), 'the assessed split says its curves are missing');
  for (const kind of ['roc', 'pr', 'reliability'])
    assert.ok(
      files.some((f) => path.basename(f) === `${kind}-eval-val-assessed.svg`),
      `no ${kind} curve of the assessed films`,
    );
  // The curves are of the 38 assessed films, the two stopped by the gate left out.
  const split = (await readRunDir(dir)).splits.find((x) => x.name === 'eval-val-assessed');
  assert.equal(split?.predictions?.labels.length, 38);
  assert.ok(!split?.predictions?.files.includes(s.files[20]), 'a film the gate stopped is in the curves');
});

test('cxr report on a cxr compare --out folder says what the folder is, not "no run record"', () => {
  const dir = tmpDir('cmp');
  writeJson(path.join(dir, 'comparisons', 'eval-val.json'), { n: 16 });
  const r = cxr('report', dir);
  assert.equal(r.status, 1);
  assert.ok(r.stderr.includes('a comparison (cxr compare --out'), r.stderr);
  assert.ok(!r.stderr.includes('no run record'), r.stderr);
});

test('cxr evaluate --model on an experiments folder names a model folder inside it', () => {
  // `cxr experiments seed --out runs/experiments` keeps its runs in sub-folders; the folder itself is no model.
  const dir = tmpDir('experiments');
  writeJson(path.join(dir, 'seed1-baseline', 'cxr.json'), { name: 'm' });
  fs.writeFileSync(path.join(dir, 'comparison.md'), '# table\n');
  const r = cxr('evaluate', '--model', dir, '--data', path.join(dir, 'nowhere'));
  assert.equal(r.status, 1);
  assert.ok(r.stderr.includes(`e.g. --model ${path.join(dir, 'seed1-baseline')}`), r.stderr);
});
