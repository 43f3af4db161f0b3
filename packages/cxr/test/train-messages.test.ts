// What `cxr train` says: a member of `--seeds` that fits no gate says why (not "--no-gate", which was not
// given), and a data folder without train/ is refused with the layout training needs and what the folder holds.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initEngine } from '../src/engine';
import { runTraining } from '../src/train/run';
import { trainSeedEnsemble } from '../src/train/seed_ensemble';
import { needsData } from './shared-data';
import { linkFilms, TINY_RECIPE } from './tiny-films';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const skip = needsData();
let tmp = '';
let data = '';

before(async () => {
  if (skip) return;
  await initEngine(1);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-train-messages-'));
  data = linkFilms(path.join(tmp, 'data'), 8, 'kaggle');
});
after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const gateLines = (lines: string[]) => lines.filter((l) => l.startsWith('no OOD gate fitted'));

test('members of a soup say why they fit no gate, not --no-gate', { skip }, async () => {
  const lines: string[] = [];
  const out = path.join(tmp, 'soup');
  const base = { data, out, overrides: TINY_RECIPE, report: false, progress: false, log: (l: string) => lines.push(l) };
  // Two one-epoch networks from different seeds may well be refused as a soup (they share no basin): the
  // members' lines come first either way.
  await trainSeedEnsemble({ ...base, seeds: [1, 2], soup: true }).catch((e: Error) => {
    if (!/soup/i.test(e.message)) throw e;
  });
  assert.deepEqual(gateLines(lines), [
    'no OOD gate fitted (a member of a soup: the soup fits its own gate on the averaged weights)',
    'no OOD gate fitted (a member of a soup: the soup fits its own gate on the averaged weights)',
  ]);
});

test('a later member of a logit ensemble says the ensemble uses the first member gate', { skip }, async () => {
  const lines: string[] = [];
  const out = path.join(tmp, 'ens');
  await trainSeedEnsemble({
    data,
    out,
    overrides: TINY_RECIPE,
    report: false,
    progress: false,
    log: (l) => lines.push(l),
    seeds: [1, 2],
  });
  assert.deepEqual(gateLines(lines), [
    "no OOD gate fitted (not the first member: the ensemble's gate is fitted on the first member's features)",
  ]);
  assert.ok(fs.existsSync(path.join(`${out}-members`, `${path.basename(out)}-s1`, 'ood.json')), 'the first fits it');
});

test('a folder of NORMAL/ and PNEUMONIA/ is refused for training with the layout it needs', { skip }, async () => {
  const flat = linkFilms(path.join(tmp, 'flat'), 2, 'flat');
  const refused = (root: string) =>
    runTraining({ data: root, out: path.join(tmp, 'never'), overrides: TINY_RECIPE, report: false, log: () => {} });
  await assert.rejects(
    refused(flat),
    new RegExp(
      `^Error: ${flat} has NORMAL/ and PNEUMONIA/ directly: cxr train needs ROOT/train/NORMAL and ` +
        String.raw`ROOT/train/PNEUMONIA \(validation is carved out of train\); point --data at the folder above train/`,
    ),
  );
  // Kaggle's layout without train/: what it has is named.
  const valOnly = path.join(tmp, 'val-only');
  fs.mkdirSync(valOnly);
  fs.symlinkSync(flat, path.join(valOnly, 'val'));
  await assert.rejects(
    refused(valOnly),
    /val-only has films in val\/ but none in train\/: cxr train needs ROOT\/train\/NORMAL and ROOT\/train\/PNEUMONIA/,
  );
  assert.equal(fs.existsSync(path.join(tmp, 'never')), false);
  // The command line says the same, and makes no --out.
  const r = spawnSync(process.execPath, [MAIN, 'train', '--data', flat, '--out', path.join(tmp, 'never')], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /has NORMAL\/ and PNEUMONIA\/ directly: cxr train needs ROOT\/train\/NORMAL/);
  assert.doesNotMatch(r.stderr, /found: all/);
  assert.equal(fs.existsSync(path.join(tmp, 'never')), false);
});
