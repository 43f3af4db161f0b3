// `cxr experiments shift --quick`: two recipes × two seeds trained on a tiny subset, each
// benchmarked with its outside check, and compared per run and per recipe; --resume trains nothing, and a
// run again without it is refused unless --overwrite says to train again.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { dec, pct } from '../src/eval/format';
import { describe } from '../src/experiments/run_experiment';
import { runShiftExperiments, SHIFT_EXPERIMENTS, shiftRunName } from '../src/experiments/shift';
import { RobustnessResult } from '../src/robustness/metrics';
import { RECIPES } from '../src/train/presets';
import { register as registerExperiments } from '../src/cli/experiments';
import { runLikeMain } from './in-process-cli';
import { CHEST_XRAY, needsData } from './shared-data';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');

const RECIPE_NAMES = ['cxr-shift', 'cxr-shift-ema'];
const SEEDS = [1, 2];

/** `cxr ARGS` in this process (a child each costs an engine start): its status, stdout and stderr. */
const cxrRun = (...args: string[]) => runLikeMain([registerExperiments], args);

/** `cxr ARGS`, which must succeed: its stdout. */
async function cxr(...args: string[]) {
  const r = await cxrRun(...args);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

const read = (file: string) => fs.readFileSync(file, 'utf8');
const withoutTime = (s: string) => s.replace(/Generated \d{4}-\d\d-\d\d \d\d:\d\d UTC/g, 'Generated (time) UTC');

/** Mean (min–max) as the recipe table writes it. */
function summary(xs: number[], format: (x: number) => string): string {
  const mean = format(xs.reduce((a, b) => a + b, 0) / xs.length);
  return `${mean} (${format(Math.min(...xs))}–${format(Math.max(...xs))})`;
}

test('experiments shift --quick trains, benchmarks and compares every recipe × seed; --resume redoes nothing', {
  skip: needsData(),
}, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-shift-exp-'));
  try {
    const args = ['experiments', 'shift', '--data', CHEST_XRAY, '--out', out, '--quick'];
    const printed = await cxr(...args, '--recipes', ...RECIPE_NAMES, '--seeds', ...SEEDS.map(String));
    assert.deepEqual(printed.trim().split('\n'), [path.join(out, 'comparison.md'), path.join(out, 'comparison.html')]);

    const runs = RECIPE_NAMES.flatMap((recipe) => SEEDS.map((seed) => ({ recipe, seed })));
    const dirs = runs.map((r) => path.join(out, shiftRunName(r.recipe, r.seed)));
    const folders = fs.readdirSync(out, { withFileTypes: true }).filter((d) => d.isDirectory());
    assert.deepEqual(folders.map((d) => d.name).sort(), dirs.map((d) => path.basename(d)).sort());
    const validationFiles = new Set<string>();
    for (const [i, dir] of dirs.entries()) {
      const meta = JSON.parse(read(path.join(dir, 'cxr.json')));
      assert.equal(meta.recipe.seed, runs[i].seed, dir);
      assert.equal(meta.data.splitSeed, 42, 'every run shares split seed 42');
      validationFiles.add(JSON.stringify(JSON.parse(read(path.join(dir, 'predictions', 'val.json'))).files));
      const r = RobustnessResult.parse(JSON.parse(read(path.join(dir, 'robustness', 'robustness.json'))));
      assert.equal(path.resolve(r.outside!.data), path.join(CHEST_XRAY, 'val'), 'the outside check is on');
    }
    assert.equal(validationFiles.size, 1, 'one validation split for all runs');

    const md = read(path.join(out, 'comparison.md'));
    const [recipePart, runPart] = md.split('## Per run');
    assert.ok(runPart, 'a per-recipe and a per-run table');
    const rowsOf = (part: string) => part.split('\n').filter((l) => l.startsWith('| **'));
    const runRows = rowsOf(runPart.split('## Confusion matrices')[0]);
    assert.equal(runRows.length, 4);
    assert.match(recipePart, /chosen on the validation split and the robustness benchmark only/);
    const recipeRows = rowsOf(recipePart);
    assert.equal(recipeRows.length, 2);

    // Each recipe row: the means (and ranges) of its runs' own files.
    for (const [g, recipe] of RECIPE_NAMES.entries()) {
      const mine = dirs.filter((_, i) => runs[i].recipe === recipe);
      const val = mine.map((d) => JSON.parse(read(path.join(d, 'metrics', 'val.json'))));
      const rob = mine.map((d) =>
        RobustnessResult.parse(JSON.parse(read(path.join(d, 'robustness', 'robustness.json')))),
      );
      const ece = (x: number) => x.toFixed(3);
      const figures: [number[], (x: number) => string][] = [
        [val.map((m) => m.auc), dec],
        [val.map((m) => m.ece), ece],
        [rob.map((r) => r.summary.robustSpecificity!), pct],
        [rob.map((r) => r.summary.robustSensitivity!), pct],
        [rob.map((r) => r.summary.meanAuc!), dec],
        [rob.map((r) => r.summary.meanEce), ece],
        [rob.map((r) => r.outside!.specificity!), pct],
        [rob.map((r) => r.outside!.auc!), dec],
      ];
      const expected = figures.map(([xs, format]) => summary(xs, format));
      const calledOf = (o: RobustnessResult['outside']) => o!.normal! - Math.round(o!.specificity! * o!.normal!);
      const called = rob.reduce((a, r) => a + calledOf(r.outside), 0);
      const row = recipeRows[g];
      assert.ok(row.startsWith(`| **${recipe}** | 2 | ${expected.join(' | ')} | ${called}/16 |`), row);
      for (const [k, d] of mine.entries()) {
        const runRow = runRows.find((l) => l.startsWith(`| **${path.basename(d)}**`))!;
        const o = rob[k].outside!;
        const cell = `| ${pct(o.specificity)} (NORMAL called PNEUMONIA ${calledOf(o)}/${o.normal}) |`;
        assert.ok(runRow.includes(cell), runRow);
      }
    }
    assert.match(read(path.join(out, 'comparison.html')), /<h2>Per recipe, over its seeds<\/h2>/);

    // --resume: nothing trains or is benchmarked again, and the table is the same.
    const files = dirs.flatMap((d) => [path.join(d, 'cxr.json'), path.join(d, 'robustness', 'robustness.json')]);
    const before = files.map((f) => [read(f), fs.statSync(f).mtimeMs]);
    await cxr(...args, '--recipes', ...RECIPE_NAMES, '--seeds', ...SEEDS.map(String), '--resume');
    assert.deepEqual(
      files.map((f) => [read(f), fs.statSync(f).mtimeMs]),
      before,
    );
    assert.equal(withoutTime(read(path.join(out, 'comparison.md'))), withoutTime(md));

    // --table-only: a recipe with no run folder is left out of the table, not trained.
    await cxr(
      ...args,
      '--recipes',
      ...RECIPE_NAMES,
      'cxr-shift-mixup',
      '--seeds',
      ...SEEDS.map(String),
      '--table-only',
    );
    assert.equal(fs.existsSync(path.join(out, 'cxr-shift-mixup-s1')), false);
    assert.deepEqual(
      files.map((f) => [read(f), fs.statSync(f).mtimeMs]),
      before,
    );
    assert.equal(withoutTime(read(path.join(out, 'comparison.md'))), withoutTime(md));

    // The same runs kept by a command without --quick: refused (they are quick runs), the table untouched.
    const comparisonMd = path.join(out, 'comparison.md');
    const mdBefore = [read(comparisonMd), fs.statSync(comparisonMd).mtimeMs];
    for (const flag of ['--resume', '--table-only']) {
      const full = ['experiments', 'shift', '--data', CHEST_XRAY, '--out', out, '--recipes', ...RECIPE_NAMES];
      const r = await cxrRun(...full, '--seeds', ...SEEDS.map(String), flag);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`experiments shift ${flag}: 4 finished runs were trained otherwise`));
      assert.match(r.stderr, /they are --quick runs: add --quick to keep them/);
      assert.deepEqual([read(comparisonMd), fs.statSync(comparisonMd).mtimeMs], mdBefore);
    }

    // Without --resume or --overwrite: refused at once, naming the folder, the finished rows and both ways on.
    const again = [...args, '--recipes', RECIPE_NAMES[0], '--seeds', String(SEEDS[0])];
    const refused = await cxrRun(...again);
    assert.equal(refused.status, 1, refused.stderr);
    assert.ok(
      refused.stderr.includes(`experiments shift: ${out} already holds 1 finished row (${path.basename(dirs[0])}) `),
      refused.stderr,
    );
    assert.match(refused.stderr, /add --resume to keep the finished rows .*, or --overwrite to train every row again/);
    assert.deepEqual(
      files.map((f) => [read(f), fs.statSync(f).mtimeMs]),
      before,
    );
    // --overwrite: the run trains again, and its old benchmark, now stale, is redone.
    const benchmark = path.join(dirs[0], 'robustness', 'robustness.json');
    const createdAt = RobustnessResult.parse(JSON.parse(read(benchmark))).createdAt;
    await cxr(...again, '--overwrite');
    assert.notEqual(fs.statSync(path.join(dirs[0], 'cxr.json')).mtimeMs, before[0][1]);
    assert.notEqual(RobustnessResult.parse(JSON.parse(read(benchmark))).createdAt, createdAt);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('experiments shift refuses unknown or GAN recipes and repeated seeds, naming them', async () => {
  const o = { data: 'nowhere', out: 'nowhere', log: () => {} };
  await assert.rejects(runShiftExperiments({ ...o, recipes: ['cxr-shfit'] }), /unknown recipe 'cxr-shfit'/);
  await assert.rejects(runShiftExperiments({ ...o, recipes: ['gan-mix'] }), /GAN recipes need/);
  await assert.rejects(runShiftExperiments({ ...o, seeds: [1, 1] }), /a seed is named twice/);
  await assert.rejects(runShiftExperiments({ ...o, seeds: [] }), /seeds/);
  const r = await cxrRun('experiments', 'shift', '--data', 'x', '--seeds', 'one');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /argument 'one' is invalid\. a whole number >= 0/);
  // The defaults are the generalisation recipes, the shipped model's among them, each a known recipe, none twice.
  assert.ok(SHIFT_EXPERIMENTS.includes('cxr-shift-ema-period-mobilenet-short-lpft'));
  assert.equal(new Set(SHIFT_EXPERIMENTS).size, SHIFT_EXPERIMENTS.length);
  for (const name of SHIFT_EXPERIMENTS) assert.ok(RECIPES[name], name);
});

test('a run row names period balancing, a block validation split and a head-first probe', () => {
  const recipe = { ...RECIPES['cxr-shift-ema-period'].recipe, valSplit: 'block' };
  const text = describe(recipe as Record<string, unknown>);
  assert.match(text, /period balance ±25 up to 4×/);
  assert.match(text, /validation: block split/);
  assert.doesNotMatch(text, /ratio\^/, 'power 1 is not named');
  assert.match(describe(RECIPES['cxr-shift-ema-period2'].recipe as Record<string, unknown>), /up to 8× \(ratio\^2\)/);
  assert.doesNotMatch(describe(RECIPES['cxr-shift-ema'].recipe as Record<string, unknown>), /period|block|head alone/);
  const lpft = RECIPES['cxr-shift-ema-period-mobilenet-short-lpft'].recipe as Record<string, unknown>;
  assert.match(describe(lpft), /head alone first 1 epoch\(s\) at lr 0\.005/);
});
