// `cxr adapt` on a synthetic site shift: real films, and the same films with lower contrast,
// more brightness and a gamma curve. The source model is a seeded cxrnet whose batch-norm
// statistics and OOD gate come from the unshifted films (as training would have set them).
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { adaptModel, AdaptRefused } from '../src/adapt/adapt';
import { bnLayers } from '../src/models/bn_moments';
import { readSiteFilms } from '../src/adapt/films';
import { estimatePrior, shiftThreshold } from '../src/adapt/prior';
import { decodeFile } from '../src/data/decode';
import { runEvaluation } from '../src/cli/evaluate_run';
import { saveOod } from '../src/explain/ood';
import { fitOodFromSets } from '../src/explain/ood_fit';
import { loadModel, readMeta } from '../src/models/io';
import { Predictor } from '../src/predict/predictor';
import { type ImageSet, subset } from '../src/data/images';
import { makeSites, type Sites, siteLogits } from './adapt-fixtures';
import { haveData, makeSeededModel, tempDir } from './ood-fixtures';
import { generatedNonXrays } from './ood-images';

const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const skip = !haveData && 'no shared/data';
let work: string;
let sites: Sites;
let source: string;

async function filmSet(modelDir: string, dir: string): Promise<ImageSet> {
  const p = await Predictor.load(modelDir, { warmUp: false });
  try {
    const f = await readSiteFilms(p, dir);
    return {
      size: f.size,
      pixels: f.pixels,
      labels: new Uint8Array(f.files.length),
      files: f.files,
      patients: f.files,
    };
  } finally {
    p.dispose();
  }
}

