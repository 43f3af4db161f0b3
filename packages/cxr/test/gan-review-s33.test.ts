// Review of src/gan (session 33): a GAN run killed while it swapped in a new checkpoint (between the two renames
// of models/io.ts replaceDir, which leave checkpoints/last.old-HOST-PID and no checkpoints/last) resumes from that
// checkpoint, as `cxr train --resume` does (train/checkpoint.ts recoverCheckpoints), not from epoch 0.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initEngine } from '../src/engine';
import { type GanTrainOptions, trainGan } from '../src/gan/train';
import { readRunLog } from './child-cli';
import { linkedTrainFilms, needsData } from './shared-data';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const skip = needsData();

let tmp = '';
let data = '';

/** A GAN at 32 px with 4-channel networks: about a second for two epochs. */
const ganTrain = (out: string, epochs: number, o: Partial<GanTrainOptions> = {}, lines: string[] = []) =>
  trainGan({
    data,
    out,
    config: { size: 32, zDim: 8, gWidth: 4, dWidth: 4, batchSize: 4, valFraction: 0.2, logEvery: 1, seed: 3, epochs },
    checkPerClass: 0,
    progress: false,
    log: (l) => lines.push(l),
    ...o,
  });

before(async () => {
  if (skip) return;
  await initEngine(1);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-gan-review-s33-'));
  data = linkedTrainFilms(path.join(tmp, 'data'), 8);
});
after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('gan train --resume continues from a checkpoint a kill left as last.old-HOST-PID', { skip }, async () => {
  const out = path.join(tmp, 'killed-in-swap');
  await ganTrain(out, 1);
  // What a kill between replaceDir's two renames leaves: the finished checkpoint stepped aside, none in its place.
  // The writer's pid is one that has exited (a finished child's).
  const gone = spawnSync(process.execPath, ['-e', '0']).pid;
  const last = path.join(out, 'checkpoints', 'last');
  fs.renameSync(last, `${last}.old-${gone}`);

  const lines: string[] = [];
  const r = await ganTrain(out, 2, { resume: true }, lines);
  assert.ok(lines.includes('resuming after epoch 1'), `expected a resume from epoch 1, got:\n${lines.join('\n')}`);
  assert.equal(r.grids.length, 1, 'only epoch 2 is trained again');
  assert.deepEqual(
    readRunLog(out)
      .filter((e) => e.kind === 'epoch')
      .map((e) => e.epoch),
    [1, 2],
  );
  assert.equal(JSON.parse(fs.readFileSync(path.join(last, 'state.json'), 'utf8')).epoch, 2);
  assert.deepEqual(
    fs.readdirSync(path.join(out, 'checkpoints')).filter((e) => e.startsWith('last.old-')),
    [],
  );
});
