// Comparing runs as a researcher does: `cxr compare --out` draws a page (the paired table, both ROC curves on one
// plot) whose numbers are the JSON's, and `cxr report` titles a folder of several models' evaluations, and a run,
// with what the run recorded (model name, version, training seed) rather than file names ("Split “eval-val”").
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { register as registerCompare } from '../src/cli/compare';
import { register as registerEvaluate } from '../src/cli/evaluate';
import { dec, signed } from '../src/eval/format';
import { checkRunDir } from '../src/report/run_dir';
import { splitLabel } from '../src/report/split_heading';
import { writeReport } from '../src/report/write_report';
import { runInProcess } from './in-process-cli';
import { CHEST_XRAY, haveData, makeSeededModel, TINY_SEEDED, tempDir } from './ood-fixtures';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
const skip = !haveData && 'no shared/data';
const cli = (...args: string[]) => runInProcess([registerEvaluate, registerCompare], args);

/** A seeded tiny model whose cxr.json records training seed `seed`, as `cxr train` records it in its recipe. */
async function seededModel(dir: string, seed: number): Promise<string> {
  await makeSeededModel(dir, { ...TINY_SEEDED, seed });
  const file = path.join(dir, 'cxr.json');
  const meta = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.writeFileSync(file, JSON.stringify({ ...meta, recipe: { ...meta.recipe, seed } }));
  return dir;
}

/** The text of every `<h1>`/`<h2>` of a page. */
const headings = (html: string) => [...html.matchAll(/<h[12][^>]*>([^<]*)<\/h[12]>/g)].map((m) => m[1]);

test('cxr compare --out draws comparisons/<split>.html: both models, the paired table and both ROC curves', {
  skip,
}, async () => {
  const dir = tempDir('compare-s38');
  dirs.push(dir);
  const a = await seededModel(path.join(dir, 'a'), 1);
  const b = await seededModel(path.join(dir, 'b'), 2);
  const out = path.join(dir, 'out');
  const r = await cli('compare', '--models', a, b, '--data', path.join(CHEST_XRAY, 'val'), '--out', out);
  const page = path.join(out, 'comparisons', 'eval-val.html');
  assert.ok(fs.existsSync(page), `no page; stderr: ${r.stderr}`);
  assert.ok(r.stderr.includes(`wrote ${page}`), 'the page is not said on stderr');
  const html = fs.readFileSync(page, 'utf8');
  const json = JSON.parse(fs.readFileSync(path.join(out, 'comparisons', 'eval-val.json'), 'utf8'));
  // Both seeds of one tiny recipe are named alike: the page tells them apart by what their cxr.json records.
  const h1 = headings(html)[0];
  assert.ok(h1.includes('A: seeded-test v0.0.1, seed 1') && h1.includes('B: seeded-test v0.0.1, seed 2'), h1);
  // The table's numbers are the JSON's, as the page rounds them.
  for (const side of [json.a, json.b])
    assert.ok(html.includes(`<td>${dec(side.metrics.auc)}<br>`), `AUC ${side.metrics.auc} not in the table`);
  assert.ok(html.includes(signed(json.aucDifference.difference)), 'the AUC difference is not in the table');
  assert.ok(html.includes(`right by A alone ${json.sensitivity.onlyA}, by B alone ${json.sensitivity.onlyB}`));
  // ("precision is undefined" is a metrics note, in words: a value shown as "undefined" is the fault.)
  assert.ok(!/NaN|\[object|>undefined<|vundefined|undefined( pp|%)/.test(html), 'NaN, undefined or an object shown');
  // The ROC curves of both, inlined, and every linked file there.
  assert.ok(html.includes('aria-label="ROC curves of A and B.'), 'no ROC figure');
  const links = [...html.matchAll(/href="([^"#]+)"/g)].map((m) => m[1]);
  assert.ok(links.includes('eval-val-roc.png'), links.join(' '));
  for (const l of links) assert.ok(fs.existsSync(path.join(out, 'comparisons', l)), `dead link ${l}`);
  // `cxr report` on the folder sends its user to the page.
  assert.throws(
    () => checkRunDir(out),
    (e: Error) => e.message.includes(`its page is ${page}`),
  );
});

test('cxr report of two models evaluations titles each split with its model; the validation split is optimistic', {
  skip,
}, async () => {
  const dir = tempDir('report-s38');
  dirs.push(dir);
  const a = await seededModel(path.join(dir, 'a'), 1);
  const b = await seededModel(path.join(dir, 'b'), 2);
  const out = path.join(dir, 'evals');
  await cli('evaluate', '--model', a, '--data', path.join(CHEST_XRAY, 'val'), '--out', out);
  await cli('evaluate', '--model', b, '--data', CHEST_XRAY, '--split', 'validation', '--out', out);
  await writeReport(out);
  const html = fs.readFileSync(path.join(out, 'report', 'index.html'), 'utf8');
  const h = headings(html);
  assert.ok(h[0].endsWith('evaluations of 2 models'), h[0]);
  const sha = (m: string) => JSON.parse(fs.readFileSync(path.join(out, 'metrics', `${m}.json`), 'utf8')).model.sha256;
  // Both are "seeded-test v0.0.1": the heading names each by its weights' digest too.
  const of = (split: string) => `seeded-test v0.0.1 (sha256 ${sha(split).slice(0, 12)}…)`;
  assert.ok(h.includes(`The data’s val split — ${of('eval-val')}`), h.join(' | '));
  assert.ok(h.includes(`Its validation split, scored by cxr evaluate — ${of('eval-validation')}`), h.join(' | '));
  assert.ok(!h.some((x) => x.includes('Split “')), h.join(' | '));
  // The model's own validation split, scored again, is the films its thresholds were chosen on: optimistic, as the
  // run's own validation section says; the data's val split is not.
  const section = (id: string) => html.split(`<h2 id="split-${id}">`)[1].split('<h2 ')[0];
  const tuned = 'Thresholds and calibration were tuned on this set';
  assert.ok(section('eval-validation').includes(tuned), 'no optimism note on the validation split');
  assert.ok(section('eval-validation-assessed').includes(tuned), 'no optimism note on its assessed films');
  assert.ok(!section('eval-val').includes(tuned), "the data's val split called tuned on");
});

test("a run's report is titled with its model's name, version and training seed; split files in words", async () => {
  const dir = tempDir('report-seed-s38');
  dirs.push(dir);
  fs.writeFileSync(path.join(dir, 'cxr.json'), JSON.stringify({ name: 'cxrnet-x', version: '3', recipe: { seed: 7 } }));
  await writeReport(dir);
  const html = fs.readFileSync(path.join(dir, 'report', 'index.html'), 'utf8');
  assert.equal(headings(html)[0], 'Pneumonia classifier report — cxrnet-x v3, seed 7');
  assert.equal(splitLabel('test-assessed'), 'Test set, assessed films only');
  assert.equal(splitLabel('eval-val-assessed'), 'The data’s val split, assessed films only');
  assert.equal(splitLabel('all'), 'All films of the folder');
  assert.equal(splitLabel('site-a'), 'Split “site-a”');
});
