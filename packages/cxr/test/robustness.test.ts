import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildProgram } from '../src/cli/main';
import { CHANGE_NAMES } from '../src/data/perturb_catalog';
import { initEngine } from '../src/engine';
import { groupPattern } from '../src/eval/groups';
import { periodGrouper } from '../src/data/period_balance';
import { evaluate } from '../src/eval/metrics';
import { runSeedExperiments } from '../src/experiments/seed';
import { writeComparison } from '../src/report';
import { runEvaluation } from '../src/cli/evaluate_run';
import { scanDataset } from '../src/data/dataset';
import { splitByPatient } from '../src/data/split';
import { RobustnessResult, readRobustnessResult, readRobustnessSummary } from '../src/robustness/metrics';
import { runRobustness } from '../src/robustness/run';
import { CLI, DATA, makeTinyModel, tempDir } from './serve-fixtures';
import { spawnAsync } from './spawn-async';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const ROOT = path.join(DATA, 'chest_xray');
const TRAIN = path.join(ROOT, 'train');
let dir = '';
let model = '';
let out = '';
// The tests that rewrite the model's cxr.json use a copy of their own: the `cxr robustness` child reads the model
// while they run.
let ownModel = '';
type Ran = { code: number | null; stdout: string; stderr: string };
// The benchmark's child process, started in `before` and awaited by the tests that read its output: the
// in-process tests run meanwhile.
let running: Promise<Ran>;
let run: Ran;

async function cxr(...args: string[]): Promise<Ran> {
  const r = await spawnAsync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  dir = tempDir('robustness');
  model = await makeTinyModel(path.join(dir, 'model'), { inputSize: 32, tta: ['identity', 'zoom-in'] });
  ownModel = path.join(dir, 'own-model');
  fs.cpSync(model, ownModel, { recursive: true });
  out = path.join(dir, 'out');
  running = cxr('robustness', '--model', model, '--data', TRAIN, '--limit', '4', '--seed', '3', '--json', '--out', out);
});
after(async () => {
  await running;
  fs.rmSync(dir, { recursive: true, force: true });
});

const result = () => RobustnessResult.parse(JSON.parse(run.stdout));

test("a training root means the model's recorded validation split; without a record it is a clear error", async () => {
  await initEngine();
  const opts = {
    modelDir: ownModel,
    data: ROOT,
    limit: 2,
    changes: ['invert', 'blur'],
    strengths: [0.5, 1],
    outside: false as const,
  };
  await assert.rejects(runRobustness(opts), /does not record its validation split/);

  const meta = JSON.parse(fs.readFileSync(path.join(ownModel, 'cxr.json'), 'utf8'));
  fs.writeFileSync(
    path.join(ownModel, 'cxr.json'),
    JSON.stringify({ ...meta, data: { valFraction: 0.15, splitSeed: 42 } }),
  );
  const r = await runRobustness(opts)
    .then((x) => x.result)
    .finally(() => fs.writeFileSync(path.join(ownModel, 'cxr.json'), JSON.stringify(meta)));
  assert.match(r.data.source, /validation split/);
  assert.equal(r.outside, null);
  assert.deepEqual(
    r.rows.map((x) => `${x.change}@${x.strength}`),
    ['clean@0', 'invert@0.5', 'invert@1', 'blur@0.5', 'blur@1'],
  );
  const records = (await scanDataset(ROOT)).filter((x) => x.split === 'train');
  const val = new Set(splitByPatient(records, { valFraction: 0.15, seed: 42 }).val.map((x) => x.path));
  assert.equal(r.data.files.length, 4);
  assert.ok(
    r.data.files.every((f) => val.has(path.join(ROOT, f))),
    "every chosen film is in the model's validation split",
  );
});

