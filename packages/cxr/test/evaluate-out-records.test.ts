// What `cxr evaluate` records of an evaluation, so that a hospital's local validation can be told apart and
// read back: the films the prediction pipeline would set aside are listed with the status and reasons
// `cxr predict` gives (--json, the text, the --out metrics file, the folder's report); the metrics file records
// which films (`source`) and which operating point it is of; a second sample evaluated into the same --out is
// refused rather than written over the first (--overwrite replaces it); `cxr calibrate`'s restating keeps it all.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { evaluate } from '../src/eval';
import { type CalibrationState, restateEvaluations } from '../src/train/restate_evaluations';
import { CHEST_XRAY, DICOM_SAMPLES, needsData, REPO } from './shared-data';
import * as evaluateCommand from '../src/cli/evaluate';
import * as reportCommand from '../src/cli/report';
import { runLikeMain } from './in-process-cli';

const COMMANDS = [evaluateCommand, reportCommand].map((c) => c.register);
const MODEL = path.join(REPO, 'models', 'default');
const ADULT_DICOM = path.join(DICOM_SAMPLES, 'siim_1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm');
const skip = needsData(CHEST_XRAY, ADULT_DICOM, path.join(MODEL, 'cxr.json'));
let root = '';
/** Two hospital samples: A with six films the pipeline would not assess, B of real films only. */
let siteA = '';
let siteB = '';
const BLANK = 6;

