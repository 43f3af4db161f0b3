// `cxr card`: a model folder's MODEL_CARD.md written again from its cxr.json, byte for byte as training wrote it,
// and `--check`, which fails on a card that differs. Committed cards went stale when the card writer's words were
// corrected (five shift cards named Youden's J's maximum for points chosen by its plateau's middle; the lpft cards
// said "1 epochs"): the last test holds every committed model folder's card to what its records give.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cardStatus } from '../src/models/card_status';
import { initEngine } from '../src/engine';
import { runTraining } from '../src/train/run';
import { CHEST_XRAY, haveData, tempDir } from './ood-fixtures';
import { REPO } from './shared-data';
import { TINY_RECIPE } from './tiny-films';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const COMMAND = 'cxr train --data chest_xray --recipe cxr --out tiny';
let work: string;
let model: string;

before(async () => {
  if (!haveData) return;
  await initEngine();
  work = tempDir('card-s39');
  model = path.join(work, 'tiny');
  await runTraining({
    data: CHEST_XRAY,
    out: model,
    recipeName: 'cxr',
    report: false,
    progress: false,
    log: () => {},
    command: COMMAND,
    overrides: { ...TINY_RECIPE, limitPerClass: 12 },
  });
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const cxr = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

test('cxr card restores an edited card byte for byte as training wrote it; --check fails on it first', {
  skip: !haveData && 'no shared/data',
}, () => {
  const file = path.join(model, 'MODEL_CARD.md');
  const trained = fs.readFileSync(file, 'utf8');
  assert.ok(trained.includes(COMMAND), 'training recorded its command in the card');

  const fresh = cxr('card', '--check', '--model', model);
  assert.equal(fresh.status, 0, `a card as training wrote it passes --check: ${fresh.stdout}${fresh.stderr}`);
  assert.match(fresh.stdout, /^current: /);

  // A figure, a word and a whole line changed, as an older card writer or a hand edit would leave them.
  const edited = trained
    .replace(/\| accuracy \| [0-9.]+%/, '| accuracy | 12.3%')
    .replace('## What it does', '## What it did')
    .replace(/\nDefault: .*\n|`balanced`: .*\n/, '\n');
  assert.notEqual(edited, trained, 'the edit changed the card');
  fs.writeFileSync(file, edited);

  const stale = cxr('card', '--check', '--model', model);
  assert.equal(stale.status, 1, 'an edited card fails --check');
  assert.match(stale.stdout, /^differs: .*line \d+:/);
  assert.match(stale.stderr, /1 of 1 cards differ from their records/);
  assert.ok(fs.readFileSync(file, 'utf8') === edited, '--check writes nothing');

  const rewrite = cxr('card', '--model', model);
  assert.equal(rewrite.status, 0, rewrite.stderr);
  assert.match(rewrite.stdout, /^rewritten: /);
  assert.ok(fs.readFileSync(file, 'utf8') === trained, 'the card is byte for byte the one training wrote');
  assert.equal(cxr('card', '--check', '--model', model).status, 0, 'and passes --check again');
});

test('cxr card refuses a folder without cxr.json, and says a card written without one had no command', {
  skip: !haveData && 'no shared/data',
}, () => {
  const empty = path.join(work, 'no-model');
  fs.mkdirSync(empty);
  const refused = cxr('card', '--model', empty);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /no-model: no cxr\.json \(not a cxr model folder\)/);
  assert.ok(!fs.existsSync(path.join(empty, 'MODEL_CARD.md')), 'nothing written');

  const copy = path.join(work, 'no-card');
  fs.mkdirSync(copy);
  fs.copyFileSync(path.join(model, 'cxr.json'), path.join(copy, 'cxr.json'));
  assert.equal(cxr('card', '--check', '--model', copy).status, 1, 'a folder without a card fails --check');
  const written = cxr('card', '--model', copy);
  assert.equal(written.status, 0, written.stderr);
  assert.match(written.stdout, /written without the training command/);
  const card = fs.readFileSync(path.join(copy, 'MODEL_CARD.md'), 'utf8');
  assert.ok(!card.includes('Command:'), 'no command is made up');
  assert.ok(card.includes('## Recipe'), 'the rest of the card is there');
});

/**
 * Every committed model folder: a folder under models/ or docs/experiments/ with a cxr.json, but not an ensemble's
 * member (a sub-folder of a model, whose cxr.json is kept for provenance and has no card of its own).
 */
function committedModelFolders(): string[] {
  const found: string[] = [];
  const walk = (dir: string, inModel: boolean) => {
    const isModel = fs.existsSync(path.join(dir, 'cxr.json'));
    if (isModel && !inModel) found.push(dir);
    for (const e of fs.readdirSync(dir, { withFileTypes: true }))
      if (e.isDirectory() && e.name !== 'node_modules') walk(path.join(dir, e.name), inModel || isModel);
  };
  for (const top of ['models', path.join('docs', 'experiments')]) walk(path.join(REPO, top), false);
  return found.sort();
}

test('every committed model folder has its card as its records give it (cxr card after changing the writer)', () => {
  const folders = committedModelFolders();
  assert.ok(folders.length >= 80, `the glob finds the committed folders (${folders.length})`);
  assert.ok(folders.includes(path.join(REPO, 'models', 'default')), 'the shipped model is among them');
  const stale = folders
    .map((dir) => cardStatus(dir))
    .filter((s) => !s.current)
    .map((s) => `${path.relative(REPO, s.dir)}: ${s.firstDifference}`);
  assert.deepEqual(stale, [], 'cards that differ from their records: cxr card --model DIR rewrites them');
});
