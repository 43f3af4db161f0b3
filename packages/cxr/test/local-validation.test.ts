// What a hospital validating the shipped model on its own labelled films meets (docs/site-adaptation.md, "How to
// check it"): its labels in a CSV beside the films, a small sample the model separates perfectly, and the
// report of an `cxr evaluate --out` folder handed on to the clinicians.
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatGroupTable, metricsByGroup } from '../src/eval/groups';
import { evaluate } from '../src/eval/metrics';
import { wilsonInterval } from '../src/eval/stats';
import { writeReport } from '../src/report/write_report';
import { needsData, REPO } from './shared-data';

const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const MODEL = path.join(REPO, 'models', 'default');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-local-validation-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

test('a perfectly separated sample says why its AUC interval has no width', () => {
  // 22 pneumonia films all scored above 23 normal ones: every bootstrap resample gives AUC 1.
  const labels = [...Array(23).fill(0), ...Array(22).fill(1)];
  const probs = labels.map((y, i) => (y ? 0.6 + i / 200 : 0.01 + i / 100));
  const m = evaluate(labels, probs, { threshold: 0.5 });
  assert.equal(m.auc, 1);
  assert.deepEqual(m.ci95.auc, [1, 1]);
  const note = (m.notes ?? []).find((n) => n.includes("AUC's 95% interval"));
  assert.ok(note, `no note on the collapsed interval: ${JSON.stringify(m.notes)}`);
  assert.match(note, /22 pneumonia and 23 normal films are perfectly separated in every bootstrap resample/);

  // Perfectly wrong: the interval collapses at 0, and the note says which way round.
  const reversed = evaluate(
    labels,
    probs.map((p) => 1 - p),
    { threshold: 0.5 },
  );
  assert.deepEqual(reversed.ci95.auc, [0, 0]);
  assert.ok(
    (reversed.notes ?? []).some((n) => n.includes('separated the wrong way round')),
    String(reversed.notes),
  );

  // Every film scored alike: the interval collapses at 0.5, and the note says they are tied, not ranked.
  const tied = evaluate(
    labels,
    labels.map(() => 0.5),
    { threshold: 0.5 },
  );
  assert.deepEqual(tied.ci95.auc, [0.5, 0.5]);
  assert.ok(
    (tied.notes ?? []).some((n) => n.includes('are tied (every pneumonia film scored the same as every normal one)')),
    String(tied.notes),
  );

  // One normal film above one pneumonia film: the resamples differ, the interval has width, and no note.
  const mixed = probs.slice();
  mixed[0] = 0.9;
  const m2 = evaluate(labels, mixed, { threshold: 0.5 });
  assert.ok(m2.ci95.auc && m2.ci95.auc[0] < m2.ci95.auc[1]);
  assert.ok(!(m2.notes ?? []).some((n) => n.includes("AUC's 95% interval")), JSON.stringify(m2.notes));
});

test('each group of films gives its rates with their 95% intervals, as the whole set does', () => {
  // One scanner's 5 films beside a ward's 20: the same 80 % specificity means much less on 5.
  const files = [...Array(5).fill('scannerA-'), ...Array(20).fill('wardB-')].map((p, i) => `${p}${i}.dcm`);
  const labels = files.map(() => 0);
  const probs = files.map((_, i) => (i % 5 === 0 ? 0.9 : 0.1));
  const rows = metricsByGroup(files, labels, probs, 0.5, /^(scannerA|wardB)-/);
  const [a, b] = rows;
  assert.equal(a.specificity, 0.8);
  assert.equal(b.specificity, 0.8);
  assert.deepEqual(a.ci95.specificity, wilsonInterval(4, 5));
  assert.deepEqual(b.ci95.specificity, wilsonInterval(16, 20));
  assert.equal(a.ci95.sensitivity, null);
  const lo = (a.ci95.specificity as [number, number])[0];
  assert.ok(lo < (b.ci95.specificity as [number, number])[0], 'the smaller group has the wider interval');
  const table = formatGroupTable(rows);
  assert.match(table, /specificity 95% CI +sensitivity 95% CI\n/);
  assert.match(table, /\nscannerA +5 +80\.0% \(4\/5\) +— +\d\.\d+ +38%–96% +—\n/);
  assert.match(table, /\nwardB +20 +80\.0% \(16\/20\) +— +\d\.\d+ +58%–92% +—$/);
});

