// checkpoints/best is written whole (train/loop.ts): it was removed, then written file by file over several
// turns of the event loop, so a stop in between (a second Ctrl-C, EPIPE from `| head`, a kill) left it empty.
// Watched at every turn of the event loop while a run trains, it is absent or complete, and a checkpoint never
// names a best epoch before its model is there. The closing validation line says it scores the test-time views
// where the epoch lines scored the plain film alone (their AUCs differed without a word).
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initEngine } from '../src/engine';
import { runTraining } from '../src/train/run';
import { needsData } from './shared-data';
import { linkFilms, TINY_RECIPE } from './tiny-films';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const skip = needsData();
let tmp = '';
let data = '';

before(async () => {
  if (skip) return;
  await initEngine(1);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-best-atomic-'));
  data = linkFilms(path.join(tmp, 'data'), 12, 'kaggle');
});
after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** What an observer sees of the checkpoints now: a problem, or null. */
function inconsistency(ckpt: string): string | null {
  const best = path.join(ckpt, 'best');
  const files = fs.existsSync(best) ? fs.readdirSync(best).sort().join(',') : null;
  if (files !== null && files !== 'model.json,weights.bin') return `checkpoints/best holds [${files}]`;
  const stateFile = path.join(ckpt, 'last', 'state.json');
  const state = fs.existsSync(stateFile) ? JSON.parse(fs.readFileSync(stateFile, 'utf8')) : null;
  if (state && state.bestEpoch > 0 && files === null) return `last names best epoch ${state.bestEpoch}, no best`;
  return null;
}

test('checkpoints/best is never seen empty or half-written while a run trains', { skip }, async () => {
  const out = path.join(tmp, 'run');
  const ckpt = path.join(out, 'checkpoints');
  const seen: string[] = [];
  let watching = true;
  let turns = 0;
  const watch = () => {
    if (!watching) return;
    turns++;
    const problem = inconsistency(ckpt);
    if (problem) seen.push(problem);
    setImmediate(watch);
  };
  const lines: string[] = [];
  await runTraining({
    data,
    out,
    overrides: { ...TINY_RECIPE, epochs: 2, tta: ['identity', 'zoom-in'] },
    report: false,
    gate: false,
    progress: false,
    log: (l) => {
      lines.push(l);
      // From the first epoch's line on: its best model and checkpoint are written after it.
      if (/^epoch 1\/2: /.test(l)) setImmediate(watch);
    },
  });
  watching = false;
  assert.ok(turns > 0, 'the watch never ran');
  assert.deepEqual(seen, []);
  const closing = lines.find((l) => l.startsWith('validation (best epoch'));
  assert.match(
    closing ?? lines.join('\n'),
    /^validation \(best epoch \d, T=[\d.]+\) with test-time views identity, zoom-in /,
  );
  assert.match(closing ?? '', /zoom-in \(each epoch's val AUC: the identity view alone\): AUC /);
});

test('a model without test-time views says nothing of views in its validation line', { skip }, async () => {
  const lines: string[] = [];
  await runTraining({
    data,
    out: path.join(tmp, 'plain'),
    overrides: TINY_RECIPE,
    report: false,
    gate: false,
    progress: false,
    log: (l) => lines.push(l),
  });
  assert.match(lines.find((l) => l.startsWith('validation (')) ?? '', /^validation \(best epoch 1, T=[\d.]+\): AUC /);
});