test("cxr evaluate --split validation: the model's own validation split, metrics per file-name group", async () => {
  await initEngine();
  const meta = JSON.parse(fs.readFileSync(path.join(ownModel, 'cxr.json'), 'utf8'));
  fs.writeFileSync(
    path.join(ownModel, 'cxr.json'),
    JSON.stringify({ ...meta, data: { valFraction: 0.15, splitSeed: 42 } }),
  );
  const run = (o: Partial<Parameters<typeof runEvaluation>[0]>) =>
    runEvaluation({ modelDir: ownModel, data: ROOT, split: 'validation', warn: () => {}, ...o });
  const [m, byPeriod] = await Promise.all([
    run({ groups: groupPattern('^(NORMAL2|IM|person)') }),
    run({ periodGroups: true }),
  ]).finally(() => fs.writeFileSync(path.join(ownModel, 'cxr.json'), JSON.stringify(meta)));
  const records = (await scanDataset(ROOT)).filter((x) => x.split === 'train');
  const val = splitByPatient(records, { valFraction: 0.15, seed: 42 }).val;
  assert.equal(m.n, val.length);
  assert.match(m.source, /validation split/);
  const groups = m.groups ?? [];
  assert.deepEqual(
    groups.map((g) => g.group),
    ['IM', 'NORMAL2', 'person'],
  );
  const named = (prefix: string) => val.filter((r) => path.basename(r.path).startsWith(prefix));
  for (const g of groups) {
    const films = named(g.group === 'IM' ? 'IM-' : g.group);
    assert.equal(g.n, films.length, g.group);
    assert.equal(g.normal, films.filter((r) => r.label === 0).length, g.group);
  }
  // The groups split the whole set's confusion matrix between them.
  const tn = groups.reduce((a, g) => a + Math.round((g.specificity ?? 0) * g.normal), 0);
  const tp = groups.reduce((a, g) => a + Math.round((g.sensitivity ?? 0) * g.pneumonia), 0);
  assert.equal(tn, m.confusion.tn);
  assert.equal(tp, m.confusion.tp);
  assert.throws(() => groupPattern('(unclosed'), /--groups: '\(unclosed' is not a regular expression/);

  // By period: the stretches of patient numbers are counted over the whole training folder.
  const period = periodGrouper(
    records.map((r) => r.patient),
    records.map((r) => r.label),
  );
  const expected = new Map<string, number>();
  for (const r of val) expected.set(period(r.patient, r.label), (expected.get(period(r.patient, r.label)) ?? 0) + 1);
  assert.deepEqual(
    (byPeriod.groups ?? []).map((g) => [g.group, g.n]),
    [...expected.entries()].sort(([a], [b]) => (a < b ? -1 : 1)),
  );
  assert.ok((byPeriod.groups ?? []).every((g) => / (sparse|dense)$/.test(g.group)));
});

