// Claims of the user documentation checked against the code (session 34's review of the docs).
//
// docs/robustness.md: "--limit N keeps at most N films per class"; the files that are not films "are set aside
// before the draw, so `--limit` draws from films it can read; a warning and `data.source` say how many were left
// out and why, and `data.leftOut` names each." A JPEG cut short passed the leading-bytes check, was drawn, and was
// then dropped at decoding: its class got one film fewer although readable films were left, and the file was in
// neither `data.files` nor `data.leftOut`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runRobustness } from '../src/robustness/run';
import { makeTinyModel, tempDir } from './serve-fixtures';
import { needsData, SAMPLES_FULLRES, sampleFilmCopies } from './shared-data';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const skip = needsData(SAMPLES_FULLRES);
let dir = '';
let model = '';
let data = '';

before(async () => {
  if (skip) return;
  dir = tempDir('docs-review-s34');
  model = await makeTinyModel(path.join(dir, 'model'), { inputSize: 32, tta: ['identity'] });
  data = sampleFilmCopies(path.join(dir, 'data'), 3);
  // A JPEG by its leading bytes that stops in its first kilobytes: it does not decode.
  const first = fs.readdirSync(path.join(data, 'NORMAL'))[0];
  const bytes = fs.readFileSync(path.join(data, 'NORMAL', first));
  fs.writeFileSync(path.join(data, 'NORMAL', 'cut-short.jpeg'), bytes.subarray(0, 2000));
});
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('robustness --limit draws N films per class that decode, and names a JPEG that does not in leftOut', {
  skip,
}, async () => {
  // Four NORMAL files, one of them cut short, and a limit of three: some seeds draw the cut-short one.
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const { result } = await runRobustness({
      modelDir: model,
      data,
      limit: 3,
      seed,
      changes: ['blur'],
      strengths: [1],
      outside: false,
      log: () => {},
    });
    assert.deepEqual([result.data.normal, result.data.pneumonia], [3, 3], `seed ${seed}`);
    assert.ok(!result.data.files.includes('NORMAL/cut-short.jpeg'), `seed ${seed}`);
    // Named in leftOut whenever the draw met it (always once the draw must pass over it).
    const named = (result.data.leftOut ?? []).filter((l) => l.file === 'NORMAL/cut-short.jpeg');
    if (named.length) assert.match(named[0].reason, /truncated JPEG/, `seed ${seed}`);
  }
  // Without a limit every film is read: the cut-short one is left out, named with why, and counted in the source.
  const { result } = await runRobustness({
    modelDir: model,
    data,
    changes: ['blur'],
    strengths: [1],
    outside: false,
    log: () => {},
  });
  assert.deepEqual([result.data.normal, result.data.pneumonia], [3, 3]);
  assert.deepEqual(
    (result.data.leftOut ?? []).map((l) => l.file),
    ['NORMAL/cut-short.jpeg'],
  );
  assert.match(result.data.leftOut?.[0].reason ?? '', /truncated JPEG/);
  assert.match(result.data.source, /1 file left out/);
});
