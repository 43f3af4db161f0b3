import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { imageElements, writeDicom } from './dicom-writer';
import { makeSeededModel, tempDir } from './ood-fixtures';
import { XRAY_JPEG } from './serve-fixtures';
import * as history from '../src/cli/history';
import * as predict from '../src/cli/predict';
import { runLikeMain } from './in-process-cli';

const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');
let root = '';
let modelDir = '';
let images = '';

// The default audit log of these runs: inside the test folder, never the user's.
const auditDb = () => path.join(root, 'audit.db');

/** `cxr ARGS` as a process of its own: for what main.js's error handler makes of a refusal (status 1, message). */
function cxrProcess(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, CXR_MODEL: modelDir, CXR_DB: auditDb() },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * `cxr ARGS` in this process (a child each costs an engine start): its status as main.js would end with it.
 * `cxr predict` sets process.exitCode (2: some files failed); it is cleared before each run, so one run's code
 * is not read as the next one's, and after, so it is not the test process's own.
 */
async function cxr(...args: string[]) {
  process.exitCode = undefined;
  try {
    const r = await runLikeMain([predict.register, history.register], args, {
      CXR_MODEL: modelDir,
      CXR_DB: auditDb(),
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    process.exitCode = undefined;
  }
}

function parseCsv(text: string): Record<string, string>[] {
  // Enough CSV for these rows: quoted fields may hold commas and doubled quotes, not newlines.
  const lines = text.trim().split('\n');
  const split = (line: string) => {
    const out: string[] = [];
    let cur = '',
      quoted = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (quoted) {
        if (c === '"' && line[i + 1] === '"') {
          cur += '"';
          i++;
        } else if (c === '"') quoted = false;
        else cur += c;
      } else if (c === '"') quoted = true;
      else if (c === ',') {
        out.push(cur);
        cur = '';
      } else cur += c;
    }
    out.push(cur);
    return out;
  };
  const header = split(lines[0]);
  return lines.slice(1).map((l) => Object.fromEntries(split(l).map((v, i) => [header[i], v])));
}

const noFilm = !fs.existsSync(XRAY_JPEG) && 'no shared samples';

/**
 * 120 × 100 gray pixels: a real chest film, small, which the image checks assess (so it gets a heat map);
 * without the shared samples a gradient, which they do not (the heat-map tests then skip).
 */
async function smallFilm(): Promise<Uint8Array> {
  if (noFilm) return Uint8Array.from({ length: 120 * 100 }, (_, i) => (i % 120) * 2);
  return new Uint8Array(await sharp(XRAY_JPEG).greyscale().resize(120, 100, { fit: 'fill' }).raw().toBuffer());
}

before(async () => {
  root = tempDir('predict-cli');
  modelDir = await makeSeededModel(path.join(root, 'model'), { inputSize: 32, widths: [4, 8, 8, 8] });
  images = path.join(root, 'images');
  fs.mkdirSync(path.join(images, 'sub'), { recursive: true });
  const px = await smallFilm();
  const raw = { raw: { width: 120, height: 100, channels: 1 as const } };
  fs.writeFileSync(path.join(images, 'a.jpeg'), await sharp(px, raw).jpeg().toBuffer());
  fs.writeFileSync(path.join(images, 'b, with comma.png'), await sharp(px, raw).png().toBuffer());
  fs.writeFileSync(
    path.join(images, 'c.dcm'),
    writeDicom(imageElements({ rows: 100, columns: 120, bitsAllocated: 8, pixels: px })),
  );
  fs.writeFileSync(path.join(images, 'd.txt'), 'not an image');
  fs.writeFileSync(path.join(images, '.hidden.jpeg'), 'hidden');
  fs.writeFileSync(path.join(images, 'sub', 'a.jpeg'), await sharp(px, raw).jpeg().toBuffer());
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

test('a folder: CSV rows in name order, non-images skipped and counted, exit 0', async () => {
  const r = await cxr('predict', images);
  assert.equal(r.code, 0, r.stderr);
  const rows = parseCsv(r.stdout);
  assert.deepEqual(
    rows.map((x) => path.basename(x.file)),
    ['a.jpeg', 'b, with comma.png', 'c.dcm'],
  );
  for (const row of rows.slice(0, 3)) {
    const p = Number(row.probability);
    assert.ok(p > 0 && p < 1, JSON.stringify(row));
    assert.equal(row.label, p >= 0.5 ? 'PNEUMONIA' : 'NORMAL');
    assert.equal(row.operating_point, 'balanced');
    assert.equal(row.threshold, '0.5');
    assert.equal(row.error, '');
  }
  assert.match(r.stderr, /3 predicted, 0 failed, 1 skipped \(not images\)/);
  // Without -r, the sub-folder's image is not read, and the user is told how to include it.
  assert.match(r.stderr, /hint: .*images has sub-folders with images; add -r/);
});

test('--recursive, --format json, --heatmaps, --operating-point; a missing path is a row in place', async () => {
  const heat = path.join(root, 'heat');
  const missing = path.join(root, 'nope.jpeg');
  const r = await cxr(
    'predict',
    path.join(images, 'a.jpeg'),
    missing,
    images,
    '--recursive',
    '--format',
    'json',
    '--heatmaps',
    heat,
    '--operating-point',
    'screening',
  );
  assert.equal(r.code, 2, r.stderr); // the missing path failed
  const rows = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(
    rows.map((x) => path.relative(root, x.file as string)),
    ['images/a.jpeg', 'nope.jpeg', 'images/a.jpeg', 'images/b, with comma.png', 'images/c.dcm', 'images/sub/a.jpeg'],
  );
  assert.doesNotMatch(r.stderr, /hint:/);
  // The row names the file: its error cell does not name it again.
  assert.equal(rows[1].error, 'no such file or folder');
  for (const row of rows.filter((x) => x.error === null)) {
    assert.equal(row.operatingPoint, 'screening');
    assert.equal(row.threshold, 0.3);
  }
  // Without the shared samples the films are gradients, which the model cannot assess: no maps to name.
  if (noFilm) return;
  for (const row of rows.filter((x) => x.error === null)) {
    assert.ok(fs.existsSync(row.heatmap as string), `heat map of ${row.file}`);
  }
  // Maps are named after the path inside the folder named: a.jpeg and sub/a.jpeg do not overwrite each
  // other, and a.jpeg named twice (itself, and in its folder) is one file with one map.
  assert.deepEqual(
    rows.map((x) => (x.heatmap === null ? null : path.relative(heat, x.heatmap as string))),
    [
      'a.jpeg.heatmap.png',
      null,
      'a.jpeg.heatmap.png',
      'b, with comma.png.heatmap.png',
      'c.dcm.heatmap.png',
      'sub__a.jpeg.heatmap.png',
    ],
  );
  assert.equal(fs.readdirSync(heat).length, 4);
});

test('exit 1 when nothing could be predicted, or for an unknown operating point', async () => {
  // A non-image named on its own is a row with its error (it was asked for), not a skip.
  const none = await cxr('predict', path.join(images, 'd.txt'), path.join(root, 'missing'));
  assert.equal(none.code, 1);
  const rows = parseCsv(none.stdout);
  assert.equal(rows.length, 2);
  assert.match(rows[0].error, /not a JPEG, PNG or DICOM/);
  // Through main.js itself: a refusal thrown by the command is its error handler's exit 1 and message.
  const badOp = cxrProcess('predict', images, '--operating-point', 'nonsense');
  assert.equal(badOp.code, 1);
  assert.match(badOp.stderr, /unknown operating point 'nonsense'/);
});

test("--patient-age: an adult's age puts a film outside the population; a bad age is refused before any work", {
  skip: !fs.existsSync(XRAY_JPEG) && 'no shared samples',
}, async () => {
  const rows = async (...args: string[]) => {
    const r = await cxr('predict', XRAY_JPEG, '--json', '--no-audit', ...args);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Array<{ verdict: string; warnings: string[] }>;
  };
  const [plain] = await rows();
  assert.notEqual(plain.verdict, 'outside-population', JSON.stringify(plain));
  const [adult] = await rows('--patient-age', '40');
  assert.equal(adult.verdict, 'outside-population', JSON.stringify(adult));
  assert.ok(adult.warnings.some((w) => /age given with the image is a patient age over 10/.test(w)));
  assert.equal((await rows('--patient-age', '4'))[0].verdict, plain.verdict);
  for (const bad of ['-2', '200', 'old', '0x10', '1e1', 'Infinity', ' 5']) {
    const r = await cxr('predict', XRAY_JPEG, '--patient-age', bad);
    assert.equal(r.code, 1, bad);
    assert.match(r.stderr, /--patient-age.*a number of years from 0 to 130/);
  }
});

test('CSV: file names that look like spreadsheet formulas are written as text', async () => {
  const dir = path.join(root, 'formulas');
  fs.mkdirSync(dir, { recursive: true });
  const names = ['=HYPERLINK("http:evil.example").jpeg', '@SUM(1+1).jpeg', '-2+3.jpeg'];
  for (const n of names) fs.copyFileSync(path.join(images, 'a.jpeg'), path.join(dir, n));
  // Named as they are, relative to the folder they are in (a name that starts with '-' after '--').
  const cwd = process.cwd();
  process.chdir(dir);
  const r = await cxr('predict', '--', ...names).finally(() => process.chdir(cwd));
  assert.equal(r.code, 0, r.stderr);
  const rows = parseCsv(r.stdout);
  assert.deepEqual(
    rows.map((x) => x.file),
    names.map((n) => `'${n}`),
  );
  assert.ok(
    rows.every((x) => Number(x.probability) > 0),
    r.stdout,
  );
});

test('every prediction goes to the audit log that cxr history reads; --no-audit writes none', async () => {
  const db = path.join(root, 'own-audit.db');
  const r = await cxr('predict', images, '--db', db, '--json');
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<{ file: string; probability: number; label: string }>;
  const h = await cxr('history', '--db', db, '--json', '--limit', '100');
  assert.equal(h.code, 0, h.stderr);
  const logged = h.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { probability: number; label: string; input: { kind: string } });
  assert.equal(logged.length, rows.length);
  // Newest first in the log; the same answers as the rows, whatever order they finished in.
  const key = (x: { probability: number; label: string }) => `${x.label} ${x.probability.toFixed(6)}`;
  assert.deepEqual(logged.map(key).sort(), rows.map(key).sort());
  assert.deepEqual(logged.map((x) => x.input.kind).sort(), ['dicom', 'jpeg', 'png']);

  // The default log is CXR_DB (as for cxr serve).
  const before = fs.existsSync(auditDb())
    ? JSON.parse((await cxr('history', '--json', '--limit', '1')).stdout || '{}')
    : null;
  const one = await cxr('predict', path.join(images, 'a.jpeg'));
  assert.equal(one.code, 0, one.stderr);
  const latest = JSON.parse((await cxr('history', '--json', '--limit', '1')).stdout) as { id: string };
  assert.notEqual(latest.id, before?.id);

  const quiet = path.join(root, 'never.db');
  const n = await cxr('predict', path.join(images, 'a.jpeg'), '--db', quiet, '--no-audit');
  assert.equal(n.code, 0, n.stderr);
  assert.equal(fs.existsSync(quiet), false);
});

test('an empty folder, or one with images only below it, is a clear exit 1', async () => {
  const empty = path.join(root, 'empty');
  fs.mkdirSync(path.join(empty, 'notes'), { recursive: true });
  fs.writeFileSync(path.join(empty, 'readme.txt'), 'no films here');
  const r = await cxr('predict', empty);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /no JPEG, PNG or DICOM files/);
  assert.match(r.stderr, /nothing to predict .*1 non-image file\(s\) skipped/);
  assert.doesNotMatch(r.stderr, /hint:/);

  const nested = path.join(root, 'nested');
  fs.mkdirSync(path.join(nested, 'day1'), { recursive: true });
  fs.copyFileSync(path.join(images, 'a.jpeg'), path.join(nested, 'day1', 'a.jpeg'));
  const h = await cxr('predict', nested);
  assert.equal(h.code, 1);
  assert.match(h.stderr, /hint: .*nested has sub-folders with images; add -r/);
  assert.equal((await cxr('predict', nested, '-r')).code, 0);
});

test('an unwritable --heatmaps or --db fails at once with a message naming it', async () => {
  const file = path.join(images, 'a.jpeg'); // a file where a folder would have to be
  const heat = await cxr('predict', images, '--heatmaps', path.join(file, 'maps'));
  assert.equal(heat.code, 1);
  assert.equal(heat.stdout, '');
  assert.match(heat.stderr, /--heatmaps .*maps: cannot write there/);
  const db = await cxr('predict', images, '--db', path.join(file, 'audit.db'));
  assert.equal(db.code, 1);
  assert.equal(db.stdout, '');
  assert.match(db.stderr, /audit log .*audit\.db: cannot write it .*--no-audit/);
});

test('--heatmaps: no map for a film the model cannot assess; a bare DICOM without a name is found in a folder', {
  skip: noFilm,
}, async () => {
  const dir = path.join(root, 'mixed');
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(images, 'a.jpeg'), path.join(dir, 'a.jpeg'));
  // One grey level: the image checks refuse it, so the verdict is cannot-assess.
  const grey = { raw: { width: 120, height: 100, channels: 1 as const } };
  fs.writeFileSync(
    path.join(dir, 'blank.png'),
    await sharp(new Uint8Array(120 * 100).fill(128), grey)
      .png()
      .toBuffer(),
  );
  // A data set without the 128-byte preamble and "DICM", and without an extension: the decoder reads it.
  const px = await smallFilm();
  const bare = writeDicom(imageElements({ rows: 100, columns: 120, bitsAllocated: 8, pixels: px }), {
    partTen: false,
  });
  fs.writeFileSync(path.join(dir, 'film0001'), bare);
  const heat = path.join(root, 'mixed-heat');
  const r = await cxr('predict', dir, '--format', 'json', '--heatmaps', heat, '--no-audit');
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<{ file: string; verdict: string; heatmap: string | null }>;
  const byName = Object.fromEntries(rows.map((x) => [path.basename(x.file), x]));
  assert.deepEqual(Object.keys(byName).sort(), ['a.jpeg', 'blank.png', 'film0001']);
  assert.equal(byName['blank.png'].verdict, 'cannot-assess');
  assert.equal(byName['blank.png'].heatmap, null);
  assert.equal(byName['a.jpeg'].verdict, 'assessed');
  assert.ok(fs.existsSync(byName['a.jpeg'].heatmap as string));
  assert.deepEqual(fs.readdirSync(heat).sort(), ['a.jpeg.heatmap.png', 'film0001.heatmap.png']);
});
