// Adapting an adapted folder again (a second site, or the same site a month later), ensembles of adapted
// models, and `cxr adapt` on an ensemble folder: as a hospital's integrator would chain them.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { adaptModel, AdaptRefused } from '../src/adapt/adapt';
import { shiftThreshold } from '../src/adapt/prior';
import { loadModel, readMeta } from '../src/models/io';
import { checkMembers, EnsembleRefused } from '../src/train/ensemble_members';
import { loadRecordedSplit } from '../src/data/dataset_images';
import { perturbImages } from '../src/data/perturb_catalog';
import { normalizeImages } from '../src/data/preprocess';
import { splitModel } from '../src/explain/model_parts';
import { oodScore, scoreSummary } from '../src/explain/ood';
import { fitOodFromData, squareFeatures } from '../src/explain/ood_fit';
import { makeSites, type Sites, seededWithReference } from './adapt-fixtures';
import { CHEST_XRAY, haveData, makeSeededModel, tempDir } from './ood-fixtures';

const skip = !haveData && 'no shared/data';
let work: string;
let sites: Sites;
/** A seeded model whose cxr.json records its validation class counts and split fingerprint. */
let seeded: string;

/** cxr.json of `dir` with `extra` merged into its data entry. */
function recordData(dir: string, extra: Record<string, unknown>): void {
  const meta = readMeta(dir);
  fs.writeFileSync(path.join(dir, 'cxr.json'), JSON.stringify({ ...meta, data: { ...meta.data, ...extra } }));
}

