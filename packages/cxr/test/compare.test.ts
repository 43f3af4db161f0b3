// `cxr compare`: two models on one labelled sample, paired film by film (exact McNemar, paired AUC bootstrap),
// refused where they did not score the same films; and `cxr evaluate` / `cxr compare` warning when the films
// include ones the model trained on (matched by their bytes, copies renamed into another folder too).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { register as registerCompare } from '../src/cli/compare';
import { register as registerEvaluate } from '../src/cli/evaluate';
import { runEvaluation } from '../src/cli/evaluate_run';
import { type CompareSide, pairFilms } from '../src/cli/compare_run';
import { formatComparison } from '../src/cli/compare';
import { evaluate } from '../src/eval';
import { comparePaired, mcnemarExact } from '../src/eval/paired';
import { rocAuc } from '../src/eval/metrics';
import { loadRecordedSplit } from '../src/data/dataset_images';
import { runInProcess } from './in-process-cli';
import { CHEST_XRAY, haveData, makeSeededModel, TINY_SEEDED, tempDir } from './ood-fixtures';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
const skip = !haveData && 'no shared/data';
const tiny = TINY_SEEDED;

/** `cxr ARGS` in this process (evaluate and compare registered): its stdout and stderr. */
const cli = (...args: string[]) => runInProcess([registerEvaluate, registerCompare], args);

test('exact McNemar: binomial tail values, symmetric, 1 without discordant films, finite for thousands', () => {
  assert.equal(mcnemarExact(0, 0), 1);
  assert.equal(mcnemarExact(0, 5), 2 / 32);
  // 2 * (C(10,0) + C(10,1)) / 2^10, the two-sided exact binomial test of 1 in 10.
  assert.ok(Math.abs(mcnemarExact(1, 9) - 22 / 1024) < 1e-12);
  assert.equal(mcnemarExact(9, 1), mcnemarExact(1, 9));
  assert.equal(mcnemarExact(5, 5), 1);
  const big = mcnemarExact(1000, 1200);
  assert.ok(big > 0 && big < 0.001, String(big));
  assert.throws(() => mcnemarExact(-1, 2), /whole and >= 0/);
});

test('comparePaired counts the films each model alone gets right, per class, at each own threshold', () => {
  const labels = [1, 1, 1, 1, 0, 0, 0, 0];
  const a = { probs: [0.9, 0.8, 0.3, 0.2, 0.1, 0.6, 0.4, 0.2], threshold: 0.5 };
  const b = { probs: [0.9, 0.3, 0.35, 0.9, 0.1, 0.2, 0.7, 0.25], threshold: 0.3 };
  const r = comparePaired(labels, a, b);
  // Pneumonia: A right on 0,1; B (threshold 0.3) right on 0,1,2,3 -> B alone 2 and 3.
  assert.deepEqual(r.sensitivity, { n: 4, a: 0.5, b: 1, onlyA: 0, onlyB: 2, p: 0.5 });
  // Normal: A right on 4,6,7; B right on 4,5,7 (0.25 < 0.3): A alone 6, B alone 5.
  assert.deepEqual(r.specificity, { n: 4, a: 0.75, b: 0.75, onlyA: 1, onlyB: 1, p: 1 });
  const auc = (p: number[]) => rocAuc(labels, p) as number;
  assert.ok(Math.abs((r.aucDifference?.difference as number) - (auc(b.probs) - auc(a.probs))) < 1e-12);
});

test('pairFilms pairs by file and refuses films only one model scored, saying why the other could not', () => {
  const a = { split: 'all', files: ['x', 'y', 'z'], labels: [0, 1, 1], probs: [0.1, 0.2, 0.3], unreadable: [] };
  const b = { split: 'all', files: ['z', 'x', 'y'], labels: [1, 0, 1], probs: [0.7, 0.5, 0.6], unreadable: [] };
  assert.deepEqual(pairFilms(a, b), [0.5, 0.6, 0.7]);
  const short = { ...b, files: ['z', 'x'], unreadable: [{ file: 'y', error: 'cannot read (EACCES)' }] };
  assert.throws(
    () => pairFilms(a, short),
    (e: Error) => {
      assert.match(e.message, /did not score the same films \(A 3, B 2\)/);
      assert.match(e.message, /y: scored by A only; B could not read it: cannot read \(EACCES\)/);
      return true;
    },
  );
});

/** A labelled folder of renamed copies: `train` and `val` films of the model's split, and `fresh` unseen ones. */
function copies(dir: string, films: { train: string[]; val: string[]; fresh: string[] }): string {
  for (const c of ['NORMAL', 'PNEUMONIA']) fs.mkdirSync(path.join(dir, c), { recursive: true });
  let i = 0;
  for (const f of [...films.train, ...films.val, ...films.fresh]) {
    const cls = path.basename(path.dirname(f));
    fs.copyFileSync(f, path.join(dir, cls, `site-${i++}${path.extname(f)}`));
  }
  return dir;
}

