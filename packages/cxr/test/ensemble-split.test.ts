// `cxr ensemble` refusing members validated on different splits says in words what differs and which
// `cxr train` options make the splits one (not the split records as JSON, nor options train lacks).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readMeta } from '../src/models/io';
import type { ModelMeta } from '../src/models/metadata';
import { checkMembers, EnsembleRefused } from '../src/train/ensemble';
import { makeSeededModel, tempDir } from './ood-fixtures';

const A = 'a3e9'.padEnd(64, '0');
const B = '5b1c'.padEnd(64, '1');
let work = '';
let first = '';
let second = '';
let base: ModelMeta;

before(async () => {
  work = tempDir('ensemble-split');
  const tiny = { inputSize: 32, widths: [4, 8, 8, 8] };
  first = await makeSeededModel(path.join(work, 'a'), { ...tiny, seed: 1 });
  second = await makeSeededModel(path.join(work, 'c'), { ...tiny, seed: 2 });
  base = readMeta(first);
  base = {
    ...base,
    recipe: { limitPerClass: 0 },
    data: { root: 'data/chest_xray', fingerprint: A, valFraction: 0.15, splitSeed: 42, valSplit: 'random' },
  };
  fs.writeFileSync(path.join(first, 'cxr.json'), JSON.stringify(base));
});
after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** The refusal of `first` beside `second` recorded with `data` (and `recipe`) changed from `first`'s. */
function refusal(data: Record<string, unknown>, recipe: Record<string, unknown> = {}): string {
  const meta = { ...base, data: { ...base.data, ...data }, recipe: { ...base.recipe, ...recipe } };
  fs.writeFileSync(path.join(second, 'cxr.json'), JSON.stringify(meta));
  try {
    checkMembers([first, second]);
  } catch (e) {
    assert.ok(e instanceof EnsembleRefused, String(e));
    const message = (e as Error).message;
    assert.match(message, /validated on different splits/);
    assert.doesNotMatch(message, /[{}"]|--val-fraction|--seed\b/, 'no JSON, no option cxr train lacks');
    return message;
  }
  assert.fail('the members were accepted');
}

test('members split with other seeds: the seeds, and --split-seed', () => {
  const m = refusal({ fingerprint: B, splitSeed: 7 });
  assert.match(m, /split with seeds 42 and 7/);
  assert.match(m, /--split-seed 42/);
  assert.doesNotMatch(m, /fingerprint/, 'another seed explains the other fingerprint');
});

test('other validation fractions and film limits: named, with the recipe and --limit-per-class', () => {
  const m = refusal({ fingerprint: B, valFraction: 0.2 }, { limitPerClass: 40 });
  assert.match(m, /validation fractions 0\.15 and 0\.2/);
  assert.match(m, /the same --recipe/);
  assert.match(m, /all and at most 40 training films per class/);
  assert.match(m, /--limit-per-class 0/);
});

test('the same split choices on other films: different data, short fingerprints', () => {
  const m = refusal({ fingerprint: B, root: 'elsewhere/chest_xray' });
  assert.match(
    m,
    /different data \(data\/chest_xray and elsewhere\/chest_xray\): split fingerprints a3e90000… and 5b1c1111…/,
  );
  assert.match(m, /the same --data folder/);
});

test('members on one split are accepted', () => {
  fs.writeFileSync(path.join(second, 'cxr.json'), JSON.stringify(base));
  assert.equal(checkMembers([first, second]).length, 2);
});
