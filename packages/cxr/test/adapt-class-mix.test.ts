// Adaptation on a site with fewer pneumonia films than the validation split, and no acquisition change:
// the model's own validation films, most pneumonia films left out. Against the pooled reference (the
// validation films' own mix) relative AdaBN reads the missing pneumonia films as an acquisition change
// and moves the normal films' scores; against the reference mixed at the site's estimated share it
// leaves them nearly where they were.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { adaptModel } from '../src/adapt/adapt';
import { givenMixWarning } from '../src/adapt/class_mix';
import { readMeta } from '../src/models/io';
import { initEngine } from '../src/engine';
import { BN_REFERENCE_FORMAT, loadBnReference } from '../src/models/bn_reference';
import { Predictor } from '../src/predict/predictor';
import { runTraining } from '../src/train/run';
import { CHEST_XRAY, needsData } from './shared-data';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const skip = needsData(CHEST_XRAY);
let work: string;
let model: string;
let site: string;
const films: { file: string; label: number }[] = [];

before(async () => {
  if (skip) return;
  await initEngine();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-class-mix-'));
  model = path.join(work, 'model');
  await runTraining({
    data: CHEST_XRAY,
    out: model,
    recipeName: 'cxr',
    report: false,
    progress: false,
    gate: false,
    log: () => {},
    overrides: {
      arch: 'cxrnet',
      inputSize: 64,
      epochs: 4,
      limitPerClass: 150,
      valFraction: 0.3,
      batchSize: 16,
      augment: 'none',
      balance: 'none',
      tta: [],
    },
  });
  // The site: every validation NORMAL film and one pneumonia film in eight.
  const val = JSON.parse(fs.readFileSync(path.join(model, 'predictions', 'val.json'), 'utf8'));
  site = path.join(work, 'site');
  let p = 0;
  val.files.forEach((f: string, i: number) => {
    const label = val.labels[i] as number;
    if (label === 1 && p++ % 8 !== 0) return;
    const to = path.join(site, label ? 'PNEUMONIA' : 'NORMAL', path.basename(f));
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.copyFileSync(path.join(CHEST_XRAY, f), to);
    films.push({ file: to, label });
  });
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

async function logits(dir: string, label: number): Promise<number[]> {
  const p = await Predictor.load(dir, { warmUp: false });
  try {
    const out: number[] = [];
    for (const f of films.filter((x) => x.label === label)) out.push((await p.predict(fs.readFileSync(f.file))).logit);
    return out;
  } finally {
    p.dispose();
  }
}

const meanShift = (x: number[], y: number[]) => x.reduce((s, v, i) => s + v - y[i], 0) / x.length;

test("adaptation compares a site with the validation films mixed in the site's own proportion", {
  skip,
}, async (t) => {
  const ref = loadBnReference(model, [model]);
  assert.ok(ref.members, 'training wrote a reference for these weights');
  assert.equal(ref.ref.format, BN_REFERENCE_FORMAT);
  assert.ok(ref.byClass, 'the reference keeps the classes apart');
  const counts = ref.ref.films.byClass!;
  assert.equal(counts[0] + counts[1], ref.ref.films.count);
  const siteShare = films.filter((f) => f.label === 1).length / films.length;
  assert.ok(siteShare < 0.25 && ref.byClass.pneumonia > 0.4, `site ${siteShare}, reference ${ref.byClass.pneumonia}`);

  const pooled = path.join(work, 'pooled');
  const lines: string[] = [];
  await adaptModel({ modelDir: model, imagesDir: site, outDir: pooled, minImages: 20, classMix: 'reference' });
  const mixed = path.join(work, 'mixed');
  const r = await adaptModel({
    modelDir: model,
    imagesDir: site,
    outDir: mixed,
    minImages: 20,
    log: (l) => lines.push(l),
  });
  const mix = r.adaptation.classMix!;
  assert.equal(mix.how, 'estimated');
  assert.ok(mix.estimates && mix.estimates.length >= 2, JSON.stringify(mix));
  assert.ok(Math.abs(mix.site - siteShare) < 0.15, `estimated ${mix.site}, the site has ${siteShare}`);
  assert.ok(
    lines.some((l) => /class mix: adapted at/.test(l)),
    lines.join('\n'),
  );

  t.diagnostic(lines.filter((l) => /class mix/.test(l)).join(' | '));
  const source = await logits(model, 0);
  const byPooled = meanShift(await logits(pooled, 0), source);
  const byMixed = meanShift(await logits(mixed, 0), source);
  t.diagnostic(
    `site ${siteShare.toFixed(3)} pneumonia, estimated ${mix.site.toFixed(3)}; normal films' mean logit change: ` +
      `${byPooled.toFixed(3)} pooled, ${byMixed.toFixed(3)} mixed`,
  );
  assert.ok(byPooled > 0.1, `the pooled reference barely moved the normal films (${byPooled})`);
  assert.ok(
    Math.abs(byMixed) < 0.5 * byPooled,
    `normal films moved ${byMixed.toFixed(3)} (mixed) vs ${byPooled.toFixed(3)} (pooled)`,
  );
  const card = fs.readFileSync(path.join(mixed, 'cxr.json'), 'utf8');
  assert.match(card, /"classMix"/);
});

test('a share given by the site is used as given', { skip }, async () => {
  const r = await adaptModel({
    modelDir: model,
    imagesDir: site,
    outDir: path.join(work, 'given'),
    minImages: 20,
    classMix: 0.2,
  });
  assert.deepEqual({ how: r.adaptation.classMix?.how, site: r.adaptation.classMix?.site }, { how: 'given', site: 0.2 });
  // What the films read as before adapting is recorded beside the share given.
  assert.equal(r.adaptation.classMix?.estimates?.length, 1);
});

test('a given share far from what the films read as is adapted at, with a warning said and recorded', {
  skip,
}, async () => {
  const lines: string[] = [];
  const out = path.join(work, 'given-far');
  // The site is about one film in eight pneumonia; 0.95 is far above whatever a trained model reads it as.
  const r = await adaptModel({
    modelDir: model,
    imagesDir: site,
    outDir: out,
    minImages: 20,
    classMix: 0.95,
    log: (l) => lines.push(l),
  });
  assert.ok(
    lines.some((l) => /^warning: --class-mix 0\.95 is far from/.test(l)),
    lines.join('\n'),
  );
  const estimate = r.adaptation.classMix!.estimates![0];
  assert.equal(r.adaptation.classMix?.site, 0.95);
  assert.ok(estimate < 0.6, `the films read as ${estimate}`);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0], /--class-mix 0\.95 is far from the \d+\.\d% pneumonia the site's \d+ films read as/);
  const report = JSON.parse(fs.readFileSync(path.join(out, 'adaptation-report.json'), 'utf8'));
  assert.deepEqual(report.warnings, r.warnings);
});

test("givenMixWarning: twenty points apart, and beyond the estimate's sampling error", () => {
  assert.equal(givenMixWarning(0.3, 0.45, 500), null, 'fifteen points apart');
  assert.match(givenMixWarning(0.2, 0.5, 500) ?? '', /pneumonia films may be pushed towards NORMAL/);
  assert.match(givenMixWarning(0.8, 0.5, 500) ?? '', /normal films may be pushed towards PNEUMONIA/);
  // Twenty-five points on 16 films is within twice the sampling error (about 25 points at 50%).
  assert.equal(givenMixWarning(0.75, 0.5, 16), null);
  assert.notEqual(givenMixWarning(0.75, 0.5, 100), null);
});

test('--prior moves the thresholds to the share the adaptation settled on, or was given', { skip }, async () => {
  const source = readMeta(model);
  const logOdds = (p: number) => Math.log(p / (1 - p));
  for (const classMix of ['auto', 0.2] as const) {
    const lines: string[] = [];
    const r = await adaptModel({
      modelDir: model,
      imagesDir: site,
      outDir: path.join(work, `prior-${classMix}`),
      minImages: 20,
      classMix,
      prior: true,
      log: (l) => lines.push(l),
    });
    const a = r.adaptation;
    assert.deepEqual(a.method, ['adabn-relative', 'prior']);
    assert.equal(a.prior?.from, 'class-mix');
    assert.equal(a.prior?.site, a.classMix?.site);
    assert.equal(a.prior?.iterations, undefined);
    const shift = logOdds(a.classMix!.site) - logOdds(a.prior!.train);
    assert.ok(Math.abs(a.prior!.logitShift - shift) < 1e-12);
    const adapted = readMeta(path.join(work, `prior-${classMix}`));
    const moved = 1 / (1 + Math.exp(-(logOdds(source.operatingPoints.balanced.threshold) - shift)));
    assert.ok(Math.abs(adapted.operatingPoints.balanced.threshold - moved) < 1e-12);
    assert.ok(
      lines.some((l) =>
        // The site has fewer pneumonia films than calibration assumed (shift < 0): the thresholds go up.
        new RegExp(
          '% on the site, the share the batch-norm adaptation settled on .*: ' +
            `thresholds moved ${shift < 0 ? 'up' : 'down'} by`,
        ).test(l),
      ),
      lines.join('\n'),
    );
  }
});