test("the comparison table says each model's notes (a perfect separation's interval means nothing)", () => {
  const labels = [0, 0, 1, 1];
  const side = (name: string, probs: number[]): CompareSide => {
    const m = evaluate(labels, probs, { threshold: 0.5 });
    return {
      dir: `/models/${name}`,
      model: { name, version: '1', sha256: 'f'.repeat(64) },
      operatingPoint: 'balanced',
      metrics: m,
      notes: ['the OOD gate is off', ...(m.notes ?? [])],
      pipelineNotes: ['the OOD gate is off'],
      trainingOverlap: null,
    };
  };
  const a = side('a', [0.1, 0.2, 0.8, 0.9]);
  const b = side('b', [0.2, 0.1, 0.9, 0.8]);
  assert.ok(
    a.notes.some((n) => /perfectly separated/.test(n)),
    a.notes.join('; '),
  );
  const rate = { n: 2, a: 1, b: 1, onlyA: 0, onlyB: 0, p: 1 };
  const text = formatComparison({
    n: 4,
    aucDifference: { difference: 0, ci95: [0, 0] },
    sensitivity: rate,
    specificity: rate,
    source: '/data',
    split: 'all',
    a,
    b,
    warnings: [],
  });
  for (const tag of ['A', 'B'])
    assert.match(text, new RegExp(`\\n${tag}: note: the AUC's 95% interval is 1\\.000 .*perfectly separated`));
  // The pipeline's notes were said on stderr as they were found: not twice.
  assert.doesNotMatch(text, /OOD gate is off/);
});