/** `cxr ARGS` in this process (its words and files are the subject; a child each would cost an engine start). */
async function cxr(...args: string[]) {
  const r = await runLikeMain(COMMANDS, args, { CXR_CACHE: path.join(root, 'cache') });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function linkFilms(dir: string, from: number, count: number): void {
  for (const cls of ['NORMAL', 'PNEUMONIA']) {
    const src = path.join(CHEST_XRAY, 'val', cls);
    fs.mkdirSync(path.join(dir, cls), { recursive: true });
    for (const f of fs
      .readdirSync(src)
      .sort()
      .slice(from, from + count))
      fs.symlinkSync(path.join(src, f), path.join(dir, cls, f));
  }
}

before(async () => {
  if (skip) return;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-evaluate-out-records-'));
  siteA = path.join(root, 'site-a');
  siteB = path.join(root, 'site-b');
  linkFilms(siteA, 0, 2);
  linkFilms(siteB, 2, 2);
  // Blank films (each its own grey, so that no two are the same file): read and scored, but "cannot assess".
  for (let i = 0; i < BLANK; i++) {
    const grey = { r: 40 + 30 * i, g: 40 + 30 * i, b: 40 + 30 * i };
    await sharp({ create: { width: 256, height: 256, channels: 3, background: grey } })
      .png()
      .toFile(path.join(siteA, 'NORMAL', `blank-${i}.png`));
  }
  // An adult's chest film (NIH ChestX-ray14): outside the intended population, by its header's age.
  fs.symlinkSync(ADULT_DICOM, path.join(siteA, 'PNEUMONIA', 'adult.dcm'));
});

after(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

type SetAside = { file: string; status: string; reasons: string[] };

test('evaluate lists the films it would not assess with their reasons: --json all, the text a few', {
  skip,
}, async () => {
  const r = await cxr('evaluate', '--model', MODEL, '--data', siteA, '--json');
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(r.stdout);
  const v = m.verdicts;
  assert.equal(m.setAside.count, v.cannotAssess + v.outsidePopulation + v.refused);
  const files = m.setAside.files as SetAside[];
  assert.equal(files.length, m.setAside.count);
  const of = (name: string) => files.find((f) => path.basename(f.file) === name);
  for (let i = 0; i < BLANK; i++) {
    const blank = of(`blank-${i}.png`);
    assert.equal(blank?.status, 'cannot-assess', JSON.stringify(files));
    assert.ok(blank.reasons.length > 0 && blank.reasons.every((x) => x.length > 0), JSON.stringify(blank));
  }
  const adult = of('adult.dcm');
  assert.equal(adult?.status, 'outside-population', JSON.stringify(files));
  assert.match(adult.reasons.join(' '), /age/i);

  const text = await cxr('evaluate', '--model', MODEL, '--data', siteA);
  assert.equal(text.code, 0, text.stderr);
  const count = m.setAside.count as number;
  assert.match(text.stdout, new RegExp(`^the ${count} films it would not assess, and why:$`, 'm'));
  const listed = text.stdout
    .split('\n')
    .filter((l) => /^ {2}\S.* \[(cannot assess|outside the intended population)\]: /.test(l));
  assert.equal(listed.length, 5, text.stdout);
  // The one film of another status is named, not hidden behind the run of blank ones listed before it.
  assert.match(text.stdout, /^ {2}\S*adult\.dcm \[outside the intended population\]: .*age/im);
  assert.match(text.stdout, new RegExp(`^ {2}\\.\\.\\. and ${count - 5} more \\(--json lists them all`, 'm'));
});

test('evaluate --out records source, operating point and set-aside films; other films are refused', {
  skip,
}, async () => {
  const out = path.join(root, 'study');
  const a = await cxr('evaluate', '--model', MODEL, '--data', siteA, '--out', out, '--operating-point', 'screening');
  assert.equal(a.code, 0, a.stderr);
  const metricsFile = path.join(out, 'metrics', 'all.json');
  const first = JSON.parse(fs.readFileSync(metricsFile, 'utf8'));
  assert.equal(first.source, `${fs.realpathSync(siteA)} (all)`);
  assert.equal(first.operatingPoint, 'screening');
  assert.ok(first.setAside.count >= BLANK + 1);
  // Paths relative to --data, as the predictions file names films.
  assert.ok((first.setAside.files as SetAside[]).some((f) => f.file === 'PNEUMONIA/adult.dcm'));
  const assessed = JSON.parse(fs.readFileSync(path.join(out, 'metrics', 'all-assessed.json'), 'utf8'));
  assert.equal(assessed.source, first.source);

  const report = await cxr('report', out);
  assert.equal(report.code, 0, report.stderr);
  const html = fs.readFileSync(path.join(out, 'report', 'index.html'), 'utf8');
  assert.ok(html.includes(fs.realpathSync(siteA)), 'the report names the films');
  assert.match(html, /at operating point screening/);
  assert.match(html, /PNEUMONIA\/adult\.dcm \[outside the intended population\]: [^;]*age/i);

  // The second hospital's sample into the same folder: refused, naming the first, and nothing is replaced.
  const b = await cxr('evaluate', '--model', MODEL, '--data', siteB, '--out', out);
  assert.notEqual(b.code, 0, 'a second sample must not silently replace the first');
  assert.match(b.stderr, /already holds an evaluation of other films/);
  assert.ok(b.stderr.includes(`${fs.realpathSync(siteA)} (all) at operating point screening`), b.stderr);
  assert.match(b.stderr, /another --out folder .*--overwrite/);
  assert.equal(JSON.parse(fs.readFileSync(metricsFile, 'utf8')).source, first.source);

  // --overwrite replaces it, saying so; the same films again are a rerun and need no option.
  const c = await cxr('evaluate', '--model', MODEL, '--data', siteB, '--out', out, '--overwrite');
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stderr, /--overwrite: replacing .*site-a \(all\)/);
  const second = JSON.parse(fs.readFileSync(metricsFile, 'utf8'));
  assert.equal(second.source, `${fs.realpathSync(siteB)} (all)`);
  const again = await cxr('evaluate', '--model', MODEL, '--data', path.relative(process.cwd(), siteB), '--out', out);
  assert.equal(again.code, 0, again.stderr);
});

function state(points: Record<string, number>): CalibrationState {
  return {
    temperature: 1,
    logitBias: 0,
    tta: ['identity'],
    operatingPoints: Object.fromEntries(Object.entries(points).map(([n, t]) => [n, { threshold: t }])),
    defaultOperatingPoint: 'balanced',
  };
}

test('calibrate restating keeps source and set-aside films, and the recorded point where points part', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-restate-records-'));
  try {
    const labels = [0, 0, 1, 1];
    const probs = [0.1, 0.3, 0.7, 0.9];
    fs.mkdirSync(path.join(dir, 'predictions'));
    fs.mkdirSync(path.join(dir, 'metrics'));
    fs.writeFileSync(path.join(dir, 'predictions', 'all.json'), JSON.stringify({ labels, probs }));
    const setAside = { count: 1, files: [{ file: 'NORMAL/a.png', status: 'cannot-assess', reasons: ['blank'] }] };
    const stored = { ...evaluate(labels, probs, { threshold: 0.5 }), source: '/films/a (all)', setAside };
    fs.writeFileSync(path.join(dir, 'metrics', 'all.json'), JSON.stringify({ ...stored, operatingPoint: 'screening' }));
    const lines: string[] = [];
    // screening and balanced shared 0.5; the new calibration parts them: the evaluation was asked at screening.
    const before = state({ screening: 0.5, balanced: 0.5 });
    const r = restateEvaluations(dir, before, state({ screening: 0.2, balanced: 0.6 }), (l) => lines.push(l));
    assert.deepEqual(r.restated, ['all']);
    const now = JSON.parse(fs.readFileSync(path.join(dir, 'metrics', 'all.json'), 'utf8'));
    assert.equal(now.threshold, 0.2, 'restated at screening, the point it records, not the default');
    assert.equal(now.operatingPoint, 'screening');
    assert.equal(now.source, '/films/a (all)');
    assert.deepEqual(now.setAside, setAside);
    assert.match(lines.join('\n'), /restated at screening, the one it was evaluated at/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