before(async () => {
  if (!haveData) return;
  work = tempDir('adapt');
  sites = await makeSites(path.join(work, 'sites'), 30);
  // "Training" on site A: its batch-norm statistics, then an OOD gate on its features.
  const seeded = await makeSeededModel(path.join(work, 'seeded'), { inputSize: 64 });
  source = path.join(work, 'source');
  await adaptModel({ modelDir: seeded, imagesDir: sites.a, outDir: source, minImages: 20 });
  const set = await filmSet(source, sites.a);
  const idx = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
  const loaded = await loadModel(source);
  saveOod(
    source,
    await fitOodFromSets(loaded.members[0], subset(set, idx(0, 40)), subset(set, idx(40, 60)), { memberDir: source }),
  );
  loaded.members[0].dispose();
  // The class counts --prior reads the calibration's prior from.
  const meta = readMeta(source);
  fs.writeFileSync(
    path.join(source, 'cxr.json'),
    JSON.stringify({ ...meta, data: { ...meta.data, validation: { n: 60, normal: 30, pneumonia: 30 } } }),
  );
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const logitsOf = (modelDir: string, dir: string, cls = '') => siteLogits(modelDir, dir, sites, cls);

test('every batch-norm layer ends up with the pooled statistics of its input over all site films', {
  skip,
}, async () => {
  const out = path.join(work, 'exact');
  // An odd batch size: statistics combined over uneven batches must equal one pass over all films.
  const r = await adaptModel({ modelDir: source, imagesDir: sites.b, outDir: out, minImages: 20, batchSize: 7 });
  const set = await filmSet(source, sites.b);
  assert.equal(r.adaptation.films.used, set.files.length);
  const [before, after] = [await loadModel(source), await loadModel(out)];
  try {
    const model = after.members[0];
    const layers = bnLayers(model);
    assert.equal(layers.length, 13);
    assert.equal(r.adaptation.bnLayers, 13);
    let moved = 0;
    for (const layer of layers) {
      // Independently: one forward pass over all films to this layer's input, then its moments.
      const probe = tfl.model({ inputs: model.inputs, outputs: layer.getInputAt(0) as tfl.SymbolicTensor });
      const [mean, variance] = tf.tidy(() => {
        const x = tf.div(tf.tensor4d(set.pixels, [set.files.length, set.size, set.size, 1], 'int32'), 255);
        const m = tf.moments(probe.predict(x) as tf.Tensor, [0, 1, 2]);
        return [m.mean.arraySync() as number[], m.variance.arraySync() as number[]];
      });
      const w = layer.getWeights();
      const movingMean = w[w.length - 2].arraySync() as number[];
      const movingVar = w[w.length - 1].arraySync() as number[];
      mean.forEach((v, c) =>
        assert.ok(
          Math.abs(movingMean[c] - v) <= 1e-4 * (1 + Math.abs(v)),
          `${layer.name}[${c}] mean ${movingMean[c]} vs ${v}`,
        ),
      );
      variance.forEach((v, c) =>
        assert.ok(Math.abs(movingVar[c] - v) <= 1e-4 * (1 + v), `${layer.name}[${c}] variance ${movingVar[c]} vs ${v}`),
      );
      const old = before.members[0].getLayer(layer.name).getWeights();
      if (Math.abs((old[old.length - 2].arraySync() as number[])[0] - movingMean[0]) > 1e-3) moved++;
    }
    assert.ok(moved >= 10, `only ${moved} of 13 layers changed their statistics`);
  } finally {
    before.members[0].dispose();
    after.members[0].dispose();
  }
});

test('after adaptation, NORMAL scores on the shifted films move back toward the unshifted ones', { skip }, async () => {
  const out = path.join(work, 'shift');
  await adaptModel({ modelDir: source, imagesDir: sites.b, outDir: out, minImages: 20 });
  const reference = await logitsOf(source, sites.a, 'NORMAL');
  const shifted = await logitsOf(source, sites.b, 'NORMAL');
  const adapted = await logitsOf(out, sites.b, 'NORMAL');
  const mad = (x: number[]) => x.reduce((s, v, i) => s + Math.abs(v - reference[i]), 0) / x.length;
  assert.ok(mad(shifted) > 0.05, `the shift barely changes the source model's scores (${mad(shifted)})`);
  assert.ok(
    mad(adapted) < 0.5 * mad(shifted),
    `mean |Δlogit| ${mad(adapted).toFixed(3)} adapted vs ${mad(shifted).toFixed(3)} unadapted`,
  );
});

test('refuses too few films, a folder of non-X-rays, and writing over the source', { skip }, async () => {
  const few = path.join(work, 'few');
  fs.mkdirSync(few);
  for (const f of sites.films.slice(0, 5)) fs.copyFileSync(path.join(sites.b, f), path.join(few, path.basename(f)));
  fs.writeFileSync(path.join(few, 'notes.txt'), 'not an image');
  await assert.rejects(
    adaptModel({ modelDir: source, imagesDir: few, outDir: path.join(work, 'out-few') }),
    (e: unknown) =>
      e instanceof AdaptRefused && /only 5 usable chest films .*1 unreadable.* at least 50/.test(e.message),
  );

  // Sixty copies of one film are one film: the minimum counts distinct films.
  const copies = path.join(work, 'copies');
  fs.mkdirSync(copies);
  for (let i = 0; i < 60; i++)
    fs.copyFileSync(path.join(sites.b, sites.films[0]), path.join(copies, `copy-${i}${path.extname(sites.films[0])}`));
  await assert.rejects(
    adaptModel({ modelDir: source, imagesDir: copies, outDir: path.join(work, 'out-copies') }),
    (e: unknown) =>
      e instanceof AdaptRefused &&
      /only 1 usable chest films .*59 copies of films counted once.* at least 50/.test(e.message),
  );
  assert.ok(!fs.existsSync(path.join(work, 'out-copies')));

  // Photos, noise, text pages and blanks, plus three real films: mostly not chest X-rays.
  const junk = path.join(work, 'junk');
  fs.mkdirSync(path.join(junk, 'nested'), { recursive: true });
  for (const [name, bytes] of Object.entries(await generatedNonXrays()))
    fs.writeFileSync(path.join(junk, 'nested', name), bytes);
  for (const f of sites.films.slice(0, 3)) fs.copyFileSync(path.join(sites.a, f), path.join(junk, path.basename(f)));
  await assert.rejects(
    adaptModel({ modelDir: source, imagesDir: junk, outDir: path.join(work, 'out-junk'), minImages: 2 }),
    (e: unknown) =>
      e instanceof AdaptRefused && /(\d+) of 11 images do not look like frontal chest X-rays/.test(e.message),
  );
  assert.ok(!fs.existsSync(path.join(work, 'out-junk')) && !fs.existsSync(path.join(work, 'out-few')));

  const before = fs.readFileSync(path.join(source, 'weights.bin'));
  await assert.rejects(
    adaptModel({ modelDir: source, imagesDir: sites.b, outDir: source, minImages: 20 }),
    /source model folder/,
  );
  assert.deepEqual(fs.readFileSync(path.join(source, 'weights.bin')), before);
});

test('a mixed folder: non-X-rays are left out, the films are used', { skip }, async () => {
  const mixed = path.join(work, 'mixed');
  fs.cpSync(sites.b, mixed, { recursive: true });
  const junk = await generatedNonXrays();
  for (const [name, bytes] of Object.entries(junk)) fs.writeFileSync(path.join(mixed, `junk-${name}`), bytes);
  const r = await adaptModel({
    modelDir: source,
    imagesDir: mixed,
    outDir: path.join(work, 'out-mixed'),
    minImages: 20,
  });
  const rejectedJunk = r.rejected.filter((x) => path.basename(x.file).startsWith('junk-')).length;
  assert.ok(
    rejectedJunk >= Object.keys(junk).length - 1,
    `non-X-rays left out: ${rejectedJunk}/${Object.keys(junk).length}`,
  );
  assert.ok(r.adaptation.films.used >= 50, `films used: ${r.adaptation.films.used}`);
});

test('cxr adapt --prior writes a folder that predicts, evaluates and records the adaptation', { skip }, async () => {
  const out = path.join(work, 'cli');
  const run = spawnSync(
    process.execPath,
    [CLI, 'adapt', '--model', source, '--images', sites.b, '--out', out, '--prior', '--min-images', '20', '--json'],
    { encoding: 'utf8' },
  );
  assert.equal(run.status, 0, run.stderr);
  const printed = JSON.parse(run.stdout);
  const meta = readMeta(out);
  const src = readMeta(source);
  const a = meta.adaptation!;
  assert.deepEqual(printed.adaptation, a);
  assert.deepEqual(a.method, ['adabn', 'prior']);
  // A strong site shift (brightness, contrast and gamma at once): the film-layout check may set aside a
  // few of the 60 as unlike every training film. Adaptation uses exactly the films a prediction's
  // screening accepts, and its fingerprint covers those.
  const screener = await Predictor.load(source);
  const accepted: string[] = [];
  try {
    for (const f of sites.films) {
      const s = await screener.screen(fs.readFileSync(path.join(sites.b, f)));
      if (s.problems.length === 0) accepted.push(f);
    }
  } finally {
    screener.dispose();
  }
  assert.ok(accepted.length >= 57, `${accepted.length} of 60 films pass the screening`);
  assert.equal(a.films.used, accepted.length);
  assert.equal(a.films.rejected, 60 - accepted.length);
  const digests = accepted
    .map((f) =>
      crypto
        .createHash('sha256')
        .update(fs.readFileSync(path.join(sites.b, f)))
        .digest('hex'),
    )
    .sort();
  assert.equal(a.fingerprint, crypto.createHash('sha256').update(digests.join('\n')).digest('hex'));
  assert.equal(a.source.name, src.name);
  assert.equal(a.source.version, src.version);
  // The thresholds moved by the recorded log-odds shift; the temperature stayed.
  assert.ok(a.prior && a.prior.site > 0 && a.prior.site < 1);
  // Plain AdaBN mixes no reference at a share, so the share is estimated from the adapted model's scores: by the
  // confusion matrix where the balanced point records its validation figures, by EM otherwise.
  const op = src.operatingPoints.balanced;
  const separates =
    typeof op.sensitivity === 'number' && typeof op.specificity === 'number' && op.sensitivity + op.specificity > 1.5;
  assert.equal(a.prior.from, separates ? 'confusion-matrix' : 'em');
  assert.equal(a.prior.iterations === undefined, a.prior.from !== 'em');
  for (const [k, op] of Object.entries(meta.operatingPoints)) {
    assert.ok(Math.abs(op.threshold - shiftThreshold(src.operatingPoints[k].threshold, a.prior.logitShift)) < 1e-12);
  }
  assert.equal(meta.temperature, src.temperature);
  const card = fs.readFileSync(path.join(out, 'MODEL_CARD.md'), 'utf8');
  assert.match(card, /## Adapted to a site/);
  // The card says which way the thresholds went, as they did (the recorded shift moves the scores).
  const balancedUp = meta.operatingPoints.balanced.threshold > src.operatingPoints.balanced.threshold;
  assert.match(card, new RegExp(`thresholds moved ${balancedUp ? 'up' : 'down'} by \\d`));
  assert.match(card, new RegExp(`re-estimated on ${a.films.used} of the site's films`));

  const [p, q] = [await Predictor.load(source), await Predictor.load(out)];
  try {
    assert.notEqual(q.model.sha256, p.model.sha256);
    assert.ok(q.oodGate, `adapted model has no OOD gate: ${q.notes.join('; ')}`);
    const film = fs.readFileSync(path.join(sites.b, sites.films[0]));
    const [rp, rq] = [await p.predict(film), await q.predict(film)];
    assert.notEqual(rq.logit, rp.logit);
    assert.deepEqual(rq.warnings, []);
  } finally {
    p.dispose();
    q.dispose();
  }
  const m = await runEvaluation({ modelDir: out, data: sites.b });
  assert.equal(m.n, 60);
  assert.equal(m.model.sha256, (await loadModel(out)).sha256);
});

test('EM recovers a known class prior; threshold shifts follow the log-odds', () => {
  // Scores N(+1.5, 1) for positives and N(−1.5, 1) for negatives; posteriors under a 50% prior.
  let s = 7;
  const u = () => ((s = (s * 1664525 + 1013904223) >>> 0) + 0.5) / 4294967296;
  const gauss = () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  for (const truth of [0.2, 0.5, 0.8]) {
    const probs = Array.from({ length: 20000 }, () => {
      const x = (u() < truth ? 1.5 : -1.5) + gauss();
      return 1 / (1 + Math.exp(-3 * x)); // log-odds of N(1.5,1) vs N(-1.5,1) at x: 3x
    });
    const est = estimatePrior(probs, 0.5);
    assert.ok(est.converged);
    assert.ok(Math.abs(est.prior - truth) < 0.02, `prior ${truth}: estimated ${est.prior}`);
  }
  assert.ok(Math.abs(shiftThreshold(0.5, Math.log(3)) - 0.25) < 1e-12);
  assert.ok(Math.abs(shiftThreshold(0.3, 0) - 0.3) < 1e-12);
});

test("Predictor.screen gives the pixels a prediction uses and the gate's findings", { skip }, async () => {
  const p = await Predictor.load(source, { warmUp: false });
  try {
    const film = path.join(sites.a, sites.films[0]);
    const s = await p.screen(fs.readFileSync(film));
    assert.deepEqual(s.pixels, (await decodeFile(film, 64)).pixels);
    assert.deepEqual(s.problems, []);
    assert.ok(s.ood && !s.ood.outOfDistribution);
    const noise = await p.screen((await generatedNonXrays())['colour-noise.png']);
    assert.ok(noise.problems.length > 0);
    // A film stretched to a strip is screened out as a prediction would call it (ASPECT), not adapted on.
    const strip = await sharp(fs.readFileSync(film)).resize(64, 1000, { fit: 'fill' }).png().toBuffer();
    assert.ok((await p.screen(strip)).problems.some((m) => /no chest film has that shape/.test(m)));
  } finally {
    p.dispose();
  }
});
