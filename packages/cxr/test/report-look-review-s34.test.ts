// Review of how the report pages look (session 34): on a 390 px phone a run's report is no wider than the
// screen (its figures' grid and its tables used to widen the whole page), every table that scrolls sideways
// takes keyboard focus (axe's scrollable-region-focusable, which the comparison pages failed), and the
// reliability diagram's histogram of image counts ticks whole images, not 0.5 and 1.5.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { evaluate, reliabilityBins } from '../src/eval';
import { reliabilityChart, trainingChart, writeComparison } from '../src/report';
import { renderSvg } from '../src/report/render';
import { axeProblems, browserForFile, noChromium } from './browser-fixture';
import { tempDirsRemovedAfter } from './temp-dirs';
import { reportedRun } from './reported-run';
import { syntheticScores } from './synthetic-scores';

const browser = browserForFile();
const newDir = tempDirsRemovedAfter();
const tmpDir = (name: string) => newDir(`s34-look-${name}`);

const synthetic = (n: number, nPos: number, seed: number) => syntheticScores(n, nPos, seed, 1.2);

/** How wide the page at `file` is in a `width` px window, and what axe finds there. */
async function look(file: string, width: number): Promise<{ pageWidth: number; axe: string[] }> {
  const context = await browser().newContext({ viewport: { width, height: 800 } });
  try {
    const page = await context.newPage();
    await page.goto(`file://${file}`);
    const pageWidth = await page.evaluate(() => document.documentElement.scrollWidth);
    return { pageWidth, axe: await axeProblems(page) };
  } finally {
    await context.close();
  }
}

test("a run's report on a 390 px phone: no wider than the screen, tables scroll by keyboard", {
  skip: noChromium,
}, async () => {
  const dir = tmpDir('run');
  await reportedRun(dir, synthetic(60, 35, 1), 'tiny');
  const { pageWidth, axe } = await look(path.join(dir, 'report', 'index.html'), 390);
  assert.ok(pageWidth <= 390, `the page is ${pageWidth} px wide in a 390 px window`);
  assert.deepEqual(axe, []);
});

test('the experiments comparison page: its wide tables scroll by keyboard', { skip: noChromium }, async () => {
  const dir = tmpDir('cmp');
  const experiments = [1, 2].map((seed) => {
    const s = synthetic(60, 35, seed);
    return {
      name: `recipe-s${seed}`,
      description: 'a recipe',
      // Runs of one recipe over seeds: the page opens with their per-recipe table, which has no link to focus.
      group: 'recipe',
      metrics: evaluate(s.labels, s.probs, { bootstrap: { n: 50, seed: 1 } }),
      trainingSeconds: 60,
      runDir: path.join(dir, 'runs', `r${seed}`),
    };
  });
  await writeComparison(experiments, dir);
  const { pageWidth, axe } = await look(path.join(dir, 'comparison.html'), 390);
  assert.ok(pageWidth <= 390, `the page is ${pageWidth} px wide in a 390 px window`);
  assert.deepEqual(axe, []);
});

test('the reliability histogram of a few films ticks whole images', async () => {
  // 6 films: no bin holds more than 2, where vega ticks 0, 0.5, 1, 1.5, 2 unless told counts are whole.
  const labels = [0, 0, 0, 1, 1, 1];
  const probs = [0.32, 0.45, 0.52, 0.55, 0.66, 0.74];
  const svg = await renderSvg(reliabilityChart(reliabilityBins(labels, probs), { title: 'Reliability' }));
  const ticks = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
  assert.ok(ticks.includes('Images'), 'the histogram is drawn');
  for (const half of ['0.5', '1.5']) assert.ok(!ticks.includes(half), `a tick at ${half} images: ${ticks.join(' ')}`);
});

test("the training chart's 'best val AUC' label stays inside the plot when the first epoch is the best", async () => {
  const bestAt = async (best: number) => {
    const log = [1, 2, 3].map((epoch) => ({
      epoch,
      loss: 0.7 / epoch,
      val_loss: 0.6 / epoch,
      val_auc: epoch === best ? 0.9 : 0.8,
      val_accuracy: 0.75,
    }));
    const svg = await renderSvg(trainingChart(log, { title: 'Training progress' }));
    const labels = [...svg.matchAll(/<text([^>]*)>best val AUC<\/text>/g)].map((m) => m[1]);
    assert.equal(labels.length, 2, 'one label on each panel');
    return labels;
  };
  // At epoch 1 the rule is the plot's left edge: a label ending there (text-anchor end) lies over the y axis.
  for (const attrs of await bestAt(1)) assert.doesNotMatch(attrs, /text-anchor="end"/);
  // Later, left of the rule as before.
  for (const attrs of await bestAt(3)) assert.match(attrs, /text-anchor="end"/);
});
