// How the report pages look (session 39), checked as a reader would see them in Chromium:
// - a chart is never drawn much smaller than its own size: a run's two-panel training chart on a 390 px phone, and
//   every run's training curves in the comparison page's 300 px boxes, shrank their ticks and legends to about 4 px;
//   now a chart keeps MIN_CHART_SCALE of its size and scrolls sideways in a focusable box where the column is narrower;
// - a model's hyphenated name ("cxr-shift-ema-period-…") in a confusion matrix's title is broken after its hyphens, so
//   `cxr compare` draws A's matrix as large as B's (kept whole, it widened A's chart, which the page then shrank);
// - a long command or path in <code> (the robustness page's "Run it again" with a --changes list) breaks rather than
//   widening a phone's page;
// - the comparison table's column headings wrap, so on a 1280 px screen its last column (Run) is not cut off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { confusionAt, evaluate } from '../src/eval';
import { confusionChart, writeComparison } from '../src/report';
import { htmlPage, MIN_CHART_SCALE } from '../src/report/html';
import { renderSvg } from '../src/report/render';
import { markLayer } from '../src/report/chart_style';
import { browserForFile, noChromium } from './browser-fixture';
import { tempDirsRemovedAfter } from './temp-dirs';
import { reportedRun } from './reported-run';
import { syntheticScores } from './synthetic-scores';

const browser = browserForFile();
const newDir = tempDirsRemovedAfter();
const tmpDir = (name: string) => newDir(`s39-visual-${name}`);

const svgWidth = (svg: string) => Number(/<svg\b[^>]*?\swidth="([\d.]+)"/.exec(svg)?.[1]);

/** A run folder with a model card, validation scores and a ten-epoch training log (so its report has every chart). */
async function runWithReport(dir: string, seed: number): Promise<void> {
  const log = Array.from({ length: 10 }, (_, i) => ({
    epoch: i + 1,
    loss: 0.6 - i * 0.04,
    val_loss: 0.5 - i * 0.02 + (i % 3) * 0.03,
    val_auc: 0.9 + i * 0.008,
    val_accuracy: 0.85 + i * 0.01 - (i % 2) * 0.02,
  }));
  await reportedRun(dir, syntheticScores(80, 50, seed, 1.2), `run-${seed}`, log);
}

interface Look {
  pageWidth: number;
  /** Each chart: its drawn width over its own, and whether the box it scrolls in takes keyboard focus. */
  charts: { label: string; scale: number; focusable: boolean }[];
  /** Each table's scroll box: how much wider its table is than the box. */
  tableOverflow: number[];
}

/** The page at `file` in a `width` px window: its width, how large its charts are drawn, whether tables fit. */
async function look(file: string, width: number): Promise<Look> {
  const context = await browser().newContext({ viewport: { width, height: 800 } });
  try {
    const page = await context.newPage();
    await page.goto(`file://${file}`);
    await page.waitForFunction(() => [...document.images].every((i) => i.complete));
    return await page.evaluate(() => {
      const charts = [...document.querySelectorAll('figure svg[role="img"], figure img.chart')].map((el) => {
        // An inline chart's own width is its width attribute; an image's is the natural width of its SVG.
        const own = el instanceof HTMLImageElement ? el.naturalWidth : Number(el.getAttribute('width'));
        const box = el.parentElement!;
        return {
          label: el.getAttribute('aria-label') ?? el.getAttribute('alt') ?? '',
          scale: el.getBoundingClientRect().width / own,
          focusable: box.scrollWidth <= box.clientWidth || box.tabIndex >= 0,
        };
      });
      const tableOverflow = [...document.querySelectorAll('.wide')].map((w) => w.scrollWidth - w.clientWidth);
      return { pageWidth: document.documentElement.scrollWidth, charts, tableOverflow };
    });
  } finally {
    await context.close();
  }
}

/** Every chart drawn at MIN_CHART_SCALE of its size or larger (a pixel of rounding allowed), scrolled by keyboard. */
function assertReadable(charts: Look['charts'], where: string): void {
  assert.ok(charts.length > 0, `${where}: no charts found`);
  for (const c of charts) {
    assert.ok(
      c.scale >= MIN_CHART_SCALE - 0.01,
      `${where}: "${c.label}" is drawn at ${c.scale.toFixed(2)} of its size`,
    );
    assert.ok(c.focusable, `${where}: "${c.label}" scrolls in a box that takes no keyboard focus`);
  }
}

