// Session 35 review of the robustness benchmark, the perturbations, the OOD gate and the experiments.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { changeByName } from '../src/data/perturb_catalog';
import { unsharpMask } from '../src/data/perturb';
import { createRng } from '../src/data/random';
import { runRobustness } from '../src/robustness/run';
import { DATA, makeTinyModel, tempDir } from './serve-fixtures';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const TRAIN = path.join(DATA, 'chest_xray', 'train');
let dir = '';
let model = '';

before(async () => {
  dir = tempDir('robustness-review');
  model = await makeTinyModel(path.join(dir, 'model'), { inputSize: 32 });
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the sharpen change names the σ it applies (floored at 0.5 px), not the unfloored one, on small inputs', () => {
  const sharpen = changeByName('sharpen');
  // At 64 px (--quick's size) the scaled σ is 0.4 px, but 0.5 px is applied: the page and JSON said 'σ 0.40 px'.
  assert.equal(sharpen.parameter(1, 64), 'amount 2.00, σ 0.50 px');
  assert.equal(sharpen.parameter(1, 160), 'amount 2.00, σ 1.00 px');
  const rand = createRng(5, 'sharpen-test');
  const img = { pixels: Uint8Array.from({ length: 64 * 64 }, () => Math.floor(rand() * 256)), size: 64 };
  assert.deepEqual(
    (sharpen.apply(img, 1, createRng(1)) as { pixels: Uint8Array }).pixels,
    unsharpMask(img, 2, 0.5).pixels,
  );
});

test('a strength or change given twice is scored once', async () => {
  const lines: string[] = [];
  const { result } = await runRobustness({
    modelDir: model,
    data: TRAIN,
    limit: 2,
    strengths: [0.5, 0.5],
    changes: ['blur', 'blur'],
    outside: false,
    log: (l) => lines.push(l),
  });
  // Twice over, the blur row was weighed twice in the summary's means (robust specificity, mean AUC, mean ECE).
  assert.deepEqual(
    result.rows.map((r) => `${r.change}@${r.strength}`),
    ['clean@0', 'blur@0.5'],
  );
  assert.equal(result.summary.perturbedRows, 1);
  assert.equal(lines.filter((l) => l.startsWith('blur ')).length, 1, lines.join('\n'));
});

test("each change's log line gives the figures of its strongest strength and names it", async () => {
  const lines: string[] = [];
  const { result } = await runRobustness({
    modelDir: model,
    data: TRAIN,
    limit: 2,
    strengths: [0.5, 0.25],
    changes: ['invert'],
    outside: false,
    log: (l) => lines.push(l),
  });
  // It said "at strength 1" of the last strength listed (here 0.25), whatever was run.
  const top = result.rows.find((r) => r.change === 'invert' && r.strength === 0.5)!;
  const pc = (x: number | null) => (x === null ? 'n/a' : `${(100 * x).toFixed(1)}%`);
  const line = lines.find((l) => l.startsWith('invert '));
  assert.ok(line && / at strength 0\.5 \(/.test(line), lines.join('\n'));
  assert.match(line, new RegExp(`spec +${pc(top.specificity)} sens +${pc(top.sensitivity)} `));
});
