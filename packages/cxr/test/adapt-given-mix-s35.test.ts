// `cxr adapt --class-mix 0.2` where the batch-norm step has no class-split reference to weigh (plain AdaBN):
// the share given was dropped without a word, and --prior estimated a share of its own instead of the one
// the user knew (docs/site-adaptation.md, step 3: "or the one you gave with --class-mix").
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { adaptModel } from '../src/adapt/adapt';
import { makeSites, type Sites } from './adapt-fixtures';
import { haveData, makeSeededModel, tempDir } from './ood-fixtures';

const skip = !haveData && 'no shared/data';
let work: string;
let sites: Sites;
let source: string;

before(async () => {
  if (!haveData) return;
  work = tempDir('adapt-given-mix');
  sites = await makeSites(path.join(work, 'sites'), 15);
  source = await makeSeededModel(path.join(work, 'source'), { inputSize: 64 });
  // The class counts --prior needs for the calibration prior (a trained model's cxr.json has them).
  const file = path.join(source, 'cxr.json');
  const meta = JSON.parse(fs.readFileSync(file, 'utf8'));
  meta.data.validation = { n: 100, normal: 25, pneumonia: 75 };
  fs.writeFileSync(file, JSON.stringify(meta));
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('plain AdaBN with --class-mix 0.2: the share is said to be unused by the batch-norm step and is the prior', {
  skip,
}, async () => {
  const lines: string[] = [];
  const r = await adaptModel({
    modelDir: source,
    imagesDir: sites.a,
    outDir: path.join(work, 'given'),
    minImages: 20,
    plain: true,
    classMix: 0.2,
    prior: true,
    log: (l) => lines.push(l),
  });
  assert.deepEqual(r.adaptation.method, ['adabn', 'prior']);
  assert.equal(r.adaptation.classMix, undefined);
  assert.equal(r.adaptation.prior?.from, 'class-mix');
  assert.equal(r.adaptation.prior?.site, 0.2);
  assert.ok(
    lines.some((l) =>
      /^note: --class-mix 0\.2 does not change the batch-norm adaptation \(plain AdaBN.*--prior$/.test(l),
    ),
    lines.join('\n'),
  );
});

test('plain AdaBN with --class-mix first and no --prior: a note, nothing else changes', { skip }, async () => {
  const lines: string[] = [];
  const r = await adaptModel({
    modelDir: source,
    imagesDir: sites.a,
    outDir: path.join(work, 'first'),
    minImages: 20,
    plain: true,
    classMix: 'first',
    log: (l) => lines.push(l),
  });
  assert.deepEqual(r.adaptation.method, ['adabn']);
  assert.ok(
    lines.some((l) =>
      /^note: --class-mix first does not change the batch-norm adaptation \(plain AdaBN[^;]*;[^;]*\)$/.test(l),
    ),
    lines.join('\n'),
  );
});
