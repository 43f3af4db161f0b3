// The not-a-chest-X-ray gate as issue 9 measures it: the generated non-X-ray corpus, the nearest-
// class-mean score, the class-balanced threshold over clean and mildly changed validation films,
// `cxr ood evaluate`, and the shipped model refusing non-X-rays while accepting real films.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import sharp from 'sharp';
import { register } from '../src/cli/ood';
import { loadOod, mahalanobis, oodScore } from '../src/explain/ood';
import { MILD_CHANGES } from '../src/explain/ood_fit';
import { Predictor } from '../src/predict/predictor';
import { DRAWN_KINDS, drawNonXray, drawNonXrays } from '../src/robustness/ood_corpus';
import { formatGateReport, type GateReport } from '../src/robustness/ood_evaluate';
import { CHEST_XRAY, haveData, makeSeededModel, SHARED, tempDir } from './ood-fixtures';
import { invertImage } from './ood-images';
import { needsData, REPO, SAMPLES_FULLRES } from './shared-data';

test('oodScore is the distance to the nearest class mean; without class means, to the mean', () => {
  const precision = [1, 0, 0, 1];
  const gate = {
    mean: [0, 0],
    precision,
    classMeans: [
      [-3, 0],
      [3, 0],
    ],
  };
  assert.equal(oodScore(gate, [3, 1]), 1);
  assert.equal(oodScore(gate, [-3, 0]), 0);
  assert.equal(oodScore({ mean: [0, 0], precision }, [3, 4]), 5);
  assert.equal(oodScore({ mean: [0, 0], precision }, [3, 4]), mahalanobis({ mean: [0, 0], precision }, [3, 4]));
});

test('the generated corpus: every kind, deterministic, decodable JPEG/PNG of varied sizes', async () => {
  const imgs = await drawNonXrays(2, 5);
  assert.deepEqual([...new Set(imgs.map((i) => i.kind))], [...DRAWN_KINDS]);
  const again = await drawNonXray('document', 1, 5);
  assert.ok(again.bytes.equals(imgs.find((i) => i.name === again.name)!.bytes), 'same seed, same bytes');
  const other = await drawNonXray('document', 1, 6);
  assert.ok(!other.bytes.equals(again.bytes), 'another seed, another picture');
  const sizes = new Set<string>();
  for (const img of imgs) {
    const m = await sharp(img.bytes).metadata();
    assert.ok(m.format === 'jpeg' || m.format === 'png', img.name);
    assert.ok(m.width! >= 192 && m.height! >= 192, `${img.name}: ${m.width}×${m.height}`);
    sizes.add(`${m.width}x${m.height}`);
  }
  assert.ok(sizes.size > imgs.length / 2, 'sizes vary');
});

// A small seeded model with 120 films: fit, then evaluate, end to end through the CLI.
let modelDir = '';
let cacheDir = '';
before(async () => {
  if (!haveData) return;
  modelDir = await makeSeededModel(path.join(tempDir('ood-gate'), 'model'), { inputSize: 48 });
  cacheDir = tempDir('ood-gate-cache');
});
after(() => {
  if (modelDir) fs.rmSync(path.dirname(modelDir), { recursive: true, force: true });
  if (cacheDir) fs.rmSync(cacheDir, { recursive: true, force: true });
});

