// `cxr predict` on real batches: heat map names that depend on the input alone, folder walks with link
// loops, a reader that closes the pipe early, and a batch stopped by SIGINT or SIGTERM. A tiny seeded
// model and generated images: no ../shared data needed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { heatmapNames } from '../src/predict/batch';
import { makeSeededModel, SHARED, tempDir } from './ood-fixtures';
import { needsData } from './shared-data';
import { XRAY_JPEG } from './serve-fixtures';
import * as history from '../src/cli/history';
import * as predict from '../src/cli/predict';
import { runLikeMain } from './in-process-cli';

/** A real DICOM file written without the 128-byte preamble and the DICM prefix. */
const NOMETA = path.join(SHARED, 'dicom-samples', 'CR-MONO1-10-chest_nometa.dcm');

const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');
let root = '';
let modelDir = '';
/** A folder of MANY links to one small JPEG: a batch long enough to be stopped in the middle. */
let many = '';
const MANY = 300;

const env = () => ({ ...process.env, CXR_MODEL: modelDir, CXR_DB: path.join(root, 'audit.db') });

/**
 * `cxr ARGS` in this process (a child each costs an engine start); the tests of a pipe closed early and of
 * signals run cxrUntil, a process of its own, as the process is what they test. `cxr predict` sets
 * process.exitCode: it is cleared before each run (not to be read as the next one's) and after (not to be the
 * test process's own).
 */
