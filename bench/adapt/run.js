// Time of one batch-norm adaptation (relative AdaBN of every member, the step `cxr adapt` repeats
// while it searches the class mix) with each wave starting from the tensors the previous wave left
// (the default) beside recomputing every wave from the pixels (keepBytes 0, the way before), on the
// same films and model, in the same run. Both must give the same weights bit for bit; the bench
// stops if they do not. Medians over --runs of each, and of the per-run ratios.
//
//   node bench/adapt/run.js [--runs 5] [--films 200] [--model DIR]
'use strict';
require('../args').checkArgs('usage: node bench/adapt/run.js [--runs 5] [--films 200] [--model DIR]', {
  values: ['--runs', '--films', '--model'],
  flags: [],
});
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ROOT, opt, median } = require('../serve/common');

const DIST = path.join(ROOT, 'packages', 'cxr', 'dist', 'src');
const SHARED = process.env.CXR_DATA ?? path.resolve(ROOT, '..', 'shared', 'data');
const RUNS = Number(opt('runs', 5));
const FILMS = Number(opt('films', 200));
const MODEL = path.resolve(opt('model', path.join(ROOT, 'models', 'default')));

/** A site folder of links to the first films of each class of the training folder (half each). */
function siteFolder() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-bench-adapt-'));
  for (const cls of ['NORMAL', 'PNEUMONIA']) {
    const src = path.join(SHARED, 'chest_xray', 'train', cls);
    const names = fs
      .readdirSync(src)
      .sort()
      .slice(0, Math.ceil(FILMS / 2));
    for (const f of names) fs.symlinkSync(path.join(src, f), path.join(dir, `${cls}-${f}`));
  }
  return dir;
}

async function main() {
  const tf = require('@tensorflow/tfjs-core');
  await require(path.join(DIST, 'engine')).initEngine();
  const { Predictor } = require(path.join(DIST, 'predict', 'predictor'));
  const { readSiteFilms } = require(path.join(DIST, 'adapt', 'films'));
  const { loadModel, memberDirs, readMeta } = require(path.join(DIST, 'models', 'io'));
  const { loadBnReference } = require(path.join(DIST, 'models', 'bn_reference'));
  const { adaBn } = require(path.join(DIST, 'adapt', 'bn_stats'));

  const dir = siteFolder();
  const predictor = await Predictor.load(MODEL, { warmUp: false });
  const films = await readSiteFilms(predictor, dir);
  predictor.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
  const reference = loadBnReference(MODEL, memberDirs(MODEL, readMeta(MODEL)));
  if (!reference.members) throw new Error(`no reference statistics: ${reference.problem}`);

  // One adaptation of every member from the saved weights; returns seconds and the weights.
  const adaptOnce = async (keepBytes) => {
    const { members } = await loadModel(MODEL);
    const t0 = performance.now();
    for (const [k, m] of members.entries()) {
      await adaBn(m, films.pixels, films.files.length, films.size, { reference: reference.members[k], keepBytes });
    }
    const s = (performance.now() - t0) / 1000;
    const weights = members.flatMap((m) =>
      m.getWeights().map((w) => {
        const a = w.dataSync();
        return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
      }),
    );
    for (const m of members) m.dispose();
    return { s, weights };
  };
  console.log(`${films.files.length} films at ${films.size} px, ${MODEL}, engine ${tf.getBackend()}`);
  const rows = [];
  for (let r = 0; r < RUNS; r++) {
    // The two take turns going first.
    const order = r % 2 ? ['kept', 'recomputed'] : ['recomputed', 'kept'];
    const t = {};
    for (const how of order) t[how] = await adaptOnce(how === 'kept' ? undefined : 0);
    if (!t.kept.weights.every((w, i) => w.equals(t.recomputed.weights[i]))) {
      throw new Error('the adapted weights differ between the two ways: a bug, not a timing');
    }
    rows.push({ recomputed: t.recomputed.s, kept: t.kept.s, ratio: t.recomputed.s / t.kept.s });
    console.log(
      `run ${r + 1} (${order.join(', ')}): recomputed ${t.recomputed.s.toFixed(2)} s, ` +
        `kept ${t.kept.s.toFixed(2)} s, ratio ${(t.recomputed.s / t.kept.s).toFixed(2)}`,
    );
  }
  const m = (k) => median(rows.map((x) => x[k]));
  console.log(
    `median: recomputed ${m('recomputed').toFixed(2)} s, kept ${m('kept').toFixed(2)} s, ` +
      `ratio ${m('ratio').toFixed(2)} (same weights bit for bit in every run)`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