test("a run's report on a 390 px phone draws its charts large enough to read, the page no wider than the screen", {
  skip: noChromium,
}, async () => {
  const dir = tmpDir('run');
  await runWithReport(dir, 1);
  const seen = await look(path.join(dir, 'report', 'index.html'), 390);
  assert.ok(seen.pageWidth <= 390, `the page is ${seen.pageWidth} px wide in a 390 px window`);
  assert.ok(
    seen.charts.some((c) => /training/i.test(c.label)),
    'the report has its training chart',
  );
  assertReadable(seen.charts, 'report at 390 px');
});

test('the comparison page draws every run’s training curves large enough to read, and its table fits 1280 px', {
  skip: noChromium,
}, async () => {
  const dir = tmpDir('cmp');
  const experiments = [];
  for (const seed of [1, 2, 3]) {
    // As docs/experiments lays them out: each run's folder beside the page.
    const runDir = path.join(dir, `seed${seed}-baseline`);
    await runWithReport(runDir, seed);
    const s = syntheticScores(80, 50, seed, 1.2);
    experiments.push({
      name: `Seed fig. ${seed}: baseline CNN + class-balanced training set`,
      description: 'deadskull7 150px, rmsprop lr 0.0001 (constant), 10 epochs, batch 32, balance none, augment none',
      metrics: evaluate(s.labels, s.probs, { bootstrap: { n: 50, seed: 1 } }),
      predictions: s,
      trainingSeconds: 540,
      runDir,
    });
  }
  await writeComparison(experiments, dir, { reference: experiments[0].name });
  const file = path.join(dir, 'comparison.html');
  const wide = await look(file, 1280);
  assert.equal(wide.charts.filter((c) => /^Training curves/.test(c.label)).length, 3, 'three training charts');
  assertReadable(wide.charts, 'comparison at 1280 px');
  for (const overflow of wide.tableOverflow)
    assert.ok(
      overflow <= 0,
      `at 1280 px the comparison table is ${overflow} px wider than its box: its Run is cut off`,
    );
  const phone = await look(file, 390);
  assert.ok(phone.pageWidth <= 390, `the page is ${phone.pageWidth} px wide in a 390 px window`);
  assertReadable(phone.charts, 'comparison at 390 px');
});

test("a model's hyphenated name in a confusion matrix's title wraps: A's matrix is drawn as wide as B's", async () => {
  const c = confusionAt([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], 0.5);
  const draw = (title: string) =>
    renderSvg(confusionChart(c, { title, subtitle: 'balanced, threshold 0.157', cell: 80 })).then(svgWidth);
  const long = await draw('A: cxr-shift-ema-period-mobilenet-short-lpft-ens3 v20261204T194945');
  const short = await draw('B: cxr v20261202T145446');
  assert.ok(long > 0 && short > 0, 'both charts have a width');
  assert.ok(long <= short + 2, `A's chart is ${long} px wide, B's ${short}: the long name widens it`);
});

test('a long command in the text breaks on a 390 px phone instead of widening the page', {
  skip: noChromium,
}, async () => {
  const dir = tmpDir('code');
  const command =
    'cxr robustness --model /home/someone/models/default --data /data/chest_xray/val --seed 1 ' +
    '--changes blur,sharpen,noise,jpeg,resample,aspect,zoom,padding,collimation,text,marker,rotation,invert';
  const file = path.join(dir, 'index.html');
  fs.writeFileSync(
    file,
    htmlPage('code', `<section class="card"><p>Run it again: <code>${command}</code>.</p></section>`),
  );
  const seen = await look(file, 390);
  assert.ok(seen.pageWidth <= 390, `the page is ${seen.pageWidth} px wide in a 390 px window`);
});

test('operating points at one threshold are one point named by both, not two dots on one spot', () => {
  const at = { threshold: 0.265, sensitivity: 0.99, specificity: 0.9, precision: 0.95 };
  const layer = markLayer(
    [
      { name: 'screening', ...at },
      { name: 'balanced', ...at },
      { name: 'strict', threshold: 0.6, sensitivity: 0.9, specificity: 0.97, precision: 0.98 },
    ],
    'fpr',
    'tpr',
  );
  const labels = layer.data.values.map((v) => v.label);
  assert.equal(labels.length, 2, `one point per threshold: ${labels.join(' | ')}`);
  assert.ok(labels[0].startsWith('screening = balanced (t = 0.265)'), labels[0]);
  assert.ok(labels[1].startsWith('strict (t = 0.600)'), labels[1]);
  assert.equal(layer.encoding.color.scale.domain.length, 2, 'the legend lists the two points');
});
