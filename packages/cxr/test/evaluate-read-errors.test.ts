// `cxr evaluate --split validation` when the file system stops giving a film (deleted, its permission taken
// away, its network share down) after the folder was listed: the film is counted unreadable, with what the
// read error means, and the evaluation goes on with the others. A film the image cache read but that is gone
// when the prediction pipeline comes to it is unreadable too, not a film the pipeline "refuses" (an input
// error it would answer). The errors are injected into node:fs/promises, the module data/decode.ts reads with.
import { after, before, mock, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import fsp from 'node:fs/promises';
import * as path from 'node:path';
import { runEvaluation } from '../src/cli/evaluate_run';
import { filesFingerprint, splitRecords } from '../src/data/dataset_images';
import { splitByPatient } from '../src/data/split';
import { makeTinyModel, tempDir } from './serve-fixtures';
import { CHEST_XRAY, needsData } from './shared-data';

const skip = needsData(CHEST_XRAY);
let root = '';
let model = '';
/** A film of the model's validation split. */
let victim = '';
const savedCache = process.env.CXR_CACHE;

before(async () => {
  if (skip) return;
  root = tempDir('evaluate-read-errors');
  process.env.CXR_CACHE = path.join(root, 'cache');
  for (const cls of ['NORMAL', 'PNEUMONIA']) {
    const from = path.join(CHEST_XRAY, 'val', cls);
    fs.mkdirSync(path.join(root, 'train', cls), { recursive: true });
    for (const f of fs.readdirSync(from).sort().slice(0, 6))
      fs.symlinkSync(path.join(from, f), path.join(root, 'train', cls, f));
  }
  model = await makeTinyModel(path.join(root, 'model'));
  const meta = JSON.parse(fs.readFileSync(path.join(model, 'cxr.json'), 'utf8'));
  fs.writeFileSync(path.join(model, 'cxr.json'), JSON.stringify({ ...meta, data: { valFraction: 0.5, splitSeed: 1 } }));
  const { val } = splitByPatient(await splitRecords(root, 'train'), { valFraction: 0.5, seed: 1 });
  victim = val[0].path;
});

after(() => {
  if (savedCache === undefined) delete process.env.CXR_CACHE;
  else process.env.CXR_CACHE = savedCache;
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/** The evaluation, the victim's reads after the first `readsOk` failing with `code`. */
async function evaluateFailing(code: string, readsOk: number) {
  let reads = 0;
  const real = fsp.readFile;
  const readFile = mock.method(fsp, 'readFile', async (file: unknown, ...rest: unknown[]) => {
    if (file === victim && ++reads > readsOk) throw Object.assign(new Error(`${code}: injected`), { code });
    return (real as (...a: unknown[]) => Promise<Buffer>)(file, ...rest);
  });
  const warnings: string[] = [];
  try {
    const m = await runEvaluation({ modelDir: model, data: root, split: 'validation', warn: (l) => warnings.push(l) });
    return { m, warnings, reads };
  } finally {
    readFile.mock.restore();
  }
}

test('a film the file system will not give is counted unreadable, saying what the error means', { skip }, async () => {
  const clean = await runEvaluation({ modelDir: model, data: root, split: 'validation', warn: () => {} });
  assert.equal(clean.unreadable.count, 0);
  const cases: [string, RegExp][] = [
    ['ENOENT', /^cannot read \(ENOENT\): the file is gone \(deleted or moved after the folder was listed\)$/],
    ['EACCES', /^cannot read \(EACCES\): permission denied \(this user may not read it\)$/],
    ['EIO', /^cannot read \(EIO\): an input\/output error \(a failing disk, or a network share/],
  ];
  for (const [code, words] of cases) {
    const { m, warnings } = await evaluateFailing(code, 0);
    assert.equal(m.n, clean.n - 1, code);
    assert.deepEqual(
      m.unreadable.files.map((f) => f.file),
      [victim],
      code,
    );
    assert.match(m.unreadable.files[0].error, words, code);
    assert.ok(
      warnings.some((w) => w.startsWith(`warning: skipping ${victim}: cannot read (${code}): `)),
      warnings.join('\n'),
    );
  }
});

test('a film read by the cache and gone when the pipeline reads it: unreadable, not refused', { skip }, async () => {
  // The pack is made by the first evaluation; with it, the cache reads each film once (to hash it), and the
  // pipeline's read is the next one.
  const clean = await runEvaluation({ modelDir: model, data: root, split: 'validation', warn: () => {} });
  const { m, reads } = await evaluateFailing('ENOENT', 1);
  assert.equal(reads, 2, 'the cache read the film, the pipeline did not');
  assert.equal(m.verdicts.refused, 0, JSON.stringify(m.verdicts));
  assert.equal(m.n, clean.n - 1);
  assert.deepEqual(
    m.unreadable.files.map((f) => [f.file, f.error]),
    [[victim, 'cannot read (ENOENT): the file is gone (deleted or moved after the folder was listed)']],
  );
});

test('a model that recorded its data: a film unreadable now is counted, not the folder refused', { skip }, async () => {
  const file = path.join(model, 'cxr.json');
  const meta = JSON.parse(fs.readFileSync(file, 'utf8'));
  const { train, val } = splitByPatient(await splitRecords(root, 'train'), { valFraction: 0.5, seed: 1 });
  const record = (fingerprint: string) =>
    fs.writeFileSync(file, JSON.stringify({ ...meta, data: { ...meta.data, fingerprint } }));
  try {
    record(await filesFingerprint(train, val));
    const { m, warnings } = await evaluateFailing('EACCES', 0);
    assert.deepEqual(
      m.unreadable.files.map((f) => f.file),
      [victim],
    );
    assert.ok(
      warnings.some((w) => /: 1 film\(s\) cannot be read now \(e\.g\. .*\), so whether this is the data/.test(w)),
      warnings.join('\n'),
    );
    // Every film readable and other bytes than the model's: still refused as another folder.
    record('0'.repeat(64));
    await assert.rejects(
      runEvaluation({ modelDir: model, data: root, split: 'validation', warn: () => {} }),
      /is not the data tiny-test was trained on/,
    );
  } finally {
    fs.writeFileSync(file, JSON.stringify(meta));
  }
});
