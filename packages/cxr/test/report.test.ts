import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { evaluate, operatingPoints } from '../src/eval';
import { confusionChart, readRunDir, wrapText, writeComparison, writeReport } from '../src/report';
import { inlineSvg } from '../src/report/html';
import { measureText } from '../src/report/text_metrics';
import { syntheticScores } from './synthetic-scores';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const made: string[] = [];
after(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function tmpDir(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cxr-${name}-`));
  made.push(dir);
  return dir;
}

const synthetic = (n: number, nPos: number, seed: number) => syntheticScores(n, nPos, seed);

function writeJson(file: string, value: unknown) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
}

async function checkPng(file: string) {
  const buf = fs.readFileSync(file);
  assert.ok(buf.subarray(0, 8).equals(PNG_SIGNATURE), `${file} is not a PNG`);
  const meta = await sharp(buf).metadata();
  assert.ok(meta.width! >= 300 && meta.height! >= 300, `${file}: ${meta.width}x${meta.height}`);
  // A blank image compresses to almost nothing; a chart with text and lines does not.
  assert.ok(buf.length > 8000, `${file} is suspiciously small (${buf.length} bytes)`);
}

test('writeReport on a full run directory writes SVGs, PNGs and a self-contained page', async () => {
  const dir = tmpDir('run');
  const val = synthetic(200, 130, 1);
  const testSplit = synthetic(240, 150, 2);
  const ops = operatingPoints(val.labels, val.probs);
  writeJson(path.join(dir, 'cxr.json'), {
    name: 'tiny <model>',
    version: '0.0.1',
    arch: 'cxrnet',
    inputSize: 128,
    temperature: 1.3,
    thresholds: { screening: ops.screening.threshold, balanced: ops.balanced.threshold },
    recipe: { epochs: 3 },
  });
  writeJson(path.join(dir, 'predictions', 'val.json'), val);
  writeJson(path.join(dir, 'predictions', 'test.json'), testSplit);
  writeJson(
    path.join(dir, 'metrics', 'test.json'),
    evaluate(testSplit.labels, testSplit.probs, { threshold: ops.balanced.threshold, bootstrap: { n: 200, seed: 1 } }),
  );
  const log = [1, 2, 3].map((epoch) =>
    JSON.stringify({
      epoch,
      loss: 0.7 / epoch,
      val_loss: 0.6 / epoch,
      val_auc: 0.8 + epoch / 50,
      val_accuracy: 0.75 + epoch / 50,
      lr: 1e-3,
      seconds: 30,
    }),
  );
  // Epoch 3 again, as a resumed run writes it.
  fs.writeFileSync(path.join(dir, 'log.jsonl'), `${log.join('\n')}\nnot json\n${log[2]}\n`);

  assert.deepEqual(
    (await readRunDir(dir)).log.map((e) => e.epoch),
    [1, 2, 3],
  );
  const { files, warnings } = await writeReport(dir);
  const out = path.join(dir, 'report');
  const expected = ['confusion', 'roc', 'pr', 'reliability'].flatMap((k) =>
    ['test', 'val'].flatMap((s) => [`${k}-${s}.svg`, `${k}-${s}.png`]),
  );
  expected.push('training.svg', 'training.png', 'index.html');
  assert.deepEqual([...files].map((f) => path.relative(out, f)).sort(), expected.sort());
  assert.deepEqual(warnings, ['log.jsonl: skipped 1 unreadable line(s)']);

  for (const f of files.filter((f) => f.endsWith('.svg'))) {
    const svg = fs.readFileSync(f, 'utf8');
    assert.match(svg, /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/, f);
    assert.match(svg, /<text/, `${f} has no text`);
  }
  for (const f of files.filter((f) => f.endsWith('.png'))) await checkPng(f);
  assert.match(fs.readFileSync(path.join(out, 'roc-test.svg'), 'utf8'), /AUC 0\.\d{3}/);
  // Its screening and balanced points share a threshold here: one point named by both (mergeCoinciding).
  assert.ok(/screening( = balanced)? \(t = /.test(fs.readFileSync(path.join(out, 'roc-test.svg'), 'utf8')), 'marks');

  const html = fs.readFileSync(path.join(out, 'index.html'), 'utf8');
  for (const f of expected.filter((f) => f.endsWith('.png')))
    assert.ok(html.includes(`href="${f}"`), `index.html does not link ${f}`);
  assert.equal((html.match(/<svg\b/g) ?? []).length, 9, 'every plot is inlined');
  assert.doesNotMatch(html, /<script|<link|src="https?:/, 'no external resources');
  assert.match(html, /tiny &lt;model&gt;/, 'metadata is escaped');
  assert.match(html, /Sensitivity/);
  assert.match(html, /95% CI/);
  assert.match(html, /skipped 1 unreadable/);
  // The per-epoch AUC sits beside the validation section's; the page says why the two can differ.
  assert.match(html, /best validation AUC 0\.860 at epoch 3 \(one view of each film, as training scores it; /);
  assert.match(html, /average the model&#39;s test-time views, if it has any, so their AUC can differ\)/);
  // Nothing here evaluates the withheld test split, so the validation note points to an independent one.
  assert.match(html, /optimistic; only an independent test set gives a fair estimate\./);
});

test('writeReport copes with a partial or broken run directory', async () => {
  const dir = tmpDir('partial');
  const t = synthetic(60, 30, 3);
  writeJson(path.join(dir, 'metrics', 'test.json'), evaluate(t.labels, t.probs, { bootstrap: { n: 50, seed: 2 } }));
  writeJson(path.join(dir, 'predictions', 'val.json'), '{"files": [], "labels": [0, 1], "probs": [0.2]}');
  writeJson(path.join(dir, 'predictions', 'train.json'), { labels: [1, 1, 1], probs: [0.9, 0.4, 0.7] });
  writeJson(path.join(dir, 'cxr.json'), '{ not json');
  const { files, warnings } = await writeReport(dir);
  const names = files.map((f) => path.basename(f));
  // Pneumonia cases only: no ROC curve, but precision–recall is defined.
  const train = ['confusion', 'pr', 'reliability'].flatMap((k) => [`${k}-train.svg`, `${k}-train.png`]);
  assert.deepEqual(names, ['confusion-test.svg', 'confusion-test.png', ...train, 'index.html']);
  assert.equal(warnings.length, 2, warnings.join('\n'));
  assert.ok(warnings.some((w) => w.includes('predictions/val.json')));
  assert.ok(warnings.some((w) => w.includes('cxr.json')));
  const html = fs.readFileSync(files[files.length - 1], 'utf8');
  assert.match(html, /curves are not available/);
  assert.match(html, /AUC are undefined/, 'the single-class split says why its AUC is missing');
  assert.doesNotMatch(html, /NaN/);

  // A run record with nothing to evaluate yet (a run's first epoch) still gets its page, saying so.
  const started = tmpDir('started');
  fs.writeFileSync(path.join(started, 'log.jsonl'), '');
  const r = await writeReport(started);
  assert.deepEqual(
    r.files.map((f) => path.basename(f)),
    ['index.html'],
  );
  assert.match(r.warnings.join(), /nothing to evaluate/);
});

test('writeReport refuses a folder that holds no run record, and writes nothing there', async () => {
  const empty = tmpDir('empty');
  fs.mkdirSync(path.join(empty, 'metrics'));
  await assert.rejects(writeReport(empty), /no run record here .*cxr report reads the folder of a run/);
  assert.deepEqual(fs.readdirSync(empty), ['metrics']);
});

test('writeComparison writes Markdown and HTML with a row and a confusion matrix per experiment', async () => {
  const dir = tmpDir('cmp');
  const a = synthetic(100, 60, 4);
  const b = synthetic(100, 60, 5);
  const experiments = [
    {
      name: 'baseline',
      description: 'no augmentation',
      metrics: evaluate(a.labels, a.probs, { bootstrap: { n: 50, seed: 1 } }),
      trainingSeconds: 600,
      runDir: path.join(dir, 'runs', 'baseline'),
    },
    {
      name: 'flip | rotate',
      description: 'with augmentation',
      metrics: evaluate(b.labels, b.probs, { bootstrap: { n: 50, seed: 1 } }),
      trainingSeconds: null,
      runDir: path.join(dir, 'runs', 'aug'),
    },
  ];
  const { files } = await writeComparison(experiments, dir);
  assert.deepEqual(
    files.map((f) => path.basename(f)),
    [
      'confusion-baseline.svg',
      'confusion-baseline.png',
      'confusion-flip-rotate.svg',
      'confusion-flip-rotate.png',
      'comparison.md',
      'comparison.html',
    ],
  );
  const md = fs.readFileSync(path.join(dir, 'comparison.md'), 'utf8');
  const rows = md.split('\n').filter((l) => l.startsWith('| **'));
  assert.equal(rows.length, 2);
  assert.match(rows[0], /\| 10 min \| \[runs\/baseline\]\(runs\/baseline\) \|$/);
  assert.match(rows[1], /flip \\\| rotate/);
  assert.match(rows[1], /\| — \|/);
  assert.match(md, /!\[baseline\]\(confusion-baseline\.png\)/);
  // Each rate comes with its interval.
  assert.equal((rows[0].match(/\(\d+\.\d%–\d+\.\d%\)/g) ?? []).length, 3);
  const html = fs.readFileSync(path.join(dir, 'comparison.html'), 'utf8');
  assert.equal((html.match(/<svg\b/g) ?? []).length, 2);
  for (const f of files.filter((f) => f.endsWith('.png')))
    assert.ok(fs.readFileSync(f).subarray(0, 8).equals(PNG_SIGNATURE));
  await assert.rejects(writeComparison([], dir), /nothing to compare/);
});

test("writeComparison draws every ROC curve on one plot and shows each run's training curves", async () => {
  const dir = tmpDir('cmp-roc');
  const a = synthetic(100, 60, 6);
  const b = synthetic(100, 60, 7);
  // Only run A has a report with training curves.
  const runA = path.join(dir, 'runs', 'a');
  fs.mkdirSync(runA, { recursive: true });
  fs.writeFileSync(
    path.join(runA, 'log.jsonl'),
    [1, 2, 3]
      .map((e) => JSON.stringify({ epoch: e, loss: 1 / e, val_loss: 1.2 / e, val_auc: 0.8 + e / 20 }))
      .join('\n') + '\n',
  );
  await writeReport(runA);
  assert.ok(fs.existsSync(path.join(runA, 'report', 'training.svg')));
  const experiments = [
    {
      name: 'A',
      metrics: evaluate(a.labels, a.probs, { bootstrap: { n: 20, seed: 1 } }),
      trainingSeconds: 60,
      runDir: runA,
      predictions: { labels: a.labels, probs: a.probs },
    },
    {
      name: 'B',
      metrics: evaluate(b.labels, b.probs, { bootstrap: { n: 20, seed: 1 } }),
      trainingSeconds: 60,
      runDir: path.join(dir, 'runs', 'b'),
      predictions: { labels: b.labels, probs: b.probs },
    },
  ];
  const { files } = await writeComparison(experiments, dir);
  assert.ok(files.some((f) => path.basename(f) === 'roc-comparison.png'));
  const svg = fs.readFileSync(path.join(dir, 'roc-comparison.svg'), 'utf8');
  const aucA = experiments[0].metrics.auc!.toFixed(3);
  assert.ok(svg.includes(`A (AUC ${aucA})`), 'the legend names each run as its row, with its AUC');
  const md = fs.readFileSync(path.join(dir, 'comparison.md'), 'utf8');
  assert.match(md, /## ROC curves\n\n!\[[^\]]*\]\(roc-comparison\.png\)/);
  assert.match(md, /### A\n\n!\[training curves\]\(runs\/a\/report\/training\.png\)/);
  assert.doesNotMatch(md, /### B/, 'a run without a report gets no training-curve section');
  const html = fs.readFileSync(path.join(dir, 'comparison.html'), 'utf8');
  assert.equal((html.match(/<svg\b/g) ?? []).length, 2 + 1, 'two confusion matrices, one ROC plot');
  // The run folder's own SVG, drawn as an image, never inlined (it may hold a script: security-review-s35).
  const asImage = /<img class="chart" src="data:image\/svg\+xml;base64,/g;
  assert.equal((html.match(asImage) ?? []).length, 1, 'one training plot');

  // With a reference: a paired ΔAUC column, 'reference' on its own row.
  await writeComparison(experiments, dir, { reference: 'B' });
  const rows = fs
    .readFileSync(path.join(dir, 'comparison.md'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('| **'));
  const delta = experiments[0].metrics.auc! - experiments[1].metrics.auc!;
  const sign = delta >= 0 ? '\\+' : '−';
  assert.match(
    rows[0],
    new RegExp(`\\| ${sign}${Math.abs(delta).toFixed(4)} \\([+−]\\d\\.\\d{4} to [+−]\\d\\.\\d{4}\\) \\|`),
  );
  assert.match(rows[1], /\| reference \|/);

  // Rows are paired by film, also when one predictions file names films by absolute path (older
  // runs) and the other relative to the data root, in another order.
  const named = (f: (i: number) => string, p: { labels: number[]; probs: number[] }, order: number[]) => ({
    labels: order.map((i) => p.labels[i]),
    probs: order.map((i) => p.probs[i]),
    files: order.map(f),
  });
  const forward = a.labels.map((_, i) => i);
  const byPath = [
    { ...experiments[0], predictions: named((i) => `/mnt/x/chest_xray/train/C/f${i}.jpeg`, a, forward) },
    { ...experiments[1], predictions: named((i) => `train/C/f${i}.jpeg`, b, [...forward].reverse()) },
  ];
  await writeComparison(byPath, dir, { reference: 'B' });
  const pairedRow = fs
    .readFileSync(path.join(dir, 'comparison.md'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('| **'))[0];
  assert.equal(pairedRow, rows[0], 'the same paired difference as matched by position');
});

test('writeComparison: a per-recipe row per group; shift columns only where a run has them', async () => {
  const dir = tmpDir('cmp-groups');
  const m = (seed: number) =>
    evaluate(synthetic(60, 30, seed).labels, synthetic(60, 30, seed).probs, {
      bootstrap: { n: 0 },
    });
  const robustness = (spec: number, auc: number | null) => ({
    robustSpecificity: spec,
    worstSpecificity: spec / 2,
    meanEce: 0.1,
    shift: {
      robustSensitivity: 0.9,
      meanAuc: auc,
      meanNormalScoreShift: -0.0123,
      outside: { n: 16, normal: 8, specificity: 0.625, auc: 1 },
    },
  });
  const run = (name: string, group: string, seed: number, r?: ReturnType<typeof robustness>) => ({
    name,
    group,
    metrics: m(seed),
    trainingSeconds: 1,
    runDir: path.join(dir, name),
    ...(r ? { robustness: r } : {}),
  });
  const list = [
    run('a-s1', 'a', 1, robustness(0.5, 0.8)),
    run('a-s2', 'a', 2, robustness(0.7, null)),
    run('b-s1', 'b', 3),
  ];
  await writeComparison(list, dir);
  const md = fs.readFileSync(path.join(dir, 'comparison.md'), 'utf8');
  const rows = md.split('\n').filter((l) => l.startsWith('| **'));
  assert.equal(rows.length, 2 + 3);
  const aucs = [list[0].metrics.auc!, list[1].metrics.auc!];
  const mean = ((aucs[0] + aucs[1]) / 2).toFixed(3);
  const range = `${Math.min(...aucs).toFixed(3)}–${Math.max(...aucs).toFixed(3)}`;
  assert.ok(rows[0].startsWith(`| **a** | 2 | ${mean} (${range}) |`), rows[0]);
  assert.match(rows[0], /\| 60\.0% \(50\.0%–70\.0%\) \| 90\.0% \(90\.0%–90\.0%\) \| 0\.800 \(1 of 2 runs\) \|/);
  assert.match(rows[0], /\| 6\/16 \|$/);
  assert.match(rows[1], /^\| \*\*b\*\* \| 1 \| [0-9.]+ \| [0-9.]+ \| — \| — \| — \| — \| — \| — \| — \|$/);
  assert.match(
    rows[2],
    /\| 50\.0% \| 25\.0% \| 0\.100 \| 90\.0% \| 0\.800 \| −0\.012 \| 62\.5% \(NORMAL called PNEUMONIA 3\/8\) \| 1\.000/,
  );
  assert.match(rows[4], /\| — \| — \| — \| — \| — \| — \| — \| — \|/);
  const html = fs.readFileSync(path.join(dir, 'comparison.html'), 'utf8');
  assert.equal((html.match(/<table/g) ?? []).length, 2);

  // Without groups and shift figures: one table, the seed's three robustness columns.
  await writeComparison(
    list.map(({ group: _, robustness: r, ...e }) => (r ? { ...e, robustness: { ...r, shift: undefined } } : e)),
    dir,
  );
  const plain = fs.readFileSync(path.join(dir, 'comparison.md'), 'utf8');
  assert.doesNotMatch(plain, /Per recipe|Robust sensitivity|Kaggle val/);
  assert.match(plain, /\| Robust specificity \| Worst specificity \| Mean ECE \(shifted\) \| Threshold \|/);
});

test('the confusion matrix spec holds counts and row shares', () => {
  const spec = confusionChart({ tp: 30, fn: 10, tn: 50, fp: 0 }, { title: 't' }) as unknown as {
    data: { values: Record<string, unknown>[] };
  };
  const cell = (actual: string, predicted: string) =>
    spec.data.values.find((v) => v.actual === actual && v.predicted === predicted)!;
  assert.equal(cell('pneumonia', 'pneumonia').count, 30);
  assert.equal(cell('pneumonia', 'normal').share, 0.25);
  assert.equal(cell('normal', 'normal').share, 1);
  assert.equal(cell('normal', 'pneumonia').count, 0);
});

test('text is measured with the font, and inlined SVG ids stay unique', () => {
  assert.ok(measureText('iiii', 12) < measureText('MMMM', 12) / 2);
  assert.ok(measureText('Sensitivity', 12, true) > measureText('Sensitivity', 12));
  assert.ok(Math.abs(measureText('abc', 24) - 2 * measureText('abc', 12)) < 1e-9);
  const svg = '<svg width="1"><defs><clipPath id="clip1"/></defs><g clip-path="url(#clip1)"/></svg>';
  const out = inlineSvg(svg, 'roc-test', 'ROC "curve"');
  assert.match(out, /id="roc-test-clip1"/);
  assert.match(out, /url\(#roc-test-clip1\)/);
  assert.match(out, /^<svg role="img" aria-label="ROC &quot;curve&quot;"/);
});

test('wrapText breaks long titles at spaces and keeps an over-long word whole', () => {
  assert.deepEqual(wrapText('Seed fig. 6: transfer learning, frozen ImageNet backbone', 20), [
    'Seed fig. 6:',
    'transfer learning,',
    'frozen ImageNet',
    'backbone',
  ]);
  assert.deepEqual(wrapText('a-very-long-word-indeed x', 5), ['a-very-long-word-indeed', 'x']);
  assert.deepEqual(wrapText('', 10), ['']);
  for (const line of wrapText(
    'cxr: residual CNN, strong augmentation, label smoothing, cosine LR, calibrated, TTA',
    28,
  ))
    assert.ok(line.length <= 28, line);
});
