// `cxr predict FOLDER` on an archive: every image that cannot be read (a phone's HEIC or WebP, an empty file, a
// 12-bit JPEG, a cut-short PNG, an animated PNG) is named on stderr with why and gets an output row with its
// error and code, in CSV and JSON; files that are no images by name and bytes (notes, Thumbs.db) are only
// counted; the exit status says some files failed. A tiny seeded model and images made here: no ../shared data.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { collectInputs } from '../src/predict/batch';
import { CUT, EMPTY_SKIPPED, OTHERS, REFUSED_BY_HEADER, makeArchive } from './archive-fixtures';
import { makeSeededModel, tempDir } from './ood-fixtures';

const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');
let root = '';
let modelDir = '';
let archive = '';
let good = '';
let bad = '';

function cxr(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 60_000, env: process.env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Each failing film's name, its error (start) and code: the rows and stderr lines expected. */
const FAILING: [string, RegExp, string][] = [...REFUSED_BY_HEADER, [CUT, /./, 'TRUNCATED']];

before(async () => {
  root = tempDir('predict-skipped');
  modelDir = await makeSeededModel(path.join(root, 'model'), { inputSize: 32, widths: [4, 8, 8, 8] });
  ({ archive, good, bad } = await makeArchive(root));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

const sorted = (names: string[]) => [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

test("collectInputs with imageLike: a folder's images the decoder refuses are jobs, only non-images skipped", () => {
  const found = collectInputs([archive], false, { imageLike: true });
  assert.deepEqual(
    found.jobs.map((j) => path.basename(j.file)),
    sorted(['a.jpeg', 'b.png', ...FAILING.map(([n]) => n)]),
  );
  assert.deepEqual(
    found.skipped.map((f) => path.basename(f)),
    sorted([...OTHERS, ...EMPTY_SKIPPED]),
  );
  // An empty extensionless file is among the skipped, and listed to be named.
  assert.deepEqual(
    found.emptySkipped.map((f) => path.basename(f)),
    EMPTY_SKIPPED,
  );
  // Without it (cxr enqueue), as before: JPEG, PNG or DICOM by leading bytes, or a .dcm.
  const plain = collectInputs([archive], false);
  assert.deepEqual(
    plain.jobs.map((j) => path.basename(j.file)),
    ['a.jpeg', 'animated.png', 'b.png', 'cut.png', 'deep.jpg'],
  );
});

test('text that starts like a BMP and the empty Icon\\r file of a Mac folder are no images: skipped', () => {
  const dir = path.join(root, 'mac');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'a.jpeg'), fs.readFileSync(path.join(archive, 'a.jpeg')));
  fs.writeFileSync(path.join(dir, 'BMI chart.txt'), 'BMI chart, 2019\n');
  fs.writeFileSync(path.join(dir, 'Icon\r'), '');
  const found = collectInputs([dir], false, { imageLike: true });
  assert.deepEqual(
    found.jobs.map((j) => path.basename(j.file)),
    ['a.jpeg'],
  );
  assert.deepEqual(found.skipped.map((f) => path.basename(f)).sort(), ['BMI chart.txt', 'Icon\r']);
});

test('cxr predict DIR --json: a row with error and errorCode per failing image, named on stderr; exit 2', () => {
  const r = cxr('predict', archive, '--model', modelDir, '--no-audit', '--json');
  assert.equal(r.code, 2, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<{ file: string; error: string | null; errorCode: string | null }>;
  const byName = new Map(rows.map((x) => [path.basename(x.file), x]));
  assert.deepEqual([...byName.keys()], sorted(['a.jpeg', 'b.png', ...FAILING.map(([n]) => n)]));
  for (const ok of ['a.jpeg', 'b.png'])
    assert.deepEqual([byName.get(ok)?.error, byName.get(ok)?.errorCode], [null, null]);
  for (const [name, error, code] of FAILING) {
    const row = byName.get(name)!;
    assert.match(row.error ?? '', error, name);
    assert.equal(row.errorCode, code, `${name}: ${row.error}`);
    // stderr names the file, why, and the code, one line each.
    const line = r.stderr.split('\n').find((l) => l.startsWith(`cxr predict: failed: ${path.join(archive, name)}: `));
    assert.ok(line, `no stderr line for ${name}:\n${r.stderr}`);
    assert.ok(line.endsWith(` (${code})`), line);
    assert.ok(line.includes(row.error ?? '\0'), line);
  }
  // Files that are no images are counted, not named.
  assert.match(r.stderr, /2 predicted, 6 failed, 4 skipped \(not images\)/);
  // The empty extensionless file: named as skipped, no row, not failed.
  for (const name of EMPTY_SKIPPED) {
    const file = path.join(archive, name);
    assert.ok(
      r.stderr.includes(`cxr predict: skipped: ${file}: empty file (0 bytes) with no image or DICOM extension`),
      r.stderr,
    );
    assert.ok(!r.stderr.includes(`failed: ${file}`), r.stderr);
    assert.ok(!byName.has(name), `${name} has a row`);
  }
  for (const other of OTHERS) assert.ok(!r.stderr.includes(other), `${other} named:\n${r.stderr}`);
});

test('cxr predict DIR (CSV): an error_code column, last; the same rows', () => {
  const r = cxr('predict', archive, '--model', modelDir, '--no-audit');
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stdout.trim().split('\n');
  const header = lines[0].split(',');
  assert.equal(header.at(-1), 'error_code');
  assert.equal(header.at(-2), 'heatmap', 'the columns before it keep their places');
  assert.equal(lines.length, 1 + 2 + FAILING.length);
  for (const [name, , code] of FAILING) {
    const line = lines.find((l) => l.startsWith(`${path.join(archive, name)},`));
    assert.ok(line?.endsWith(`,${code}`), `${name}: ${line}`);
  }
  assert.ok(lines.find((l) => l.startsWith(`${path.join(archive, 'a.jpeg')},`))?.endsWith(','));
});

test('exit status: 0 when every image got a prediction (non-images aside), 1 when none did', () => {
  const ok = cxr('predict', good, '--model', modelDir, '--no-audit');
  assert.equal(ok.code, 0, ok.stderr);
  assert.doesNotMatch(ok.stderr, /failed: /);
  assert.match(ok.stderr, /1 predicted, 0 failed, 1 skipped \(not images\)/);
  const none = cxr('predict', bad, '--model', modelDir, '--no-audit', '--json');
  assert.equal(none.code, 1, none.stderr);
  const rows = JSON.parse(none.stdout) as Array<{ errorCode: string | null }>;
  assert.deepEqual(
    rows.map((x) => x.errorCode),
    ['UNSUPPORTED_FORMAT', 'EMPTY'],
  );
  assert.match(none.stderr, /0 predicted, 2 failed/);
});

test('an empty README or LICENSE beside a film is skipped and named (exit 0); an empty x.dcm still fails', () => {
  const dir = path.join(root, 'licensed');
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(archive, 'a.jpeg'), path.join(dir, 'a.jpeg'));
  fs.writeFileSync(path.join(dir, 'LICENSE'), '');
  fs.writeFileSync(path.join(dir, 'README'), '');
  const r = cxr('predict', dir, '--model', modelDir, '--no-audit', '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    (JSON.parse(r.stdout) as Array<{ file: string }>).map((x) => path.basename(x.file)),
    ['a.jpeg'],
  );
  for (const name of ['LICENSE', 'README'])
    assert.match(r.stderr, new RegExp(`skipped: .*${name}: empty file \\(0 bytes\\) with no image or DICOM extension`));
  assert.match(r.stderr, /1 predicted, 0 failed, 2 skipped \(not images\)/);

  fs.writeFileSync(path.join(dir, 'IM0001.dcm'), '');
  const dcm = cxr('predict', dir, '--model', modelDir, '--no-audit', '--json');
  assert.equal(dcm.code, 2, dcm.stderr);
  assert.match(dcm.stderr, /failed: .*IM0001\.dcm: .*\(EMPTY\)/);
});

test('a folder with no film: predict says what it looked for, exit 1 (before the model is loaded)', () => {
  const dir = path.join(root, 'no-films');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'no films here');
  fs.writeFileSync(path.join(dir, 'LICENSE'), '');
  const r = cxr('predict', dir, '--model', path.join(root, 'no-such-model'));
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, '');
  assert.ok(
    r.stderr.includes(
      `cxr predict: ${dir}: no JPEG, PNG or DICOM files in this folder (looked for JPEG, PNG and DICOM`,
    ),
    r.stderr,
  );
  assert.match(r.stderr, /\.jpg, \.jpeg, \.png, \.dcm/);
  assert.match(r.stderr, /nothing to predict in .*no-films \(2 non-image file\(s\) skipped\)/);
});
