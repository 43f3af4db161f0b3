// Relative adaptation (`cxr adapt` with bn-reference.json). The source is a seeded cxrnet whose
// moving statistics do not describe the films (as for a network trained on augmented batches);
// its reference statistics are measured on site A's films, as training measures them on the
// validation films. Site B is site A under an acquisition-like shift (adapt-fixtures.ts).
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { adaptModel } from '../src/adapt/adapt';
import { trainingPrior } from '../src/adapt/adapt';
import { adaptShiftMarkdown, adaptShiftTable, resampleToShare } from '../src/experiments/adapt_shift';
import type { ImageSet } from '../src/data/images';
import { BN_REFERENCE_FILE, loadBnReference } from '../src/models/bn_reference';
import { readMeta } from '../src/models/io';
import { makeSites, type Sites, seededWithReference, siteLogits } from './adapt-fixtures';
import { CHEST_XRAY, haveData, makeSeededModel, tempDir } from './ood-fixtures';
import { register as registerAdapt } from '../src/cli/adapt';
import { runLikeMain } from './in-process-cli';

/** `cxr ARGS` in this process (its words and files are the subject; a child each would cost an engine start). */
const cxr = (...args: string[]) => runLikeMain([registerAdapt], args);
const skip = !haveData && 'no shared/data';
let work: string;
let sites: Sites;
let source: string;

before(async () => {
  if (!haveData) return;
  work = tempDir('adapt-relative');
  sites = await makeSites(path.join(work, 'sites'), 30);
  source = await seededWithReference(path.join(work, 'source'), sites);
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const logitsOf = (modelDir: string, dir: string, cls = '') => siteLogits(modelDir, dir, sites, cls);

const meanAbsDiff = (x: number[], y: number[]) => x.reduce((s, v, i) => s + Math.abs(v - y[i]), 0) / x.length;

test('on films like the reference ones, relative adaptation leaves the model as it was; plain AdaBN does not', {
  skip,
}, async () => {
  const lines: string[] = [];
  const rel = path.join(work, 'rel-a');
  const r = await adaptModel({
    modelDir: source,
    imagesDir: sites.a,
    outDir: rel,
    minImages: 20,
    log: (l) => lines.push(l),
  });
  assert.deepEqual(r.adaptation.method, ['adabn-relative']);
  assert.ok(
    lines.some((l) => /relative AdaBN/.test(l)),
    lines.join('\n'),
  );
  const plain = path.join(work, 'plain-a');
  const q = await adaptModel({ modelDir: source, imagesDir: sites.a, outDir: plain, minImages: 20, plain: true });
  assert.deepEqual(q.adaptation.method, ['adabn']);

  const src = await logitsOf(source, sites.a);
  const relLogits = await logitsOf(rel, sites.a);
  relLogits.forEach((v, i) => assert.ok(Math.abs(v - src[i]) <= 1e-3 * (1 + Math.abs(src[i])), `${v} vs ${src[i]}`));
  const moved = meanAbsDiff(await logitsOf(plain, sites.a), src);
  assert.ok(moved > 0.05, `plain AdaBN barely moved the logits (${moved})`);

  const card = fs.readFileSync(path.join(rel, 'MODEL_CARD.md'), 'utf8');
  assert.match(card, /adabn-relative/);
  assert.match(card, /differ from the model's validation films/);
  // The adapted folder carries no reference of its own (adapt again from the source).
  assert.ok(!fs.existsSync(path.join(rel, BN_REFERENCE_FILE)));
});

test('on shifted films, relative adaptation brings NORMAL scores back toward the unshifted ones', {
  skip,
}, async () => {
  const out = path.join(work, 'rel-b');
  await adaptModel({ modelDir: source, imagesDir: sites.b, outDir: out, minImages: 20 });
  const reference = await logitsOf(source, sites.a, 'NORMAL');
  const shifted = meanAbsDiff(await logitsOf(source, sites.b, 'NORMAL'), reference);
  const adapted = meanAbsDiff(await logitsOf(out, sites.b, 'NORMAL'), reference);
  assert.ok(shifted > 0.05, `the shift barely changes the source model's scores (${shifted})`);
  assert.ok(adapted < 0.5 * shifted, `mean |Δlogit| ${adapted.toFixed(3)} adapted vs ${shifted.toFixed(3)} unadapted`);
});

test('a reference measured for other weights is not used: plain AdaBN, with a note', { skip }, async () => {
  const copy = path.join(work, 'stale');
  fs.cpSync(source, copy, { recursive: true });
  const file = path.join(copy, BN_REFERENCE_FILE);
  const ref = JSON.parse(fs.readFileSync(file, 'utf8'));
  ref.members[0].weightsSha256 = '0'.repeat(64);
  fs.writeFileSync(file, JSON.stringify(ref));
  const problem = loadBnReference(copy, [copy]);
  assert.ok(problem.members === null && /other weights/.test(problem.problem));
  const lines: string[] = [];
  const r = await adaptModel({
    modelDir: copy,
    imagesDir: sites.a,
    outDir: path.join(work, 'stale-out'),
    minImages: 20,
    log: (l) => lines.push(l),
  });
  assert.deepEqual(r.adaptation.method, ['adabn']);
  assert.ok(
    lines.some((l) => /no usable reference statistics .*other weights/.test(l)),
    lines.join('\n'),
  );
});

test("cxr adapt-reference writes the reference from the model's own validation split", { skip }, async () => {
  const dir = await makeSeededModel(path.join(work, 'cli-model'), { inputSize: 64 });
  const run = await cxr('adapt-reference', '--model', dir, '--data', CHEST_XRAY);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /13 batch-norm layers in 1 member\(s\), from \d+ films of the validation split/);
  const loaded = loadBnReference(dir, [dir]);
  assert.ok(loaded.members, 'the written reference loads and matches the weights');
  // The split cxr.json records (limit 60 per class, a quarter for validation): 30 films.
  assert.equal(loaded.ref.films.count, 30);
  assert.equal(loaded.members[0].size, 13);
  assert.equal(readMeta(dir).name, 'seeded-test');
  const bad = await cxr('adapt-reference', '--model', dir);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /records no data folder: pass --data/);
  // A folder trained on another machine records that machine's path: the error names it.
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'cxr.json'), 'utf8'));
  meta.data.root = path.join(work, 'gone', 'chest_xray');
  fs.writeFileSync(path.join(dir, 'cxr.json'), JSON.stringify(meta));
  const moved = await cxr('adapt-reference', '--model', dir);
  assert.notEqual(moved.status, 0);
  assert.match(moved.stderr, /the data folder cxr\.json records \(.*gone.chest_xray\) is not here: pass --data/);
});