async function cxr(...args: string[]) {
  process.exitCode = undefined;
  try {
    const r = await runLikeMain([predict.register, history.register], args, {
      CXR_MODEL: modelDir,
      CXR_DB: path.join(root, 'audit.db'),
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    process.exitCode = undefined;
  }
}

interface Ended {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cxr ARGS`, calls `act` once stdout matches `ready`, and resolves when the process has ended. */
function cxrUntil(args: string[], ready: RegExp, act: (child: ChildProcess) => void): Promise<Ended> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: env() });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    let stdout = '';
    let stderr = '';
    let acted = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (!acted && ready.test(stdout)) {
        acted = true;
        act(child);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The test films are cut from a real chest film, which the image checks assess, so each gets a heat map. */
const noFilm = needsData(XRAY_JPEG);

/**
 * A 120x100 gray film; `seed` moves the window cut from a real chest film, so each file gets its own heat
 * map (without the shared samples a gradient, which the model cannot assess: the heat-map tests skip).
 */
async function film(seed: number, format: 'jpeg' | 'png'): Promise<Buffer> {
  const image = noFilm
    ? sharp(
        Uint8Array.from({ length: 120 * 100 }, (_, i) => ((i % 120) * (2 + seed) + Math.floor(i / 120) * seed) % 256),
        { raw: { width: 120, height: 100, channels: 1 } },
      )
    : sharp(
        await sharp(XRAY_JPEG)
          .greyscale()
          .resize(160, 130, { fit: 'fill' })
          .extract({ left: 4 * seed, top: 3 * seed, width: 120, height: 100 })
          .toBuffer(),
      );
  return (format === 'jpeg' ? image.jpeg() : image.png()).toBuffer();
}

before(async () => {
  root = tempDir('predict-batch');
  modelDir = await makeSeededModel(path.join(root, 'model'), { inputSize: 32, widths: [4, 8, 8, 8] });
  fs.mkdirSync(path.join(root, 'coll', 'x'), { recursive: true });
  fs.mkdirSync(path.join(root, 'coll', 'y'), { recursive: true });
  fs.writeFileSync(path.join(root, 'coll', 'x', 'film.jpeg'), await film(1, 'jpeg'));
  fs.writeFileSync(path.join(root, 'coll', 'x', 'film.png'), await film(2, 'png'));
  fs.writeFileSync(path.join(root, 'coll', 'y', 'film.jpeg'), await film(3, 'jpeg'));
  many = path.join(root, 'many');
  fs.mkdirSync(many);
  const first = path.join(many, 'f000.jpeg');
  fs.writeFileSync(first, await film(4, 'jpeg'));
  for (let i = 1; i < MANY; i++) fs.linkSync(first, path.join(many, `f${String(i).padStart(3, '0')}.jpeg`));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

test('heatmapNames: from the path inside the folder named; a name taken by another file gets a hash', () => {
  const names = heatmapNames([
    { file: 'coll/x/film.jpeg', missing: false, name: 'x/film.jpeg' },
    { file: 'coll/x/film.png', missing: false, name: 'x/film.png' },
    { file: 'gone.jpeg', missing: true },
    { file: 'coll/x/film.jpeg', missing: false, name: 'x/film.jpeg' },
    { file: 'other/x/film.jpeg', missing: false, name: 'x/film.jpeg' },
    { file: 'other/X/FILM.jpeg', missing: false, name: 'X/FILM.jpeg' },
    { file: 'elsewhere/IM-0001.dcm', missing: false },
  ]);
  assert.deepEqual(names.slice(0, 4), ['x__film.jpeg.heatmap.png', 'x__film.png.heatmap.png', '', names[0]]);
  // Another file under a taken name (or one differing only in case): its own name, the same every run.
  assert.match(names[4], /^x__film\.jpeg-[0-9a-f]{8}\.heatmap\.png$/);
  assert.match(names[5], /^X__FILM\.jpeg-[0-9a-f]{8}\.heatmap\.png$/);
  assert.equal(names[6], 'IM-0001.dcm.heatmap.png');
  assert.equal(heatmapNames([{ file: 'other/x/film.jpeg', missing: false, name: 'x/film.jpeg' }])[0], names[0]);
  // A deep path still makes a name a disk takes (at most 255 bytes).
  const deep = `${'study-1.2.840.113619.2.55.3/'.repeat(20)}IM-0001.dcm`;
  const [long] = heatmapNames([{ file: deep, missing: false, name: deep }]);
  assert.ok(Buffer.byteLength(long) <= 255 && long.endsWith('IM-0001.dcm.heatmap.png'), long);
});

test('heat maps of films with one base name: named after their paths, the same whatever order they finish in', {
  skip: noFilm,
}, async () => {
  const coll = path.join(root, 'coll');
  const expected = {
    'x/film.jpeg': 'x__film.jpeg.heatmap.png',
    'x/film.png': 'x__film.png.heatmap.png',
    'y/film.jpeg': 'y__film.jpeg.heatmap.png',
  };
  for (const concurrency of ['3', '1']) {
    const heat = path.join(root, `heat-${concurrency}`);
    const r = await cxr(
      'predict',
      coll,
      '-r',
      '--no-audit',
      '--json',
      '--heatmaps',
      heat,
      '--concurrency',
      concurrency,
    );
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as Array<{ file: string; heatmap: string }>;
    assert.deepEqual(
      Object.fromEntries(rows.map((x) => [path.relative(coll, x.file), path.relative(heat, x.heatmap)])),
      expected,
    );
    assert.deepEqual(fs.readdirSync(heat).sort(), Object.values(expected).sort());
  }
  // Each map is its own film's: the same bytes as the map of that film predicted on its own.
  const solo = path.join(root, 'heat-solo');
  const one = await cxr('predict', path.join(coll, 'y', 'film.jpeg'), '--no-audit', '--heatmaps', solo);
  assert.equal(one.code, 0, one.stderr);
  assert.ok(
    fs
      .readFileSync(path.join(solo, 'film.jpeg.heatmap.png'))
      .equals(fs.readFileSync(path.join(root, 'heat-3', 'y__film.jpeg.heatmap.png'))),
  );
});

test("a second run into the same --heatmaps folder never writes over the first run's maps", {
  skip: noFilm,
}, async () => {
  // Two exports that both hold IM-0001 (here: y/film.jpeg and x/film.jpeg, named alone, both 'film.jpeg').
  const coll = path.join(root, 'coll');
  const heat = path.join(root, 'heat-twice');
  const first = await cxr('predict', path.join(coll, 'x', 'film.jpeg'), '--no-audit', '--json', '--heatmaps', heat);
  assert.equal(first.code, 0, first.stderr);
  const [a] = JSON.parse(first.stdout) as Array<{ heatmap: string }>;
  assert.equal(path.basename(a.heatmap), 'film.jpeg.heatmap.png');
  const kept = fs.readFileSync(a.heatmap);
  const second = await cxr('predict', path.join(coll, 'y', 'film.jpeg'), '--no-audit', '--json', '--heatmaps', heat);
  assert.equal(second.code, 0, second.stderr);
  const [b] = JSON.parse(second.stdout) as Array<{ heatmap: string }>;
  assert.match(path.basename(b.heatmap), /^film\.jpeg-[0-9a-f]{8}\.heatmap\.png$/);
  assert.ok(fs.readFileSync(a.heatmap).equals(kept), "the first run's map is untouched");
  assert.ok(!fs.readFileSync(b.heatmap).equals(kept), "the second map is the other film's");
});

test('-r reads each real folder once: a folder link loop is passed over with a note, the batch goes on', async () => {
  const loop = path.join(root, 'loop');
  fs.mkdirSync(path.join(loop, 'sub'), { recursive: true });
  fs.copyFileSync(path.join(root, 'coll', 'x', 'film.jpeg'), path.join(loop, 'sub', 'a.jpeg'));
  fs.symlinkSync('..', path.join(loop, 'sub', 'up'));
  fs.symlinkSync('self', path.join(loop, 'self')); // a link to itself: ELOOP on stat
  const r = await cxr('predict', loop, '-r', '--no-audit', '--json');
  assert.equal(r.code, 2, r.stderr); // one file failed (the link to itself)
  const rows = JSON.parse(r.stdout) as Array<{ file: string; error: string | null }>;
  // A link loop that is no folder is an entry that cannot be read: its row says so (as named, it would).
  assert.deepEqual(
    rows.map((x) => [path.relative(loop, x.file), x.error]),
    [
      ['self', 'cannot read (ELOOP)'],
      ['sub/a.jpeg', null],
    ],
  );
  assert.match(r.stderr, /sub\/up: skipped, the same folder as .*loop, read already/);

  // Without -r, the look for images below does not loop either.
  const bare = path.join(root, 'bare');
  fs.mkdirSync(path.join(bare, 'sub'), { recursive: true });
  fs.symlinkSync('..', path.join(bare, 'sub', 'up'));
  fs.copyFileSync(path.join(root, 'coll', 'x', 'film.jpeg'), path.join(bare, 'a.jpeg'));
  const b = await cxr('predict', bare, '--no-audit');
  assert.equal(b.code, 0, b.stderr);
  assert.doesNotMatch(b.stderr, /ELOOP|hint:/);
});

// Each of these is a process of its own, most of whose time is its start (the engine, the model): run side by
// side, they take about the time of one. They share only the folder they read.
describe('a batch process stopped early', { concurrency: true }, () => {
  test('a reader that stops early (| head) ends the command quietly: no stack trace, the status of SIGPIPE', {
    timeout: 240_000,
  }, async () => {
    const r = await cxrUntil(['predict', many, '--no-audit', '--concurrency', '1'], /\n/, (child) =>
      child.stdout?.destroy(),
    );
    assert.equal(r.code, 141, r.stderr);
    assert.doesNotMatch(r.stderr, /EPIPE|Unhandled|\n\s+at /);
  });

  test('SIGINT during predict --json: files in flight finish, the array is closed, stderr counts, exit 130', {
    timeout: 240_000,
  }, async () => {
    const db = path.join(root, 'interrupted.db');
    const args = ['predict', many, '--json', '--concurrency', '1', '--db', db];
    const r = await cxrUntil(args, /\{"file"/, (child) => child.kill('SIGINT'));
    assert.equal(r.code, 130, r.stderr);
    const rows = JSON.parse(r.stdout) as Array<{ error: string | null }>;
    assert.ok(rows.length >= 1 && rows.length < MANY, `${rows.length} rows`);
    assert.ok(rows.every((x) => x.error === null));
    assert.match(r.stderr, new RegExp(`stopped by SIGINT: ${rows.length} of ${MANY} file\\(s\\) done`));
    // Every row given is in the audit log, and nothing more.
    const h = await cxr('history', '--db', db, '--json', '--limit', String(MANY));
    assert.equal(h.code, 0, h.stderr);
    assert.equal(h.stdout.trim().split('\n').length, rows.length);
  });

  test('SIGTERM during a CSV batch: whole rows only, exit 143', async () => {
    const args = ['predict', many, '--no-audit', '--concurrency', '1'];
    const r = await cxrUntil(args, /\n.*\n/, (child) => child.kill('SIGTERM'));
    assert.equal(r.code, 143, r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines.pop(), '', 'the output ends with a whole line');
    assert.ok(lines.length >= 2 && lines.length < MANY + 1, `${lines.length} lines`);
    assert.ok(lines.slice(1).every((l) => l.startsWith(many)));
    assert.match(r.stderr, new RegExp(`stopped by SIGTERM: ${lines.length - 1} of ${MANY} file\\(s\\) done`));
  });
});

test('a folder scan takes a DICOM file without its preamble by its .dcm name, and reads it', {
  skip: needsData(NOMETA),
}, async () => {
  const dir = path.join(root, 'nometa');
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(NOMETA, path.join(dir, 'IM-0001.dcm'));
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a film');
  const r = await cxr('predict', dir, '--format', 'csv', '--no-audit');
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.trim().split('\n').slice(1);
  assert.equal(rows.length, 1, r.stdout);
  assert.match(rows[0], /IM-0001\.dcm/);
  assert.match(r.stderr, /1 skipped|skipped 1|1 other/);
});
