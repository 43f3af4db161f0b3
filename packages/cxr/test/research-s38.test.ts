// A researcher reading the experiment pages and model cards (session 38): a curve a reader could not match to its
// row, a card that stated 99% of a model chosen at 95%, and a refusal that named no option.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { register as registerCompare } from '../src/cli/compare';
import { evaluate, operatingPoints } from '../src/eval';
import { modelCard } from '../src/models/card';
import { parseMeta, type ModelMeta } from '../src/models/metadata';
import { writeComparison } from '../src/report/comparison';
import { runInProcess } from './in-process-cli';
import { reportOfPoints } from './reported-run';
import { syntheticScores } from './synthetic-scores';
import { tempDirsRemovedAfter } from './temp-dirs';

const tempDir = tempDirsRemovedAfter();
const tmpDir = (name: string) => tempDir(`s38-research-${name}`);

/** The words of an SVG's <text> elements (the chart's titles, axes and legend). */
const svgTexts = (svg: string) => [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);

test("the comparison's ROC legend names each curve as its row; the Run column names each run's folder", async () => {
  const out = tmpDir('comparison');
  const runs = ['seed1-baseline', 'seed2-balanced'].map((folder, i) => {
    const runDir = path.join(out, folder);
    fs.mkdirSync(runDir);
    fs.writeFileSync(path.join(runDir, 'MODEL_CARD.md'), '# card\n');
    const s = syntheticScores(40, 25, i + 1, 1.2);
    return {
      name: `Seed fig. ${i + 2}: a recipe named by its title`,
      metrics: evaluate(s.labels, s.probs, { threshold: 0.5 }),
      trainingSeconds: 60,
      runDir,
      predictions: s,
    };
  });
  await writeComparison(runs, out, { split: 'validation' });
  const legend = svgTexts(fs.readFileSync(path.join(out, 'roc-comparison.svg'), 'utf8'));
  for (const r of runs) {
    assert.ok(
      legend.some((t) => t.startsWith(`${r.name} (AUC`)),
      `the legend names "${r.name}" as the table does: ${legend.slice(-5).join(' | ')}`,
    );
    assert.ok(!legend.some((t) => t.startsWith(path.basename(r.runDir))), 'no curve named by folder alone');
  }
  const html = fs.readFileSync(path.join(out, 'comparison.html'), 'utf8');
  for (const r of runs) {
    const folder = path.basename(r.runDir);
    assert.ok(html.includes(`<b>${r.name}</b>`), `the table's row for ${r.name}`);
    assert.ok(
      html.includes(`<td>${folder} (<a href="${folder}/MODEL_CARD.md">model card</a>)</td>`),
      `the Run column names ${folder}, as the Markdown table does, not only "model card"`,
    );
  }
});

// test/golden/card-meta.json: a model's cxr.json as `cxr train` writes it, with its points' recorded rules removed.
const GOLDEN = path.resolve(__dirname, '..', '..', 'test', 'golden', 'card-meta.json');
const base = parseMeta(JSON.parse(fs.readFileSync(GOLDEN, 'utf8')), GOLDEN);

/** The card's paragraph under its operating-point table, on one line. */
function cardRuleWords(meta: ModelMeta): string {
  const card = modelCard(meta);
  const at = card.indexOf('`screening`: the highest threshold');
  assert.ok(at >= 0, 'the card explains its operating points');
  return card.slice(at).replace(/\s+/g, ' ');
}

const withRules = (screening: string, balanced: string): ModelMeta => ({
  ...base,
  operatingPoints: {
    screening: { ...base.operatingPoints.screening, rule: screening },
    balanced: { ...base.operatingPoints.balanced, rule: balanced },
  },
});

test("the model card states the screening target and balanced rule the model's cxr.json records", () => {
  const at95 = cardRuleWords(withRules('sensitivity>=0.95', 'youden'));
  assert.ok(at95.includes('sensitivity ≥ 95%'), `a model chosen at 95%: ${at95}`);
  assert.ok(!at95.includes('99%'), `the card promised 99%: ${at95}`);
  assert.ok(at95.includes("`balanced`: Youden's J (its maximum)"), `J's maximum: ${at95}`);

  const today = cardRuleWords(withRules('sensitivity>=0.99', 'youden-plateau-middle'));
  assert.ok(today.includes('sensitivity ≥ 99%'), `a model chosen at 99%: ${today}`);
  assert.ok(today.includes('within 0.01 of its maximum'), `the plateau rule: ${today}`);

  // Points chosen before rules were recorded (docs/experiments' first rows): 95% and J's maximum, as the report's
  // glossary reads them.
  const before = cardRuleWords(base);
  assert.ok(before.includes('sensitivity ≥ 95%'), `a model from before rules were recorded: ${before}`);
});

/** The glossary's words on the operating points of a tiny run whose cxr.json records `points`. */
async function glossaryOf(points: Record<string, unknown>): Promise<string> {
  const html = await reportOfPoints(tmpDir('run'), points);
  const at = html.indexOf('<dt>Threshold and operating points</dt>');
  assert.ok(at >= 0, 'the glossary explains operating points');
  return html.slice(at, html.indexOf('</dd>', at)).replace(/<[^>]+>/g, ' ');
}

test('a screening point that took balanced’s threshold reads as made at 99% in the card and the glossary', async () => {
  // operatingPoints gives screening balanced's point (and its rule) when balanced already catches 99% of pneumonia:
  // three committed models record such points.
  const val = syntheticScores(60, 35, 5, 3);
  const ops = operatingPoints(val.labels, val.probs);
  assert.equal(ops.screening.rule, 'youden-plateau-middle', 'screening took balanced’s point');
  const words = await glossaryOf(ops);
  assert.ok(words.includes('at least 99% of pneumonia'), `the glossary: ${words}`);
  const card = cardRuleWords({ ...base, operatingPoints: ops });
  assert.ok(card.includes('sensitivity ≥ 99%'), `the card: ${card}`);
});

test('cxr compare --models with a missing folder names the option, as --data and --images refusals do', async () => {
  const missing = path.join(tmpDir('compare'), 'nope');
  await assert.rejects(
    runInProcess([registerCompare], ['compare', '--models', missing, missing, '--data', missing]),
    (e: Error) => e.message.startsWith(`--models ${missing}: no such folder`),
  );
});