test('cxr experiments adapt: on the clean validation films relative adaptation changes nothing, plain does', {
  skip,
}, async () => {
  // The model of the test above, with the reference it wrote; the films' own class mix (the validation films'),
  // as a seeded model's scores cannot estimate it (adapt-class-mix.test.ts covers the estimate).
  const dir = path.join(work, 'cli-model');
  const rows = await adaptShiftTable(dir, CHEST_XRAY, { changes: ['none', 'gamma-up@1'], classMix: 'reference' });
  assert.deepEqual(
    rows.map((r) => `${r.change} ${r.adaptation}`),
    [
      'none none',
      'none plain',
      'none relative-pooled',
      'none relative',
      'gamma-up none',
      'gamma-up plain',
      'gamma-up relative-pooled',
      'gamma-up relative',
    ],
  );
  const [asIs, plain, pooled, relative] = rows;
  for (const r of [pooled, relative]) {
    assert.equal(r.auc, asIs.auc);
    assert.equal(r.sensitivity, asIs.sensitivity);
    assert.equal(r.specificity, asIs.specificity);
    assert.ok(Math.abs(r.meanNormal - asIs.meanNormal) < 1e-4);
  }
  assert.ok(Math.abs(plain.meanNormal - asIs.meanNormal) > 1e-3, 'plain AdaBN moves the scores');
  assert.match(adaptShiftMarkdown(rows), /\| gamma-up 1 \| \d+ \| relative \|/);
  // A site resampled to a fifth pneumonia: every NORMAL film, a fifth of the films pneumonia. Each site says how
  // many of its films `cxr adapt` would leave out: none of the validation films, every inverted one.
  const fifth = await adaptShiftTable(dir, CHEST_XRAY, {
    changes: ['none', 'invert@1'],
    shares: [0.2],
    classMix: 'reference',
  });
  assert.equal(fifth.length, 16);
  assert.ok(Math.abs(fifth[8].pneumonia - 0.2) < 0.05, `${fifth[8].pneumonia}`);
  assert.equal(fifth[0].pneumonia, asIs.pneumonia);
  assert.deepEqual(
    fifth.map((r) => (r.change === 'none' ? r.flagged : r.films - r.flagged)),
    fifth.map(() => 0),
    fifth.map((r) => `${r.change}: ${r.flagged} of ${r.films} flagged`).join(', '),
  );
  await assert.rejects(adaptShiftTable(dir, CHEST_XRAY, { changes: ['gamma-up'] }), /NAME@STRENGTH/);
  // Smaller sites, and the kinds asked for: the first estimate without the search beside the default.
  const small = await adaptShiftTable(dir, CHEST_XRAY, {
    changes: ['none'],
    shares: [0.5],
    films: 12,
    methods: ['none', 'relative-first', 'relative'],
  });
  assert.deepEqual(
    small.slice(3).map((r) => `${r.films} ${r.pneumonia.toFixed(2)} ${r.adaptation} ${r.mixedAt === null}`),
    ['12 0.50 none true', '12 0.50 relative-first false', '12 0.50 relative false'],
  );
  // The first site keeps the validation split's own mix, at 12 films.
  assert.ok(Math.abs(small[0].pneumonia - asIs.pneumonia) < 1 / 12, `${small[0].pneumonia} vs ${asIs.pneumonia}`);
  assert.deepEqual(
    small.map((r) => r.films),
    [12, 12, 12, 12, 12, 12],
  );
  assert.match(adaptShiftMarkdown(small), /\| 50\.0% \| 12 \| none \| \d+ \| relative-first \| \d+\.\d% \|/);
  // `cxr adapt --prior`'s thresholds on the default adaptation: the same model and probabilities as the relative row
  // (one adaptation scores both), the threshold moved by the log-odds between the EM prior and the calibration's.
  // This seeded model records no class counts; its copy gets the validation split's, which --prior needs.
  const counted = path.join(work, 'counted-model');
  fs.cpSync(dir, counted, { recursive: true });
  const meta = JSON.parse(fs.readFileSync(path.join(counted, 'cxr.json'), 'utf8'));
  const pneumonia = Math.round(asIs.pneumonia * asIs.films);
  meta.data.validation = { n: asIs.films, normal: asIs.films - pneumonia, pneumonia };
  fs.writeFileSync(path.join(counted, 'cxr.json'), JSON.stringify(meta));
  const calibratedAt = pneumonia / asIs.films;
  assert.equal(trainingPrior(meta).prior, calibratedAt);
  const withPrior = await adaptShiftTable(counted, CHEST_XRAY, {
    changes: ['none'],
    shares: [0.3],
    films: 20,
    methods: ['relative', 'relative-prior'],
  });
  assert.deepEqual(
    withPrior.map((r) => r.adaptation),
    ['relative', 'relative-prior', 'relative', 'relative-prior'],
  );
  for (const [relative, prior] of [withPrior.slice(0, 2), withPrior.slice(2)]) {
    assert.equal(relative.prior, null);
    assert.equal(relative.threshold, meta.operatingPoints.balanced.threshold);
    assert.ok(prior.prior !== null && prior.prior > 0 && prior.prior < 1, `${prior.prior}`);
    assert.equal(prior.prior, relative.mixedAt, 'the share the adaptation settled on, as cxr adapt --prior takes it');
    const logOdds = (p: number) => Math.log(p / (1 - p));
    const expected =
      1 / (1 + Math.exp(-(logOdds(relative.threshold) - (logOdds(prior.prior) - logOdds(calibratedAt)))));
    assert.ok(Math.abs(prior.threshold - expected) < 1e-9, `${prior.threshold} vs ${expected}`);
    assert.ok(Math.abs(prior.threshold - relative.threshold) > 1e-4, `the threshold moved: prior ${prior.prior}`);
    assert.equal(prior.auc, relative.auc);
    assert.equal(prior.ece, relative.ece);
    assert.equal(prior.mixedAt, relative.mixedAt);
  }
  assert.match(adaptShiftMarkdown(withPrior), /\| relative-prior \| \d+\.\d% \| \d+\.\d% \| 0\.\d{3} \|/);
});

test('sites resampled to a share and a number of films take each class evenly, or say why they cannot', () => {
  const labels = Uint8Array.from({ length: 40 }, (_, i) => (i < 10 ? 0 : 1));
  const set: ImageSet = {
    size: 1,
    pixels: Uint8Array.from(labels.keys()),
    labels,
    files: Array.from(labels.keys(), (i) => `f${i}`),
    patients: Array.from(labels.keys(), (i) => `p${i}`),
  };
  const site = resampleToShare(set, 0.5, 16);
  assert.deepEqual(Array.from(site.pixels), [0, 1, 2, 3, 5, 6, 7, 8, 10, 13, 17, 21, 25, 28, 32, 36]);
  assert.equal(resampleToShare(set, 0.2).labels.length, 13); // every NORMAL film, round(2.5) pneumonia films
  assert.throws(() => resampleToShare(set, 0.2, 20), /20 films at 0\.2 pneumonia need 16 NORMAL .* has 10 and 30/);
});