test("an evaluation folder's report names the model it evaluated and the films each split leaves out", async () => {
  const dir = path.join(root, 'eval-out');
  fs.mkdirSync(path.join(dir, 'metrics'), { recursive: true });
  const model = { name: 'site-model', version: '20261204T194945', sha256: 'ab'.repeat(32) };
  const labels = [0, 0, 0, 1, 1, 1];
  const probs = [0.1, 0.2, 0.7, 0.4, 0.8, 0.9];
  const all = evaluate(labels, probs, { threshold: 0.5 });
  const assessed = evaluate(labels.slice(1), probs.slice(1), { threshold: 0.5 });
  // As `cxr evaluate --json` lists them: films it could not read are in no number, and the report must say so.
  const unreadable = {
    count: 2,
    files: [
      { file: 'NORMAL/truncated.jpeg', error: 'truncated JPEG: premature end of JPEG image' },
      { file: 'PNEUMONIA/notes.txt', error: 'not a JPEG, PNG or DICOM image' },
    ],
  };
  fs.writeFileSync(path.join(dir, 'metrics', 'all.json'), JSON.stringify({ ...all, model, unreadable }));
  fs.writeFileSync(path.join(dir, 'metrics', 'all-assessed.json'), JSON.stringify({ ...assessed, model }));
  const { files } = await writeReport(dir);
  const page = fs.readFileSync(files[files.length - 1], 'utf8');
  assert.ok(!page.includes('No cxr.json in this run directory'), 'the model section says nothing of the model');
  assert.ok(page.includes(model.sha256), 'the report does not give the sha256 the evaluation recorded');
  assert.ok(page.includes('site-model') && page.includes(model.version));
  assert.match(page, /Only the films the prediction pipeline would assess/);
  // assessedOnly keeps only 'assessed': the films refused with an input error are left out of it too.
  assert.match(page, /or refuse with an input error, are left out here/);
  assert.match(page, /2 files in the evaluated folders could not be read and are in none of these numbers/);
  assert.ok(page.includes('NORMAL/truncated.jpeg (truncated JPEG: premature end of JPEG image)'));
});

test('a labels CSV instead of class folders is named, with the layout evaluate reads', {
  skip: needsData(MODEL),
}, () => {
  const data = path.join(root, 'hospital');
  fs.mkdirSync(path.join(data, 'films'), { recursive: true });
  fs.writeFileSync(path.join(data, 'labels.csv'), 'file,label\nfilms/a.dcm,NORMAL\n');
  const r = spawnSync(process.execPath, [MAIN, 'evaluate', '--model', MODEL, '--data', data, '--json'], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, CXR_CACHE: path.join(root, 'cache') },
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /no chest_xray layout found/);
  assert.ok(r.stderr.includes(`${path.join(data, 'labels.csv')} is not read`), r.stderr);
  assert.ok(r.stderr.includes(path.join(data, 'NORMAL')) && r.stderr.includes(path.join(data, 'PNEUMONIA')));
  assert.equal(r.stdout, '');
});

test('a class folder that cannot be read beside a CSV is said as it is, not as a labels-file layout', {
  skip: needsData(MODEL),
}, () => {
  // The layout is the one evaluate reads; NORMAL/ is a link to a folder that is gone: no hint about labels.csv.
  const data = path.join(root, 'hospital-gone');
  fs.mkdirSync(path.join(data, 'PNEUMONIA'), { recursive: true });
  fs.symlinkSync(path.join(root, 'no-such-folder'), path.join(data, 'NORMAL'));
  fs.writeFileSync(path.join(data, 'labels.csv'), 'file,label\nNORMAL/a.dcm,NORMAL\n');
  const r = spawnSync(process.execPath, [MAIN, 'evaluate', '--model', MODEL, '--data', data, '--json'], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, CXR_CACHE: path.join(root, 'cache') },
  });
  assert.notEqual(r.status, 0);
  assert.ok(r.stderr.includes(`${path.join(data, 'NORMAL')}: cannot read folder (ENOENT)`), r.stderr);
  assert.ok(!r.stderr.includes('labels.csv'), r.stderr);
});
