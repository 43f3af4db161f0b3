// `cxr evaluate` on class folders holding files it cannot read (a truncated JPEG, an empty file, a text
// file named .jpg, a PNG header claiming a huge size): the JSON lists them under `unreadable`, with what
// the prediction pipeline's reader says of each (the reader evaluate stands for, which reads DICOM too),
// and the text says how many were left out. They are not `verdicts.refused` (films it read and scored).
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { CHEST_XRAY, needsData, REPO } from './shared-data';
import * as evaluateCommand from '../src/cli/evaluate';
import * as reportCommand from '../src/cli/report';
import { runLikeMain } from './in-process-cli';

const COMMANDS = [evaluateCommand, reportCommand].map((c) => c.register);
const MODEL = path.join(REPO, 'models', 'default');
const skip = needsData(CHEST_XRAY, path.join(MODEL, 'cxr.json'));
let root = '';
let data = '';

/** `cxr ARGS` in this process (its words and files are the subject; a child each would cost an engine start). */
async function cxr(...args: string[]) {
  const r = await runLikeMain(COMMANDS, args, { CXR_CACHE: path.join(root, 'cache') });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  if (skip) return;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-evaluate-unreadable-'));
  data = path.join(root, 'site');
  for (const cls of ['NORMAL', 'PNEUMONIA']) {
    const from = path.join(CHEST_XRAY, 'val', cls);
    fs.mkdirSync(path.join(data, cls), { recursive: true });
    for (const f of fs.readdirSync(from).sort().slice(0, 3))
      fs.symlinkSync(path.join(from, f), path.join(data, cls, f));
  }
  const film = fs.readFileSync(
    path.join(CHEST_XRAY, 'val', 'NORMAL', fs.readdirSync(path.join(CHEST_XRAY, 'val', 'NORMAL'))[0]),
  );
  fs.writeFileSync(path.join(data, 'NORMAL', 'truncated.jpeg'), film.subarray(0, film.length >> 1));
  fs.writeFileSync(path.join(data, 'NORMAL', 'empty.jpeg'), '');
  fs.writeFileSync(path.join(data, 'PNEUMONIA', 'notes.jpg'), 'not an image\n');
  const png = Buffer.from(
    await sharp(Buffer.alloc(4), { raw: { width: 2, height: 2, channels: 1 } })
      .png()
      .toBuffer(),
  );
  png.writeUInt32BE(100_000, 16); // IHDR width and height
  png.writeUInt32BE(100_000, 20);
  fs.writeFileSync(path.join(data, 'PNEUMONIA', 'huge.png'), png);
});

after(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

const EXPECTED: Record<string, RegExp> = {
  'NORMAL/empty.jpeg': /^empty file \(0 bytes\)$/,
  'NORMAL/truncated.jpeg': /^truncated JPEG: premature end of JPEG image/,
  'PNEUMONIA/huge.png': /^image is 100000×100000 \(10000 megapixels\), over the 50-megapixel limit$/,
  'PNEUMONIA/notes.jpg': /^not a JPEG, PNG or DICOM image$/,
};

test('evaluate --json lists the files it could not read, and why; the text says how many', { skip }, async () => {
  const r = await cxr('evaluate', '--model', MODEL, '--data', data, '--json');
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(r.stdout);
  assert.equal(m.n, 6);
  assert.equal(m.verdicts.refused, 0);
  assert.equal(m.unreadable.count, 4);
  const files = m.unreadable.files as Array<{ file: string; error: string }>;
  assert.deepEqual(files.map((f) => path.relative(data, f.file)).sort(), Object.keys(EXPECTED));
  for (const f of files) assert.match(f.error, EXPECTED[path.relative(data, f.file)], f.error);
  // The same reasons on stderr, in the reader's words (never the failOn setting's).
  assert.match(r.stderr, /notes\.jpg: not a JPEG, PNG or DICOM image/);
  assert.doesNotMatch(r.stderr, /failOn|not a JPEG or PNG image/);

  const text = await cxr('evaluate', '--model', MODEL, '--data', data);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /would assess 6 of 6 films/);
  assert.match(text.stdout, /^4 files could not be read \(left out of every number above\):$/m);
  assert.match(text.stdout, /^ {2}.*truncated\.jpeg: truncated JPEG: premature end of JPEG image/m);
});

test('evaluate --out records them in the metrics file, and the folder report lists them', { skip }, async () => {
  const out = path.join(root, 'study');
  const r = await cxr('evaluate', '--model', MODEL, '--data', data, '--out', out);
  assert.equal(r.code, 0, r.stderr);
  // The files' paths as the predictions file gives them: relative to --data.
  const stored = JSON.parse(fs.readFileSync(path.join(out, 'metrics', 'all.json'), 'utf8'));
  assert.equal(stored.unreadable.count, 4);
  assert.deepEqual(
    (stored.unreadable.files as Array<{ file: string }>).map((f) => f.file).sort(),
    Object.keys(EXPECTED),
  );
  const report = await cxr('report', out);
  assert.equal(report.code, 0, report.stderr);
  const html = fs.readFileSync(path.join(out, 'report', 'index.html'), 'utf8');
  assert.match(html, /truncated\.jpeg/);
});