test('bad arguments are refused with a message', async () => {
  const refused = async (...args: string[]) => {
    let err = '';
    const program = buildProgram().exitOverride();
    program.commands.forEach((c) => c.exitOverride().configureOutput({ writeErr: (t) => (err += t) }));
    await assert.rejects(
      program.parseAsync(['robustness', '--model', model, '--data', TRAIN, ...args], { from: 'user' }),
    );
    return err;
  };
  assert.match(await refused('--changes', 'sunburn'), /unknown change\(s\) sunburn/);
  assert.match(await refused('--strengths', '0,2'), /strengths in \(0, 1\]/);
  // Forms Number() reads that nobody means as a strength: refused, as every number option refuses them.
  for (const odd of ['0x1', '0.5,0b1', '0.5, 1 ,', ' '])
    assert.match(await refused('--strengths', odd), /strengths in \(0, 1\], got '/, odd);
  assert.match(await refused('--limit', '-3'), /whole number/);
});

test('experiments --robustness adds robust and worst specificity and the mean ECE to the comparison', async () => {
  await initEngine();
  // A finished run (resume skips its training): the tiny model with a recorded split and validation metrics.
  const exp = path.join(dir, 'experiments');
  const runDir = path.join(exp, 'seed1-baseline');
  fs.cpSync(model, runDir, { recursive: true });
  const meta = JSON.parse(fs.readFileSync(path.join(runDir, 'cxr.json'), 'utf8'));
  fs.writeFileSync(
    path.join(runDir, 'cxr.json'),
    JSON.stringify({ ...meta, data: { valFraction: 0.15, splitSeed: 42 } }),
  );
  const metrics = evaluate([0, 0, 1, 1], [0.2, 0.6, 0.4, 0.9], { threshold: 0.5, bootstrap: { n: 0 } });
  fs.mkdirSync(path.join(runDir, 'metrics'));
  fs.writeFileSync(path.join(runDir, 'metrics', 'val.json'), JSON.stringify(metrics));

  const plain = await runSeedExperiments({
    data: ROOT,
    out: exp,
    only: ['seed1-baseline'],
    resume: true,
    log: () => {},
  });
  assert.equal(plain.summaries[0].robustness, undefined);
  assert.doesNotMatch(fs.readFileSync(path.join(exp, 'comparison.md'), 'utf8'), /Robust specificity/);

  const { summaries } = await runSeedExperiments({
    data: ROOT,
    out: exp,
    only: ['seed1-baseline'],
    resume: true,
    robustness: { limit: 2 },
    log: () => {},
  });
  const saved = RobustnessResult.parse(
    JSON.parse(fs.readFileSync(path.join(runDir, 'robustness', 'robustness.json'), 'utf8')),
  );
  assert.equal(saved.data.n, 4);
  assert.match(saved.data.source, /validation split/);
  const s = saved.summary;
  assert.deepEqual(summaries[0].robustness, {
    robustSpecificity: s.robustSpecificity,
    worstSpecificity: s.worstSpecificity!.value,
    meanEce: s.meanEce,
  });
  const md = fs.readFileSync(path.join(exp, 'comparison.md'), 'utf8');
  assert.match(md, /\| Robust specificity \| Worst specificity \| Mean ECE \(shifted\) \|/);
  const row = md.split('\n').find((l) => l.startsWith('| **'))!;
  const percent = (x: number) => `${(100 * x).toFixed(1)}%`;
  const cells = [percent(s.robustSpecificity!), percent(s.worstSpecificity!.value), s.meanEce.toFixed(3)];
  assert.ok(row.includes(`| ${cells.join(' | ')} |`), row);
  assert.match(fs.readFileSync(path.join(exp, 'comparison.html'), 'utf8'), /<th>Robust specificity<\/th>/);

  // A run without a benchmark beside one with: a dash in its cells.
  const other = { ...summaries[0], name: 'other', robustness: undefined };
  await writeComparison([summaries[0], other], path.join(dir, 'cmp'));
  const rows = fs
    .readFileSync(path.join(dir, 'cmp', 'comparison.md'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('| **'));
  assert.match(rows[1], /\| — \| — \| — \|/);
});

// After the in-process tests above, which ran while the child benchmarked.
describe('cxr robustness --json --out', () => {
  before(async () => {
    run = await running;
  });

  test('--json prints exactly one JSON object of the documented shape', () => {
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim().split('\n').length, 1);
    const r = result();
    assert.equal(r.data.n, 8);
    assert.deepEqual([r.data.normal, r.data.pneumonia], [4, 4]);
    // Named relative to the folder benchmarked (portable), each a film in it.
    assert.ok(
      r.data.files.every((f) => /^(NORMAL|PNEUMONIA)\/[^/]+$/.test(f) && fs.existsSync(path.join(TRAIN, f))),
      r.data.files.join(', '),
    );
    assert.deepEqual(r.tta, ['identity', 'zoom-in']);
    assert.equal(r.operatingPoint.threshold, 0.5);
    for (const row of r.rows) {
      for (const k of [
        'change',
        'strength',
        'auc',
        'sensitivity',
        'specificity',
        'normalScoreShift',
        'pneumoniaScoreShift',
        'ece',
        'n',
      ]) {
        assert.ok(k in row, `row has ${k}`);
      }
      assert.equal(row.n, 8);
    }
    assert.ok(r.summary.perturbedRows === r.rows.length - 1);
  });

  test('the clean row is strength 0 and equals `cxr evaluate` on the same images', async () => {
    const r = result();
    const clean = r.rows.filter((x) => x.strength === 0);
    assert.equal(clean.length, 1);
    assert.equal(clean[0].change, 'clean');
    assert.equal(clean[0].normalScoreShift, 0);
    // The same eight films copied into a folder of their own, scored by the evaluation command.
    const copy = path.join(dir, 'copy');
    for (const f of r.data.files) {
      const cls = path.basename(path.dirname(f));
      fs.mkdirSync(path.join(copy, cls), { recursive: true });
      fs.copyFileSync(path.join(TRAIN, f), path.join(copy, cls, path.basename(f)));
    }
    await initEngine();
    const m = await runEvaluation({ modelDir: model, data: copy, warn: () => {} });
    assert.ok(Math.abs(m.auc! - clean[0].auc!) < 1e-12);
    assert.equal(m.sensitivity, clean[0].sensitivity);
    assert.equal(m.specificity, clean[0].specificity);
    assert.equal(r.summary.cleanSpecificity, clean[0].specificity);
  });

  test('every change appears at three or more strengths, and the summary is computed over them', () => {
    const r = result();
    for (const name of CHANGE_NAMES) {
      const strengths = r.rows.filter((x) => x.change === name).map((x) => x.strength);
      assert.ok(new Set(strengths).size >= 3 && strengths.every((s) => s > 0), `${name}: ${strengths}`);
    }
    const perturbed = r.rows.filter((x) => x.strength > 0);
    const specs = perturbed.map((x) => x.specificity!);
    assert.ok(Math.abs(r.summary.robustSpecificity! - specs.reduce((a, b) => a + b, 0) / specs.length) < 1e-12);
    assert.equal(r.summary.worstSpecificity!.value, Math.min(...specs));
    assert.ok(Math.abs(r.summary.meanEce - perturbed.reduce((a, x) => a + x.ece, 0) / perturbed.length) < 1e-12);
    const sens = perturbed.map((x) => x.sensitivity!);
    assert.ok(Math.abs(r.summary.robustSensitivity! - sens.reduce((a, b) => a + b, 0) / sens.length) < 1e-12);
  });

  test('a robustness.json written before robust sensitivity and the outside NORMAL count still reads', () => {
    const old = JSON.parse(run.stdout);
    delete old.summary.robustSensitivity;
    delete old.outside.normal;
    const runDir = path.join(dir, 'old-result');
    fs.mkdirSync(path.join(runDir, 'robustness'), { recursive: true });
    fs.writeFileSync(path.join(runDir, 'robustness', 'robustness.json'), JSON.stringify(old));
    const summary = readRobustnessSummary(runDir)!;
    // Robust sensitivity is recomputed from the rows the old file holds.
    assert.equal(summary.robustSensitivity, result().summary.robustSensitivity);
    assert.equal(summary.robustSpecificity, result().summary.robustSpecificity);
    assert.equal(readRobustnessResult(runDir)!.outside!.normal, undefined);
  });

  test('an inverted film changes the scores', () => {
    const inv = result().rows.find((x) => x.change === 'invert' && x.strength === 1)!;
    assert.ok(Math.abs(inv.normalScoreShift!) > 1e-4 || Math.abs(inv.pneumoniaScoreShift!) > 1e-4, JSON.stringify(inv));
  });

  test("the outside check scores Kaggle's val folder beside the data", () => {
    const o = result().outside!;
    assert.equal(path.resolve(o.data), path.join(ROOT, 'val'));
    assert.equal(o.n, 16);
    assert.equal(o.normal, 8);
  });

  test('--out writes robustness.json, the plots and index.html', () => {
    for (const m of ['specificity', 'sensitivity', 'auc', 'normalScoreShift', 'ece']) {
      for (const ext of ['svg', 'png'])
        assert.ok(fs.statSync(path.join(out, `robustness-${m}.${ext}`)).size > 1000, `${m}.${ext}`);
    }
    const html = fs.readFileSync(path.join(out, 'index.html'), 'utf8');
    assert.match(html, /<h1>Robustness to nuisance changes — tiny-test/);
    assert.ok((html.match(/<svg role="img"/g) ?? []).length === 5);
    assert.ok(
      (html.match(/data:image\/png;base64,/g) ?? []).length === CHANGE_NAMES.length + 1,
      'one example per change and the clean film',
    );
    const saved = RobustnessResult.parse(JSON.parse(fs.readFileSync(path.join(out, 'robustness.json'), 'utf8')));
    assert.deepEqual(saved.rows, result().rows);
    assert.deepEqual(readRobustnessSummary(out), result().summary);
  });
});