test('evaluate and compare warn of (and record) films the model trained on; compare pairs two models', {
  skip,
}, async () => {
  const dir = tempDir('compare');
  dirs.push(dir);
  const a = await makeSeededModel(path.join(dir, 'a'), { ...tiny, seed: 1 });
  const b = await makeSeededModel(path.join(dir, 'b'), { ...tiny, seed: 2 });
  // Training's own split and fingerprint for the tiny recipe, recorded as `cxr train` records them.
  const metaFile = path.join(a, 'cxr.json');
  const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
  const { train, val, info } = await loadRecordedSplit(CHEST_XRAY, meta);
  fs.writeFileSync(metaFile, JSON.stringify({ ...meta, data: { ...meta.data, ...info } }));
  // Unseen films: the Kaggle val/ folder, which training never reads.
  const fresh = ['NORMAL', 'PNEUMONIA'].flatMap((c) =>
    fs
      .readdirSync(path.join(CHEST_XRAY, 'val', c))
      .slice(0, 2)
      .map((f) => path.join(CHEST_XRAY, 'val', c, f)),
  );
  const site = copies(path.join(dir, 'site'), {
    train: [train.files[0], train.files[train.files.length - 1], train.files[5]],
    val: [val.files[0], val.files[val.files.length - 1]],
    fresh,
  });

  const ev = await cli('evaluate', '--model', a, '--data', site, '--json', '--out', path.join(dir, 'out'));
  const m = JSON.parse(ev.stdout);
  assert.equal(m.n, 9);
  assert.equal(m.trainingOverlap.matchedBy, 'fingerprint');
  assert.equal(m.trainingOverlap.training.count, 3);
  assert.equal(m.trainingOverlap.validation.count, 2);
  assert.ok(m.trainingOverlap.training.files.every((f: string) => f.startsWith(site)));
  assert.match(
    ev.stderr,
    /warning: of the 9 films, 3 were in seeded-test's training split \(it learned them\); 2 were in its /,
  );
  assert.match(ev.stderr, /the figures are optimistic/);
  const stored = JSON.parse(fs.readFileSync(path.join(dir, 'out', 'metrics', 'all.json'), 'utf8'));
  assert.equal(stored.trainingOverlap.training.count, 3);
  assert.ok(stored.trainingOverlap.training.files.every((f: string) => /^(NORMAL|PNEUMONIA)\/site-\d/.test(f)));
  // Text: the line under the table, too.
  assert.match((await cli('evaluate', '--model', a, '--data', site)).stdout, /OPTIMISTIC: these films include 3 /);

  // Unseen films only: no warning, nothing recorded.
  const clean = copies(path.join(dir, 'clean'), { train: [], val: [], fresh });
  const plain = await runEvaluation({ modelDir: a, data: clean, warn: () => {} });
  assert.equal(plain.trainingOverlap, null);

  // A fingerprint the films do not give: in the folder the model records, its split is taken unconfirmed (said so);
  // in a folder it does not record, the split made again is not the model's, so no claim is made.
  const other = path.join(dir, 'other');
  fs.cpSync(a, other, { recursive: true });
  const otherMeta = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
  otherMeta.data.fingerprint = '0'.repeat(64);
  fs.writeFileSync(path.join(other, 'cxr.json'), JSON.stringify(otherMeta));
  const unconfirmed = (await runEvaluation({ modelDir: other, data: site, warn: () => {} })).trainingOverlap;
  assert.deepEqual([unconfirmed?.matchedBy, unconfirmed?.unconfirmed], ['split', 'fingerprint-differs']);
  assert.deepEqual([unconfirmed?.training.count, unconfirmed?.validation.count], [3, 2]);
  assert.match(unconfirmed?.warning ?? '', /not confirmed by the fingerprint it records/);
  const elsewhere = { ...otherMeta, data: { ...otherMeta.data, root: path.join(dir, 'nowhere') } };
  fs.writeFileSync(path.join(other, 'cxr.json'), JSON.stringify(elsewhere));
  assert.equal((await runEvaluation({ modelDir: other, data: site, warn: () => {} })).trainingOverlap, null);

  // A model that records its split and root but no fingerprint: the split applied there, said so.
  const unprinted = path.join(dir, 'unprinted');
  fs.cpSync(a, unprinted, { recursive: true });
  const { fingerprint: _, ...noPrint } = otherMeta.data;
  fs.writeFileSync(path.join(unprinted, 'cxr.json'), JSON.stringify({ ...otherMeta, data: noPrint }));
  const bySplit = (await runEvaluation({ modelDir: unprinted, data: site, warn: () => {} })).trainingOverlap;
  assert.equal(bySplit?.matchedBy, 'split');
  assert.deepEqual([bySplit?.training.count, bySplit?.validation.count], [3, 2]);
  assert.match(bySplit?.warning ?? '', /it records no fingerprint to confirm it by/);

  // compare: each side as evaluate scores it, the differences paired on the same films.
  const out = path.join(dir, 'cmp');
  const cmp = await cli('compare', '--models', a, b, '--data', site, '--json', '--out', out);
  const r = JSON.parse(cmp.stdout);
  const [ea, eb] = [
    await runEvaluation({ modelDir: a, data: site, warn: () => {} }),
    await runEvaluation({ modelDir: b, data: site, warn: () => {} }),
  ];
  assert.equal(r.n, 9);
  for (const k of ['auc', 'accuracy', 'sensitivity', 'specificity', 'threshold'] as const) {
    assert.equal(r.a.metrics[k], ea[k], k);
    assert.equal(r.b.metrics[k], eb[k], k);
  }
  assert.ok(Math.abs(r.aucDifference.difference - ((eb.auc as number) - (ea.auc as number))) < 1e-12);
  assert.equal(r.sensitivity.n + r.specificity.n, 9);
  assert.equal(r.sensitivity.a, ea.sensitivity);
  assert.equal(r.specificity.b, eb.specificity);
  assert.ok(r.sensitivity.p > 0 && r.sensitivity.p <= 1);
  assert.equal(r.a.trainingOverlap.training.count, 3);
  assert.equal(r.b.trainingOverlap, null);
  // Each side's notes, as its evaluation has them.
  assert.deepEqual([r.a.notes, r.b.notes], [ea.notes, eb.notes]);
  assert.match(cmp.stderr, /A: warning: of the 9 films, 3 were in seeded-test's training split/);
  const file = JSON.parse(fs.readFileSync(path.join(out, 'comparisons', 'all.json'), 'utf8'));
  assert.equal(file.aucDifference.difference, r.aucDifference.difference);
  assert.ok(file.a.trainingOverlap.training.files.every((f: string) => !path.isAbsolute(f)));
  // The same comparison again replaces it; another pair is refused there without --overwrite.
  await cli('compare', '--models', a, b, '--data', site, '--json', '--out', out);
  await assert.rejects(cli('compare', '--models', b, a, '--data', site, '--out', out), /already holds a comparison/);
  // Refused before any film is scored: a B that could not even be loaded (its weights cut) is never reached.
  const cut = path.join(dir, 'b-cut');
  fs.cpSync(b, cut, { recursive: true });
  for (const f of fs.readdirSync(cut).filter((n) => n.endsWith('.bin'))) fs.truncateSync(path.join(cut, f), 10);
  await assert.rejects(cli('compare', '--models', a, cut, '--data', site, '--out', out), /already holds a comparison/);
  const text = (await cli('compare', '--models', a, b, '--data', site)).stdout;
  assert.match(text, /McNemar exact p = /);
  assert.match(text, /A: OPTIMISTIC: these films include 3 films it trained on and 2 of its validation split/);
  await assert.rejects(cli('compare', '--models', a, '--data', site), /--models takes two model folders/);
});