async function runCli(args: string[]): Promise<string> {
  const program = new Command('cxr').exitOverride();
  register(program);
  let out = '';
  const write = process.stdout.write;
  // Only the command's text: the test runner's own (binary) reports pass through.
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    if (typeof chunk !== 'string') return (write as (...a: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
    out += chunk;
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(args, { from: 'user' });
  } finally {
    process.stdout.write = write;
  }
  return out;
}

test('cxr ood fit: class means, threshold from the validation films clean and under every mild change', {
  skip: !haveData && 'no shared/data',
}, async () => {
  await runCli(['ood', 'fit', '--model', modelDir, '--data', CHEST_XRAY, '--cache', cacheDir]);
  const found = loadOod(modelDir, modelDir);
  assert.ok(found.model, String(found.problem));
  const ood = found.model;
  assert.equal(ood.format, 'cxr-ood/2');
  assert.equal(ood.classMeans?.length, 2);
  assert.equal(ood.percentile, 99.5);
  const nv = ood.fitted.validationImages as number;
  const t = ood.fitted.threshold as { perClass: number[]; changes: string[]; pooledScores: number };
  assert.deepEqual(t.changes, MILD_CHANGES);
  assert.equal(t.pooledScores, nv * (1 + MILD_CHANGES.length));
  // Class-balanced: the larger of the two classes' percentiles, each from its own films.
  assert.equal(ood.threshold, Math.max(...t.perClass));
  for (const c of [0, 1]) assert.ok(ood.scores[`pooled${c}`].n > 0);
});

test('cxr ood evaluate --json: false alarms per set and class, refusals per corpus kind', {
  skip: !haveData && 'no shared/data',
}, async () => {
  const r = JSON.parse(
    await runCli([
      'ood',
      'evaluate',
      '--model',
      modelDir,
      '--data',
      CHEST_XRAY,
      '--cache',
      cacheDir,
      '--per-kind',
      '2',
      '--json',
    ]),
  ) as GateReport;
  assert.equal(r.gate?.classMeans, true);
  const sets = new Set(r.films.map((x) => x.set));
  assert.ok(sets.has('validation') && sets.has('kaggle-val'));
  for (const c of MILD_CHANGES) assert.ok(sets.has(`mild:${c}`), c);
  for (const x of [...r.films, ...r.corpus]) {
    assert.ok(x.n > 0 && x.stopped <= x.n, `${x.set} ${x.group}`);
    assert.equal(x.rate, x.stopped / x.n);
  }
  assert.equal(
    r.falseAlarms.overall.n,
    r.films.reduce((a, x) => a + x.n, 0),
  );
  assert.equal(r.falseAlarms.NORMAL.n + r.falseAlarms.PNEUMONIA.n, r.falseAlarms.overall.n);
  assert.deepEqual(r.corpus.map((x) => x.set).sort(), ['inverted-film', ...DRAWN_KINDS].sort());
  // Blank and noise images are stopped by the image checks whatever the gate's fit.
  assert.equal(r.corpus.find((x) => x.set === 'blank-noise')!.rate, 1);
  // The held-out estimate counts the validation films and their mild changes once each.
  const fitted = r.films.filter((x) => x.set !== 'kaggle-val').reduce((a, x) => a + x.n, 0);
  assert.equal(r.heldOut?.rates.overall.n, fitted);
  assert.equal(r.heldOut?.inSample.overall.n, fitted);
  assert.equal(r.heldOut?.thresholds.length, 2);
  assert.equal(r.bars.met, r.bars.failures.length === 0);
  assert.match(formatGateReport(r), /false alarms on real chest films/);
  assert.match(formatGateReport(r), /held-out /);
});

// The shipped model as users get it: its refitted gate, through the Predictor (decode, checks, gate, verdict).
const SHIPPED = path.join(REPO, 'models', 'default');
test('the shipped model refuses ≥ 95% of generated non-X-rays and accepts the real sample films', {
  skip: needsData(SAMPLES_FULLRES, path.join(CHEST_XRAY, 'val'), path.join(SHIPPED, 'ood.json')),
}, async () => {
  const p = await Predictor.load(SHIPPED, { warmUp: false });
  try {
    assert.ok(p.oodGate, p.notes.join('; '));
    const films: string[] = [];
    for (const dir of [SAMPLES_FULLRES, path.join(CHEST_XRAY, 'val')]) {
      for (const cls of ['NORMAL', 'PNEUMONIA']) {
        const files = fs.readdirSync(path.join(dir, cls)).filter((f) => /\.jpe?g$/i.test(f));
        films.push(
          ...files
            .sort()
            .slice(0, 4)
            .map((f) => path.join(dir, cls, f)),
        );
      }
    }
    const refused = async (bytes: Buffer) => (await p.predict(bytes)).verdict.status !== 'assessed';
    const falseAlarms: string[] = [];
    for (const f of films) if (await refused(fs.readFileSync(f))) falseAlarms.push(path.relative(SHARED, f));
    assert.ok(films.length >= 12);
    assert.deepEqual(falseAlarms, [], 'real chest films stopped');

    const corpus = await drawNonXrays(4, 'ci');
    let stopped = 0;
    const missed: string[] = [];
    for (const img of corpus) {
      if (await refused(img.bytes)) stopped++;
      else missed.push(img.name);
    }
    for (const f of films.slice(0, 6)) {
      if (await refused(await invertImage(fs.readFileSync(f)))) stopped++;
      else missed.push(`inverted ${path.basename(f)}`);
    }
    const n = corpus.length + 6;
    assert.ok(stopped >= 0.95 * n, `refused ${stopped}/${n}; accepted: ${missed.join(', ')}`);
  } finally {
    p.dispose();
  }
});
