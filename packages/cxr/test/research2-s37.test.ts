// What a researcher sees, second round: the card of a GAN-mixed run, the hint for a class folder given as
// --data, the robustness page's outside check, signs and "run it again", and "1 epoch" in training lines.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { scanDataset } from '../src/data/dataset';
import { modelCard } from '../src/models/card';
import { parseMeta } from '../src/models/metadata';
import { RobustnessResult } from '../src/robustness/metrics';
import { signedShift } from '../src/robustness/page';
import { Recipe } from '../src/train/recipe';
import { transferPlanLine } from '../src/train/transfer';
import { CLI, DATA, makeTinyModel, tempDir } from './serve-fixtures';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const ROOT = path.join(DATA, 'chest_xray');
// dist/test -> the repository's docs/
const GAN_MIX = path.resolve(__dirname, '..', '..', '..', '..', 'docs', 'experiments', 'gan-mix', 'cxr.json');

let dir = '';
let model = '';

function cxr(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  dir = tempDir('research2');
  model = await makeTinyModel(path.join(dir, 'model'), { inputSize: 32 });
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const ganMeta = () => parseMeta(JSON.parse(fs.readFileSync(GAN_MIX, 'utf8')), GAN_MIX);

test("a GAN-mixed run's card says how many training images were generated, by which GAN, of how many patients", () => {
  const meta = ganMeta();
  const card = modelCard(meta);
  // 5434 training images, 1000 of them generated: the 2433 patients are those of the 4434 real films.
  assert.ok(card.includes('5434 training images'), 'the training count');
  assert.ok(card.includes('2433 patients, of the 4434 real films'), 'patients counted of the real films');
  assert.ok(
    card.includes('1000 of the training images (500 normal, 500 pneumonia) are **generated**'),
    'the generated images and their classes',
  );
  assert.ok(card.includes('`runs/gan`') && card.includes('`7788a2c1ab231152`'), 'the GAN folder and its digest');
  assert.ok(
    card.includes('(weights sha256 `7788a2c1ab231152`; made at 64px, resized to 160px)'),
    'the GAN size against the model size',
  );
  // A run without generated images says nothing of them.
  const real = modelCard({ ...meta, data: { ...meta.data, synthetic: undefined } });
  assert.ok(!real.includes('generated') && !real.includes('real films'), 'no GAN lines for a real-only run');
});

test('a class folder given as --data is told to give the folder above it (scan and cxr evaluate)', async () => {
  const normal = path.join(ROOT, 'val', 'NORMAL');
  await assert.rejects(scanDataset(normal, { warn: () => {} }), (e: Error) =>
    e.message.includes(`give the folder above it, --data ${path.join(ROOT, 'val')}`),
  );
  const r = cxr('evaluate', '--model', model, '--data', normal);
  assert.notEqual(r.code, 0);
  assert.ok(r.stderr.includes('NORMAL/ class folder itself: give the folder above it'), r.stderr.slice(-400));
});

test('a shift that rounds to zero has no sign; others keep theirs', () => {
  assert.equal(signedShift(-0.0001), '0.000');
  assert.equal(signedShift(0.0004), '0.000');
  assert.equal(signedShift(-0.002), '−0.002');
  assert.equal(signedShift(0.25), '+0.250');
  assert.equal(signedShift(null), 'n/a');
});

test("the robustness page fills the clean row's mean scores and repeats the options used", () => {
  const out = path.join(dir, 'rob');
  const r = cxr(
    'robustness',
    ...['--model', model, '--data', path.join(ROOT, 'train'), '--out', out],
    ...['--limit', '2', '--seed', '5', '--changes', 'blur,invert', '--strengths', '0.5,1'],
  );
  assert.equal(r.code, 0, r.stderr.slice(-400));
  const result = RobustnessResult.parse(JSON.parse(fs.readFileSync(path.join(out, 'robustness.json'), 'utf8')));
  assert.equal(result.data.limit, 2);
  const clean = result.rows.find((x) => x.strength === 0)!;
  assert.equal(typeof clean.meanNormalScore, 'number');
  assert.equal(typeof clean.meanPneumoniaScore, 'number');
  const html = fs.readFileSync(path.join(out, 'index.html'), 'utf8');
  const row = /<tr><td>Benchmark images \(clean\)<\/td>(.*?)<\/tr>/s.exec(html)?.[1] ?? '';
  assert.ok(row !== '', 'the benchmark row is on the page');
  assert.ok(!row.includes('<td></td>'), `no blank cell in the benchmark row: ${row.slice(0, 300)}`);
  assert.ok(row.includes(`<td>${clean.meanNormalScore!.toFixed(3)}</td>`), 'the mean NORMAL score');
  const again = /Run it again: <code>(.*?)<\/code>/.exec(html)?.[1] ?? '';
  for (const part of ['--limit 2', '--seed 5', '--changes blur,invert', '--strengths 0.5,1', `--model ${model}`])
    assert.ok(again.includes(part), `"${part}" in: ${again}`);
  // The CLI's rows and summary print shifts as the page does: never a signed zero.
  assert.ok(!/[-−]0\.000/.test(r.stdout), r.stdout);
  const blur = result.rows.find((x) => x.change === 'blur' && x.strength === 1)!;
  assert.ok(r.stdout.includes(`ΔN ${signedShift(blur.normalScoreShift)} `), r.stdout);
});

test('one epoch is "1 epoch" in the transfer plan and on the card', () => {
  const recipe = Recipe.parse({ arch: 'transfer', epochs: 1, fineTune: { blocks: 1, epochs: 1, lr: 1e-4 } });
  const run = { size: 96, train: { n: 4, normal: 2, pneumonia: 2 }, validating: 2, augmented: false };
  const line = transferPlanLine(recipe, run);
  assert.ok(line.includes('head 1 epoch ('), line);
  assert.ok(line.includes('the top 1 block for 1 epoch at lr'), line);
  const two = transferPlanLine({ ...recipe, epochs: 2 }, run);
  assert.ok(two.includes('head 2 epochs ('), two);
  const meta = ganMeta();
  const card = modelCard({ ...meta, recipe: { ...meta.recipe, epochs: 1, headFirst: { epochs: 1, lr: 0.01 } } });
  assert.ok(card.includes('cosine schedule, 1 epoch (best'), 'the recipe line');
  assert.ok(card.includes('(1 epoch at lr 0.01)'), 'the head-first line');
});
