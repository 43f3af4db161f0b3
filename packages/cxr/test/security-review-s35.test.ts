// Security review (session 35): what a hostile file name can do to the people who read cxr's output. A film
// named with terminal escapes had them written as they are by `cxr predict` to a terminal (a name could move
// the cursor and write over the row of the film before it); a CSV cell with a ';' was left unquoted, so a
// spreadsheet that splits on ';' (Excel in much of Europe) read '=...' after it as a formula. A new SQLite audit
// log (the films' thumbnails and heat maps, who asked for what) was made readable by every user of the machine.
// The comparison page inlined each run folder's report/training.svg as markup: a run folder from elsewhere put its
// script into the page.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { evaluate } from '../src/eval';
import { runBatch } from '../src/predict/batch';
import { writeComparison } from '../src/report';
import { csvCell, printable } from '../src/report/csv';
import { openAuditStore } from '../src/serve/audit';
import { makeTinyModel, tempDir, XRAY_JPEG } from './serve-fixtures';

const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const made: string[] = [];
after(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

let modelDir = '';
before(async () => {
  const d = tempDir('s35-sec-model');
  made.push(d);
  modelDir = await makeTinyModel(d);
});

/** A stream that keeps what is written to it, a terminal or not. */
function capture(isTTY: boolean): { out: NodeJS.WritableStream; text: () => string } {
  let text = '';
  const out = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  Object.assign(out, { isTTY });
  return { out, text: () => text };
}

// A real JPEG whose name moves the cursor up a line, clears it, and writes a result of its own there.
const HOSTILE = '\u001b[1A\u001b[2K/ward/other.jpeg,No signs of pneumonia detected\r\nx.jpeg';

async function predictHostile(isTTY: boolean): Promise<string> {
  const dir = tempDir('s35-sec-films');
  made.push(dir);
  fs.copyFileSync(XRAY_JPEG, path.join(dir, HOSTILE.replace(/\//g, '_')));
  const { out, text } = capture(isTTY);
  const r = await runBatch({ paths: [dir], modelDir, out, log: () => {}, progress: false });
  assert.equal(r.processed, 1, 'the film is predicted');
  return text();
}

test('cxr predict to a terminal writes a file name’s control characters as escapes, not as they are', async () => {
  const shown = await predictHostile(true);
  assert.ok(!shown.includes('\u001b'), 'no escape character reaches the terminal');
  const lines = shown.trimEnd().split('\n');
  assert.equal(lines.length, 2, `the header and one row: ${JSON.stringify(shown)}`);
  assert.match(lines[1], /\\u001b\[1A\\u001b\[2K_ward_other\.jpeg,No signs of pneumonia detected\\r\\nx\.jpeg/);
});

test('cxr predict into a file or pipe keeps the file name as it is (a script opens the film by it)', async () => {
  const written = await predictHostile(false);
  assert.ok(written.includes(HOSTILE.replace(/\//g, '_')), JSON.stringify(written));
});

test('printable: C0, DEL, C1, line separators and bidirectional overrides as escapes; the rest as it is', () => {
  assert.equal(printable('a\u001b[31mb\tc\r\nd'), 'a\\u001b[31mb\\tc\\r\\nd');
  assert.equal(printable('x\u009by\u007fz\u2028\u202eé😀'), 'x\\u009by\\u007fz\\u2028\\u202eé😀');
});

test('a CSV cell with a ";" is quoted: a spreadsheet splitting on ";" reads no formula after it', () => {
  assert.equal(csvCell('x;=HYPERLINK(A1)'), '"x;=HYPERLINK(A1)"');
  assert.equal(csvCell('/films/a;b.jpeg'), '"/films/a;b.jpeg"');
  assert.equal(csvCell('plain'), 'plain');
});

test('a new SQLite audit log, and its -wal beside it, are readable by their owner only (umask 022)', async () => {
  const dir = tempDir('s35-sec-audit');
  made.push(dir);
  const file = path.join(dir, 'logs', 'audit.db');
  const umask = process.umask(0o022);
  try {
    const store = await openAuditStore(file);
    try {
      for (const f of [file, `${file}-wal`].filter((x) => fs.existsSync(x)))
        assert.equal(fs.statSync(f).mode & 0o777, 0o600, `${path.basename(f)} mode`);
      assert.ok(fs.existsSync(`${file}-wal`), 'the -wal file was checked too');
    } finally {
      await store.close();
    }
  } finally {
    process.umask(umask);
  }
});

test('an audit log there already keeps the mode its owner gave it (a group that reads it on purpose)', async () => {
  const dir = tempDir('s35-sec-audit-kept');
  made.push(dir);
  const file = path.join(dir, 'audit.db');
  await (await openAuditStore(file)).close();
  fs.chmodSync(file, 0o640);
  await (await openAuditStore(file)).close();
  assert.equal(fs.statSync(file).mode & 0o777, 0o640);
});

test("the comparison page shows a run's training curves as an image, never its SVG's markup", async () => {
  const dir = tempDir('s35-sec-compare');
  made.push(dir);
  const run = path.join(dir, 'run');
  fs.mkdirSync(path.join(run, 'report'), { recursive: true });
  const hostile =
    '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="200"><script>alert(1)</script>' +
    '<foreignObject><img xmlns="http://www.w3.org/1999/xhtml" src="x" onerror="alert(2)"/></foreignObject></svg>';
  fs.writeFileSync(path.join(run, 'report', 'training.svg'), hostile);
  const labels = [0, 0, 1, 1, 0, 1];
  const metrics = evaluate(labels, [0.1, 0.4, 0.8, 0.6, 0.3, 0.9], { bootstrap: { n: 10, seed: 1 } });
  await writeComparison([{ name: 'a', metrics, trainingSeconds: 1, runDir: run }], path.join(dir, 'out'));
  const html = fs.readFileSync(path.join(dir, 'out', 'comparison.html'), 'utf8');
  assert.doesNotMatch(html, /<script|onerror|<foreignObject/i);
  const img = /<img class="chart" src="data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)" alt="Training curves of a"/.exec(
    html,
  );
  assert.ok(img, 'the curves are there, as an image');
  assert.equal(Buffer.from(img[1], 'base64').toString('utf8'), hostile, 'drawn from the run folder’s file');
});

test("cxr predict's stderr names a film that failed with its control characters as escapes", () => {
  const dir = tempDir('s35-sec-failed');
  made.push(dir);
  // Not an image: a 'failed:' line on stderr, which goes to the terminal whatever stdout goes to.
  const name = '\u001b[2K\u001b[1Acut.jpeg';
  fs.writeFileSync(path.join(dir, name), fs.readFileSync(XRAY_JPEG).subarray(0, 200));
  const r = spawnSync(process.execPath, [MAIN, 'predict', '--model', modelDir, '--no-audit', dir], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.status, 1, r.stderr); // every film failed
  const failed = r.stderr.split('\n').find((l) => l.includes('failed: '));
  assert.ok(failed, r.stderr);
  assert.ok(!failed.includes('\u001b'), 'no escape character in the failed line');
  assert.ok(failed.includes('\\u001b[2K\\u001b[1Acut.jpeg'), failed);
});
