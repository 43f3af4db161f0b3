// `cxr predict` and runBatch account for every input: a folder's broken link or FIFO gets an error row (the
// FIFO is never opened), options no file could be predicted with are refused once, before any file, a second
// Ctrl-C still leaves a closed JSON array, and one output format is chosen, not two. A tiny seeded model and
// generated images: no ../shared data needed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { type BatchOptions, collectInputs, runBatch } from '../src/predict/batch';
import { InputError } from '../src/predict/errors';
import { makeSeededModel, tempDir } from './ood-fixtures';
import { sink } from './text-sink';
import { gradientJpeg } from './archive-fixtures';

const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');
let root = '';
let modelDir = '';
let film = '';
let mixed = '';
/** A folder of MANY links to one film, each big enough to take a while to decode: a batch to stop midway. */
let many = '';
const MANY = 200;

function cxr(...args: string[]) {
  // The timeout ends a run that opened the FIFO (it would wait for a writer forever).
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 60_000, env: process.env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  root = tempDir('predict-accounting');
  modelDir = await makeSeededModel(path.join(root, 'model'), { inputSize: 32, widths: [4, 8, 8, 8] });
  const jpeg = await gradientJpeg();
  mixed = path.join(root, 'mixed');
  fs.mkdirSync(mixed);
  film = path.join(mixed, 'a.jpeg');
  fs.writeFileSync(film, jpeg);
  fs.symlinkSync('/nonexistent/film.jpeg', path.join(mixed, 'broken.jpeg'));
  spawnSync('mkfifo', [path.join(mixed, 'pipe.jpeg')]);
  fs.symlinkSync('self.jpeg', path.join(mixed, 'self.jpeg')); // a link to itself: ELOOP
  fs.writeFileSync(path.join(mixed, 'notes.txt'), 'not a film');

  many = path.join(root, 'many');
  fs.mkdirSync(many);
  const side = 2400;
  const noise = Uint8Array.from({ length: side * side }, (_, i) => (i * 2654435761) >>> 24);
  const first = path.join(many, 'f000.jpeg');
  fs.writeFileSync(
    first,
    await sharp(noise, { raw: { width: side, height: side, channels: 1 } })
      .jpeg()
      .toBuffer(),
  );
  for (let i = 1; i < MANY; i++) fs.linkSync(first, path.join(many, `f${String(i).padStart(3, '0')}.jpeg`));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

test("a folder's broken link, FIFO and link loop are jobs with nothing to read, never opened", () => {
  const found = collectInputs([mixed], false);
  assert.deepEqual(
    found.jobs.map((j) => [path.basename(j.file), j.missing, j.error ?? null]),
    [
      ['a.jpeg', false, null],
      ['broken.jpeg', true, 'no such file or folder'],
      ['pipe.jpeg', true, 'not a regular file'],
      ['self.jpeg', true, 'cannot read (ELOOP)'],
    ],
  );
  assert.deepEqual(found.skipped, [path.join(mixed, 'notes.txt')]);
  assert.deepEqual(found.notes, []);
});

test('cxr predict DIR: every entry has a row or is counted; the rows say what a named path would', () => {
  const r = cxr('predict', mixed, '--model', modelDir, '--no-audit', '--json');
  assert.equal(r.code, 2, r.stderr); // some files failed
  const rows = JSON.parse(r.stdout) as Array<{ file: string; error: string | null }>;
  assert.deepEqual(
    rows.map((x) => [path.basename(x.file), x.error]),
    [
      ['a.jpeg', null],
      ['broken.jpeg', 'no such file or folder'],
      ['pipe.jpeg', 'not a regular file'],
      ['self.jpeg', 'cannot read (ELOOP)'],
    ],
  );
  assert.match(r.stderr, /1 predicted, 3 failed, 1 skipped \(not images\)/);
  // Named on the command line, the same paths get the same errors.
  const named = cxr('predict', ...['broken.jpeg', 'pipe.jpeg'].map((f) => path.join(mixed, f)), '--model', modelDir);
  assert.equal(named.code, 1, named.stderr);
  assert.match(named.stdout, /broken\.jpeg,.*no such file or folder/);
  assert.match(named.stdout, /pipe\.jpeg,.*not a regular file/);
});

test('runBatch refuses options no file could be predicted with, once, before any output', async () => {
  const cases: [Partial<BatchOptions>, (e: unknown) => boolean][] = [
    [{ operatingPoint: 'nope' }, (e) => e instanceof InputError && e.code === 'UNKNOWN_OPERATING_POINT'],
    [
      { patientAge: 500 },
      (e) => e instanceof InputError && e.code === 'BAD_PATIENT_AGE' && /from 0 to 130, got 500$/.test(e.message),
    ],
    [{ concurrency: 0 }, (e) => e instanceof RangeError && /concurrency .*1 or more, got 0$/.test(e.message)],
    [{ concurrency: 1.5 }, (e) => e instanceof RangeError],
    [{ format: 'xml' as never }, (e) => e instanceof TypeError && /format must be 'csv' or 'json'/.test(e.message)],
  ];
  for (const [opts, check] of cases) {
    const { out, text } = sink();
    const files: string[] = [];
    await assert.rejects(
      runBatch({
        paths: [film, film],
        modelDir,
        out,
        progress: false,
        log: () => {},
        onPrediction: (f) => void files.push(f),
        ...opts,
      }),
      check,
      JSON.stringify(opts),
    );
    assert.equal(text(), '', `${JSON.stringify(opts)}: nothing written`);
    assert.deepEqual(files, []);
  }
});

test('runBatch halt: the JSON array is closed there and then; nothing more is written or audited', async () => {
  const { out, text } = sink();
  const halt = new AbortController();
  const audited: string[] = [];
  let atHalt = '';
  const jobs = ['f000', 'f001', 'f002', 'f003'].map((n) => ({ file: path.join(many, `${n}.jpeg`), missing: false }));
  const result = await runBatch({
    paths: [],
    jobs,
    modelDir,
    out,
    format: 'json',
    concurrency: 1,
    progress: false,
    log: () => {},
    halt: halt.signal,
    onPrediction: (file) => {
      audited.push(path.basename(file));
      if (audited.length === 2) {
        halt.abort();
        atHalt = text();
      }
    },
  });
  // Closed at once, with the one row written before the halt: the file in flight is dropped.
  assert.equal(atHalt, text());
  const rows = JSON.parse(text()) as Array<{ file: string }>;
  assert.deepEqual(
    rows.map((r) => path.basename(r.file)),
    ['f000.jpeg'],
  );
  assert.deepEqual(audited, ['f000.jpeg', 'f001.jpeg']);
  assert.equal(result.rows.length, 1);
  assert.equal(result.interrupted, true);
});

/**
 * Runs `cxr ARGS`, calls `act` once stdout matches `ready`, then `again` once stderr matches `heard`, and
 * resolves when the process has ended.
 */
function cxrUntil(args: string[], ready: RegExp, act: (child: ChildProcess) => void, heard: RegExp, again = act) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args]);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    let stdout = '';
    let stderr = '';
    let acted: boolean | 'again' = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (!acted && ready.test(stdout)) {
        acted = true;
        act(child);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (acted === true && heard.test(stderr)) {
        acted = 'again';
        again(child);
      }
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

for (const [format, signal, status] of [
  ['json', 'SIGINT', 130],
  ['csv', 'SIGTERM', 143],
] as const) {
  test(`a second ${signal} stops at once, the ${format} output still whole, exit ${status}`, async () => {
    const args = ['predict', many, '--model', modelDir, '--no-audit', '--format', format, '--concurrency', '2'];
    // The second signal once the first is heard, while the files in flight (big films) are still decoded.
    const ready = format === 'json' ? /\{"file"/ : /\n.*\n/;
    const r = await cxrUntil(args, ready, (child) => child.kill(signal), /finishing the files in progress/);
    assert.equal(r.code, status, r.stderr);
    if (format === 'json') {
      const rows = JSON.parse(r.stdout) as Array<{ error: string | null }>;
      assert.ok(rows.length >= 1 && rows.length < MANY, `${rows.length} rows`);
    } else {
      const lines = r.stdout.split('\n');
      assert.equal(lines.pop(), '', 'the output ends with a whole line');
      assert.ok(lines.slice(1).every((l) => l.startsWith(many)));
    }
    assert.match(r.stderr, new RegExp(`${signal} again: stopping at once`));
  });
}

test('predict takes one output format: --json with --format csv is refused, --format json --json is not', () => {
  const r = cxr('predict', film, '--model', modelDir, '--no-audit', '--format', 'csv', '--json');
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /'--json' cannot be used with option '--format csv'/);
  const same = cxr('predict', film, '--model', modelDir, '--no-audit', '--format', 'json', '--json');
  assert.equal(same.code, 0, same.stderr);
  assert.equal((JSON.parse(same.stdout) as unknown[]).length, 1);
});
