// `cxr robustness --limit N` drew films before knowing whether it could read them: a DICOM (or any
// other file) drawn was skipped at decoding, so fewer than N films per class were scored, and the
// folder's count took in the junk. Only JPEG and PNG films are drawn from now; the rest are counted
// apart, each with why.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runRobustness } from '../src/robustness/run';
import { makeTinyModel, tempDir } from './serve-fixtures';
import { DICOM_SAMPLES, needsData, SAMPLES_FULLRES, sampleFilmCopies } from './shared-data';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const skip = needsData(SAMPLES_FULLRES, DICOM_SAMPLES);
let dir = '';
let model = '';
let data = '';

before(async () => {
  if (skip) return;
  dir = tempDir('fix-d-robustness');
  model = await makeTinyModel(path.join(dir, 'model'), { inputSize: 32, tta: ['identity'] });
  data = sampleFilmCopies(path.join(dir, 'data'), 3);
  // Three files per class that are not JPEG or PNG: a bare DICOM data set (no preamble), text, nothing.
  for (const cls of ['NORMAL', 'PNEUMONIA']) {
    fs.copyFileSync(path.join(DICOM_SAMPLES, 'CR-MONO1-10-chest_nometa.dcm'), path.join(data, cls, 'a-film'));
    fs.writeFileSync(path.join(data, cls, 'b-notes.jpeg'), 'not a film\n');
    fs.writeFileSync(path.join(data, cls, 'c-empty.png'), '');
  }
});
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('--limit N draws N films per class from the films it can read, and says what it left out', { skip }, async () => {
  const warnings: string[] = [];
  for (const seed of [1, 2, 3]) {
    const { result } = await runRobustness({
      modelDir: model,
      data,
      limit: 3,
      seed,
      changes: ['blur'],
      strengths: [1],
      outside: false,
      log: (line) => warnings.push(line),
    });
    assert.deepEqual([result.data.n, result.data.normal, result.data.pneumonia], [6, 3, 3], `seed ${seed}`);
    assert.ok(result.data.files.every((f) => f.endsWith('.jpeg')) && result.data.files.length === 6);
    assert.match(result.data.source, /\(6 images\), 6 files left out \(JPEG and PNG only\): 2 DICOM, 4 not an image/);
    assert.deepEqual(
      result.data.leftOut,
      ['NORMAL', 'PNEUMONIA'].flatMap((cls) => [
        { file: `${cls}/a-film`, reason: 'DICOM' },
        { file: `${cls}/b-notes.jpeg`, reason: 'not an image' },
        { file: `${cls}/c-empty.png`, reason: 'not an image' },
      ]),
    );
  }
  assert.ok(
    warnings.some((w) => /6 files left out .*NORMAL\/a-film \(DICOM\)/.test(w)),
    warnings.join('\n'),
  );
});

test('a folder with no JPEG or PNG film is refused, naming what it held', { skip }, async () => {
  const junk = path.join(dir, 'junk');
  for (const cls of ['NORMAL', 'PNEUMONIA']) {
    fs.mkdirSync(path.join(junk, cls), { recursive: true });
    fs.copyFileSync(path.join(DICOM_SAMPLES, 'siim_Fake_MONOHR1.dcm'), path.join(junk, cls, 'x.dcm'));
  }
  await assert.rejects(
    runRobustness({ modelDir: model, data: junk, changes: ['blur'], strengths: [1], outside: false }),
    /no JPEG or PNG films \(2 files left out \(JPEG and PNG only\): 2 DICOM\)/,
  );
});
