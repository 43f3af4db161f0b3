// Review of the report, comparison and robustness pages (session 33): the ΔAUC header of the comparison
// carries the reference's name escaped in both formats; experiment names that slug alike after numbering
// get a confusion matrix file each; robustness.json, the mark of a finished benchmark, is written last and
// whole, so that a benchmark whose page failed is not kept as done; `cxr experiments adapt` changes the films
// before the model's normalisation, as the benchmark and the Predictor do.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadRecordedSplit } from '../src/data/dataset_images';
import { perturbImages } from '../src/data/perturb_catalog';
import { normalizeImages } from '../src/data/preprocess';
import { evaluate } from '../src/eval/metrics';
import { adaptShiftTable } from '../src/experiments/adapt_shift';
import { writeBnReferenceFromData } from '../src/models/bn_reference';
import { calibrated, predictAllLogits } from '../src/models/infer';
import { loadModel, readMeta } from '../src/models/io';
import { writeComparison } from '../src/report';
import { readRobustnessResult, type RobustnessResult, rowMetrics, summarise } from '../src/robustness/metrics';
import { writeRobustnessReport } from '../src/robustness/page';
import { CHEST_XRAY, haveData, makeSeededModel } from './ood-fixtures';

const made: string[] = [];
after(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const tmpDir = (name: string) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cxr-s33-${name}-`));
  made.push(dir);
  return dir;
};

const labels = [0, 0, 0, 1, 1, 1, 1, 0];
const probs = [0.1, 0.2, 0.6, 0.7, 0.8, 0.4, 0.9, 0.3];
const metrics = evaluate(labels, probs, { bootstrap: { n: 20, seed: 1 } });

const experiment = (name: string, runDir: string) => ({
  name,
  metrics,
  trainingSeconds: 60,
  runDir,
  predictions: { labels, probs },
});

test("the ΔAUC header holds the reference's name escaped: as text in the page, one cell in the Markdown", async () => {
  const dir = tmpDir('delta');
  const ref = '<i>R&"|</i>';
  await writeComparison([experiment('A', path.join(dir, 'a')), experiment(ref, path.join(dir, 'r'))], dir, {
    reference: ref,
  });
  const html = fs.readFileSync(path.join(dir, 'comparison.html'), 'utf8');
  assert.ok(html.includes('<th>ΔAUC vs &lt;i&gt;R&amp;&quot;|&lt;/i&gt;</th>'), 'escaped header cell');
  // Outside the inlined charts, no markup of the name is left.
  assert.ok(!html.replace(/<svg[\s\S]*?<\/svg>/g, '').includes('<i>R'));
  const md = fs.readFileSync(path.join(dir, 'comparison.md'), 'utf8').split('\n');
  const at = md.findIndex((l) => l.startsWith('| Experiment |'));
  const cells = (line: string) => line.split(/(?<!\\)\|/).length;
  assert.match(md[at], /ΔAUC vs <i>R&"\\\|<\/i>/);
  assert.equal(cells(md[at]), cells(md[at + 1]), 'header and separator have as many columns');
  assert.equal(cells(md[at]), cells(md[at + 2]), 'header and first row have as many columns');
});

test('names that slug alike once numbered each get their own confusion matrix file', async () => {
  const dir = tmpDir('slug');
  const names = ['x', 'x-2', 'X'];
  const { files } = await writeComparison(
    names.map((n, i) => experiment(n, path.join(dir, `run${i}`))),
    dir,
  );
  const confusion = files.filter((f) => path.basename(f).startsWith('confusion-') && f.endsWith('.png'));
  assert.equal(new Set(confusion).size, 3, confusion.join(', '));
  // The Markdown shows each experiment's own file.
  const md = fs.readFileSync(path.join(dir, 'comparison.md'), 'utf8');
  const shown = names.map((n) => new RegExp(`!\\[${n}\\]\\(([^)]+)\\)`).exec(md)?.[1]);
  assert.equal(new Set(shown).size, 3, shown.join(', '));
});

function result(): RobustnessResult {
  const rows = [
    { change: 'clean', strength: 0, parameter: 'none', ...rowMetrics(labels, probs, probs, 0.5) },
    { change: 'blur', strength: 1, parameter: 'σ 2 px', ...rowMetrics(labels, probs, probs, 0.5) },
  ];
  return {
    format: 'cxr-robustness/1',
    model: { name: 'tiny-test', version: '0.0.1', sha256: 'x', dir: '.' },
    data: { path: '.', source: 'test', n: labels.length, normal: 4, pneumonia: 4, files: [] },
    operatingPoint: { name: 'balanced', threshold: 0.5 },
    tta: [],
    seed: 1,
    eceBins: 10,
    rows,
    summary: summarise(rows),
    outside: null,
    seconds: 1,
    createdAt: '2026-11-01T00:00:00.000Z',
  };
}

test('a benchmark whose page fails leaves no robustness.json that --resume would keep as finished', async () => {
  const runDir = tmpDir('robust-fail');
  const out = path.join(runDir, 'robustness');
  // A folder where a plot's file goes: writing the page fails part-way.
  fs.mkdirSync(path.join(out, 'robustness-specificity.svg'), { recursive: true });
  await assert.rejects(writeRobustnessReport(result(), [], out));
  assert.equal(readRobustnessResult(runDir), null);
  assert.deepEqual(
    fs.readdirSync(out).filter((f) => f.includes('robustness.json')),
    [],
    'nor a temporary file of it',
  );
});

test('a benchmark written whole: robustness.json reads back, index.html is the last file named', async () => {
  const runDir = tmpDir('robust-ok');
  const out = path.join(runDir, 'robustness');
  const files = await writeRobustnessReport(result(), [], out);
  assert.equal(path.basename(files.at(-1)!), 'index.html');
  assert.ok(files.some((f) => path.basename(f) === 'robustness.json'));
  assert.deepEqual(readRobustnessResult(runDir)?.summary, result().summary);
});

test("cxr experiments adapt changes a film before the model's own normalisation, as the benchmark does", {
  skip: !haveData && 'no shared/data',
}, async () => {
  const dir = await makeSeededModel(path.join(tmpDir('adapt-norm'), 'model'), { inputSize: 32 });
  const file = path.join(dir, 'cxr.json');
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  json.preprocessing.normalize = 'equalize';
  fs.writeFileSync(file, JSON.stringify(json));
  await writeBnReferenceFromData(dir, CHEST_XRAY);
  const [row] = await adaptShiftTable(dir, CHEST_XRAY, {
    changes: ['contrast-down@1'],
    methods: ['none'],
    classMix: 'reference',
  });
  // What the model gives the changed films through the pipeline: changed raw, then equalised.
  const meta = readMeta(dir);
  const { val } = await loadRecordedSplit(CHEST_XRAY, meta, { raw: true });
  const n = val.labels.length;
  const changed = await perturbImages('contrast-down', val.pixels, val.files, val.size, 1, 1);
  const loaded = await loadModel(dir);
  const meanNormal = async (px: Uint8Array) => {
    const logits = await predictAllLogits(loaded.members, px, n, val.size, { tta: meta.tta });
    const p = calibrated(logits, meta.temperature, meta.logitBias).filter((_, i) => val.labels[i] === 0);
    return p.reduce((a, b) => a + b, 0) / p.length;
  };
  try {
    const expected = await meanNormal(normalizeImages(changed.slice(), n, val.size, 'equalize'));
    const equalisedFirst = await meanNormal(
      await perturbImages(
        'contrast-down',
        normalizeImages(val.pixels.slice(), n, val.size, 'equalize'),
        val.files,
        val.size,
        1,
        1,
      ),
    );
    assert.ok(Math.abs(expected - equalisedFirst) > 1e-3, 'the fixture tells the two orders apart');
    assert.ok(Math.abs(row.meanNormal - expected) < 1e-6, `${row.meanNormal} against ${expected}`);
    assert.equal(row.films, n);
  } finally {
    for (const m of loaded.members) m.dispose();
  }
});
