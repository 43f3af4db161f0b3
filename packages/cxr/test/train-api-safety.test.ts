// The library's runTraining refuses, by default, what `cxr train` refuses: an `out` that holds a finished run
// (before, a second call with the same `out` silently trained over the first model) or other files, with the
// CLI's messages; `refuseExisting: false` is the explicit way to train over a run (the experiment commands).
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
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-api-safety-'));
  data = linkFilms(path.join(tmp, 'data'), 8, 'kaggle');
});
after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function train(out: string, extra: { refuseExisting?: boolean } = {}) {
  const lines: string[] = [];
  const run = runTraining({
    data,
    out,
    recipeName: 'cxr',
    overrides: TINY_RECIPE,
    report: false,
    gate: false,
    progress: false,
    log: (l) => lines.push(l),
    ...extra,
  });
  return { run, lines };
}

test('a second runTraining into a finished run is refused, the model kept; refuseExisting: false retrains', {
  skip,
}, async () => {
  const out = path.join(tmp, 'run');
  await train(out).run;
  const model = fs.readFileSync(path.join(out, 'cxr.json'), 'utf8');
  const again = train(out);
  await assert.rejects(
    again.run,
    new RegExp(
      `^Error: ${out} already holds a trained model, which training would overwrite: choose a new --out folder$`,
    ),
  );
  assert.equal(fs.readFileSync(path.join(out, 'cxr.json'), 'utf8'), model, 'the finished model is untouched');
  assert.deepEqual(again.lines, [], 'refused before anything ran');
  // The opt-out the experiment commands use: trains over it.
  const over = train(out, { refuseExisting: false });
  await over.run;
  assert.ok(
    over.lines.some((l) => l.startsWith('epoch 1/1')),
    over.lines.join('\n'),
  );
});

test('runTraining refuses a folder of other files, as cxr train does, and leaves it as it was', { skip }, async () => {
  const out = path.join(tmp, 'mine');
  fs.mkdirSync(out);
  fs.writeFileSync(path.join(out, 'notes.txt'), 'mine\n');
  await assert.rejects(
    train(out).run,
    /mine holds other files \(notes\.txt\), not a run: choose a new or empty --out folder/,
  );
  assert.deepEqual(fs.readdirSync(out), ['notes.txt']);
});