before(async () => {
  if (!haveData) return;
  work = tempDir('adapt-s36');
  sites = await makeSites(path.join(work, 'sites'), 30);
  seeded = await makeSeededModel(path.join(work, 'seeded'), { inputSize: 64 });
  recordData(seeded, { validation: { n: 60, normal: 30, pneumonia: 30 }, fingerprint: 'f'.repeat(64) });
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('a relatively adapted folder is not adapted again: the refusal names the source to adapt instead', {
  skip,
}, async () => {
  const source = await seededWithReference(path.join(work, 'rel-source'), sites, 1);
  const first = path.join(work, 'rel-first');
  const r = await adaptModel({ modelDir: source, imagesDir: sites.b, outDir: first, minImages: 20 });
  assert.deepEqual(r.adaptation.method, ['adabn-relative']);
  // Without the refusal this fell back to plain AdaBN (the adapted folder has no reference of its own).
  await assert.rejects(
    adaptModel({ modelDir: first, imagesDir: sites.a, outDir: path.join(work, 'rel-second'), minImages: 20 }),
    (e: Error) =>
      e instanceof AdaptRefused &&
      e.message.includes(path.resolve(source)) &&
      /already adapted .*replaces the earlier one.*--plain/.test(e.message),
  );
  assert.ok(!fs.existsSync(path.join(work, 'rel-second')), 'nothing written');
  assert.equal(readMeta(first).adaptation?.sourceDir, path.resolve(source));
  // Asked for plain AdaBN, it adapts, and the record keeps the adaptation it replaces.
  const plain = path.join(work, 'rel-plain');
  const q = await adaptModel({ modelDir: first, imagesDir: sites.a, outDir: plain, minImages: 20, plain: true });
  assert.deepEqual(q.adaptation.method, ['adabn']);
  assert.equal(
    (readMeta(plain).adaptation?.previous as { fingerprint?: string })?.fingerprint,
    r.adaptation.fingerprint,
  );
});

test('--prior on a folder adapted with --prior moves the calibrated thresholds once, not twice', {
  skip,
}, async () => {
  const src = readMeta(seeded);
  const first = path.join(work, 'prior-first');
  const a = (await adaptModel({ modelDir: seeded, imagesDir: sites.b, outDir: first, minImages: 20, prior: true }))
    .adaptation;
  assert.ok(a.prior && Math.abs(a.prior.logitShift) > 0.05, `a first shift to detect: ${a.prior?.logitShift}`);
  const lines: string[] = [];
  const second = path.join(work, 'prior-second');
  const b = (
    await adaptModel({
      modelDir: first,
      imagesDir: sites.b,
      outDir: second,
      minImages: 20,
      prior: true,
      log: (l) => lines.push(l),
    })
  ).adaptation;
  assert.ok(b.prior);
  const meta = readMeta(second);
  for (const [k, op] of Object.entries(meta.operatingPoints)) {
    const want = shiftThreshold(src.operatingPoints[k].threshold, b.prior.logitShift);
    assert.ok(Math.abs(op.threshold - want) < 1e-12, `${k}: ${op.threshold} against ${want}`);
    assert.equal(b.prior.thresholdsBefore[k], src.operatingPoints[k].threshold);
  }
  assert.ok(lines.some((l) => /thresholds start from the source calibration/.test(l)));
  assert.equal((meta.adaptation?.previous as { date?: string })?.date, a.date);
  // Adapted again without --prior: the earlier site's shift does not stay behind.
  const third = path.join(work, 'prior-none');
  await adaptModel({ modelDir: first, imagesDir: sites.a, outDir: third, minImages: 20 });
  for (const [k, op] of Object.entries(readMeta(third).operatingPoints))
    assert.equal(op.threshold, src.operatingPoints[k].threshold, k);
});

test('cxr ensemble refuses adapted members, saying which and what to do; cxr adapt adapts every member', {
  skip,
}, async () => {
  const [m1, m2] = [path.join(work, 'ens-m1'), path.join(work, 'ens-m2')];
  for (const [dir, seed] of [
    [m1, 5],
    [m2, 6],
  ] as const) {
    await makeSeededModel(dir, { inputSize: 64, seed });
    recordData(dir, { fingerprint: 'f'.repeat(64) });
  }
  assert.equal(checkMembers([m1, m2]).length, 2, 'unadapted members combine');
  const [a1, b2, a2] = [path.join(work, 'ens-a1'), path.join(work, 'ens-b2'), path.join(work, 'ens-a2')];
  await adaptModel({ modelDir: m1, imagesDir: sites.a, outDir: a1, minImages: 20 });
  await adaptModel({ modelDir: m2, imagesDir: sites.b, outDir: b2, minImages: 20 });
  await adaptModel({ modelDir: m2, imagesDir: sites.a, outDir: a2, minImages: 20 });
  const refused = (dirs: string[], pattern: RegExp) =>
    assert.throws(
      () => checkMembers(dirs),
      (e: Error) =>
        e instanceof EnsembleRefused && pattern.test(e.message) && /cxr adapt --model <ensemble>/.test(e.message),
    );
  refused([a1, m2], /ens-a1 is adapted to a site \(\d+ films.*\) and .*ens-m2 is not/);
  refused([a1, b2], /adapted to different sites' films/);
  refused([a1, a2], /the members are adapted to a site/);

  // An ensemble folder: every member's statistics are re-estimated, and each member's weights change.
  const ens = path.join(work, 'ens');
  fs.mkdirSync(ens);
  for (const [k, dir] of [m1, m2].entries()) fs.cpSync(dir, path.join(ens, `m${k + 1}`), { recursive: true });
  fs.writeFileSync(path.join(ens, 'cxr.json'), JSON.stringify({ ...readMeta(m1), members: ['m1', 'm2'] }));
  const out = path.join(work, 'ens-adapted');
  const r = await adaptModel({ modelDir: ens, imagesDir: sites.b, outDir: out, minImages: 20 });
  const layersPerMember = r.adaptation.bnLayers / 2;
  assert.ok(Number.isInteger(layersPerMember) && layersPerMember > 0, `${r.adaptation.bnLayers} layers in 2 members`);
  for (const m of ['m1', 'm2']) {
    const before = fs.readFileSync(path.join(ens, m, 'weights.bin'));
    const after = fs.readFileSync(path.join(out, m, 'weights.bin'));
    assert.ok(!before.equals(after), `${m}'s weights are adapted`);
  }
});

test('cxr ood fit, for a model that equalises its input, changes the films before equalising them', {
  skip,
}, async () => {
  const dir = await makeSeededModel(path.join(work, 'equalize'), { inputSize: 32, widths: [4, 8] });
  const meta = readMeta(dir);
  fs.writeFileSync(
    path.join(dir, 'cxr.json'),
    JSON.stringify({ ...meta, preprocessing: { ...meta.preprocessing, normalize: 'equalize' } }),
  );
  const gate = await fitOodFromData(dir, CHEST_XRAY);
  // The validation films' scores the threshold is read from, made as a prediction makes them: each film changed
  // as it arrives, then equalised (the Predictor's order).
  const { val } = await loadRecordedSplit(CHEST_XRAY, readMeta(dir), { raw: true });
  const n = val.labels.length;
  const loaded = await loadModel(dir);
  const parts = splitModel(loaded.members[0]);
  const pooled: number[][] = [[], []];
  const score = async (px: Uint8Array) => {
    const f = await squareFeatures(parts, normalizeImages(px, n, val.size, 'equalize'), n, val.size);
    for (let i = 0; i < n; i++)
      pooled[val.labels[i]].push(oodScore(gate, f.subarray(i * gate.dim, (i + 1) * gate.dim)));
  };
  await score(val.pixels.slice());
  const { changes, strength } = gate.fitted.threshold as { changes: string[]; strength: number };
  for (const change of changes) await score(await perturbImages(change, val.pixels, val.files, val.size, strength, 1));
  loaded.members[0].dispose();
  for (const c of [0, 1]) {
    const want = scoreSummary(pooled[c]);
    const got = gate.scores[`pooled${c}`] as Record<string, number>;
    for (const k of ['n', 'p50', 'p99', 'max'])
      assert.ok(
        Math.abs(got[k] - want[k]) < 1e-9 * Math.max(1, want[k]),
        `class ${c} ${k}: ${got[k]} against ${want[k]}`,
      );
  }
});
