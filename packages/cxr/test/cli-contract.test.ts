// The command line's promises outside `cxr predict`: cxr history --since takes a date, schema errors
// read as sentences, evaluate --out keeps a run's own validation metrics, train and calibrate --json.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { type AuditRecord, openAuditStore } from '../src/serve/audit';
import { makeSeededModel, tempDir } from './ood-fixtures';
import { CHEST_XRAY, needsData } from './shared-data';
import { auditRecord } from './serve-fixtures';
import * as calibrate from '../src/cli/calibrate';
import * as ensemble from '../src/cli/ensemble';
import * as evaluate from '../src/cli/evaluate';
import * as history from '../src/cli/history';
import * as train from '../src/cli/train';
import { runLikeMain } from './in-process-cli';

const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const COMMANDS = [calibrate, ensemble, evaluate, history, train].map((c) => c.register);
let root = '';
const env = () => ({
  CXR_DB: path.join(root, 'default.db'),
  CXR_CACHE: process.env.CXR_CACHE ?? path.join(os.tmpdir(), 'cxr-test-cache'),
});

/** `cxr ARGS` as a process of its own: main.js's error handler is the subject. */
function cxrProcess(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, ...env() },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `cxr ARGS` in this process (a child each costs an engine start), with the environment a child had. */
async function cxr(...args: string[]) {
  const r = await runLikeMain(COMMANDS, args, env());
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const record = (id: number, createdAt: string) =>
  auditRecord(id, { createdAt, probability: 0.2, logit: -1.4, label: 'NORMAL' }, '00000000-0000-4000-8000-');

before(() => {
  root = tempDir('cli-contract');
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

test('cxr history --since takes a date (its first moment, UTC) or a time; a bad one reads as a sentence', async () => {
  const db = path.join(root, 'history.db');
  const log = await openAuditStore(db);
  await log.insert(record(1, '2026-11-30T23:59:59.000Z'), null);
  await log.insert(record(2, '2026-12-01T00:00:00.000Z'), null);
  await log.insert(record(3, '2026-12-02T08:00:00.000Z'), null);
  await log.close();
  const ids = async (since: string) => {
    const r = await cxr('history', '--db', db, '--json', '--since', since);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as AuditRecord).id.slice(-1));
  };
  assert.deepEqual(await ids('2026-12-01'), ['3', '2']);
  assert.deepEqual(await ids('2026-12-02'), ['3']);
  assert.deepEqual(await ids('2026-12-01T12:00:00Z'), ['3']);
  const bad = await cxr('history', '--db', db, '--since', 'yesterday');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /since/);
  assert.doesNotMatch(bad.stderr, /"code"|\[\s*\{/);
});

// A child process: main.js's error handler, which prints a schema's complaint, is the subject.
test("a schema error (here a run's recipe.json) is printed readably, not as the issues' JSON", () => {
  const run = path.join(root, 'bad-run');
  fs.mkdirSync(run, { recursive: true });
  fs.writeFileSync(path.join(run, 'recipe.json'), JSON.stringify({ epochs: 'many' }));
  const r = cxrProcess('train', '--data', path.join(root, 'no-data'), '--out', run, '--resume');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /✖ .*\n\s*→ at epochs/);
  assert.doesNotMatch(r.stderr, /"code"/);
});

test('cxr evaluate --out a run folder never writes over its validation metrics', async () => {
  const model = await makeSeededModel(path.join(root, 'model'), { inputSize: 32, widths: [4, 8, 8, 8] });
  const own = '{"auc": 0.99, "note": "the run\'s own validation metrics"}\n';
  fs.mkdirSync(path.join(model, 'metrics'), { recursive: true });
  fs.writeFileSync(path.join(model, 'metrics', 'val.json'), own);
  // A labelled folder that happens to be called val (Kaggle ships one).
  const data = path.join(root, 'kaggle', 'val');
  const px = (v: number) =>
    sharp(
      Uint8Array.from({ length: 64 * 64 }, (_, i) => (i * v) % 256),
      { raw: { width: 64, height: 64, channels: 1 } },
    )
      .jpeg()
      .toBuffer();
  for (const [cls, names] of [
    ['NORMAL', ['IM-0001-0001', 'IM-0002-0001']],
    ['PNEUMONIA', ['person1_virus_1', 'person2_bacteria_2']],
  ] as const) {
    fs.mkdirSync(path.join(data, cls), { recursive: true });
    for (const [k, n] of names.entries())
      fs.writeFileSync(path.join(data, cls, `${n}.jpeg`), await px(k + (cls === 'NORMAL' ? 3 : 7)));
  }
  const r = await cxr('evaluate', '--model', model, '--data', data, '--out', model, '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(path.join(model, 'metrics', 'val.json'), 'utf8'), own);
  const written = JSON.parse(fs.readFileSync(path.join(model, 'metrics', 'eval-val.json'), 'utf8')) as { n: number };
  assert.equal(written.n, (JSON.parse(r.stdout) as { n: number }).n);
  assert.ok(fs.existsSync(path.join(model, 'predictions', 'eval-val.json')));
  assert.match(r.stderr, /wrote .*metrics\/eval-val\.json/);

  // Per file-name group, in the table a person reads; a pattern that is not one is refused.
  const grouped = await cxr('evaluate', '--model', model, '--data', data, '--groups', '^(IM|person)');
  assert.equal(grouped.code, 0, grouped.stderr);
  assert.match(grouped.stdout, /per group \(at the same threshold\):\ngroup +films +specificity/);
  assert.match(grouped.stdout, /\nIM +2 +\d+\.\d% \(\d\/2\) +— /);
  assert.match(grouped.stdout, /\nperson +2 +— +\d+\.\d% \(\d\/2\)/);
  const byPeriod = await cxr('evaluate', '--model', model, '--data', data, '--period-groups');
  assert.equal(byPeriod.code, 0, byPeriod.stderr);
  assert.match(byPeriod.stdout, /\nIM dense +2 +\d+\.\d% \(\d\/2\) +— /);
  const both = await cxr('evaluate', '--model', model, '--data', data, '--groups', 'IM', '--period-groups');
  assert.equal(both.code, 1);
  assert.match(both.stderr, /--groups and --period-groups: choose one/);
  const badPattern = await cxr('evaluate', '--model', model, '--data', data, '--groups', '([');
  assert.equal(badPattern.code, 1);
  assert.match(badPattern.stderr, /--groups: '\(\[' is not a regular expression/);

  const unwritable = await cxr(
    'evaluate',
    '--model',
    model,
    '--data',
    data,
    '--out',
    path.join(model, 'cxr.json', 'x'),
  );
  assert.equal(unwritable.code, 1);
  assert.match(unwritable.stderr, /--out .*: cannot write there/);
});

/** `cxr train` of the small reference network (32 px, one epoch, 20 films a class) into `out`, then `more`. */
const trainTiny = (out: string, ...more: string[]) =>
  cxr(
    'train',
    '--data',
    CHEST_XRAY,
    '--out',
    out,
    '--model',
    'reference',
    '--input-size',
    '32',
    '--epochs',
    '1',
    '--limit-per-class',
    '20',
    '--batch-size',
    '16',
    '--no-report',
    ...more,
  );

test('cxr train --json ends with one JSON summary line; calibrate and ensemble --json print one object', {
  skip: needsData(),
}, async () => {
  const out = path.join(root, 'tiny-run');
  const t = await trainTiny(out, '--json');
  assert.equal(t.code, 0, t.stderr);
  const lines = t.stdout.trim().split('\n');
  const summary = JSON.parse(lines[lines.length - 1]) as {
    out: string;
    epochs: number;
    operatingPoints: Record<string, { threshold: number }>;
  };
  assert.equal(summary.out, out);
  assert.equal(summary.epochs, 1);
  assert.ok(summary.operatingPoints.balanced.threshold > 0);
  const c = await cxr('calibrate', '--model', out, '--data', CHEST_XRAY, '--json');
  assert.equal(c.code, 0, c.stderr);
  const cal = JSON.parse(c.stdout) as { temperature: number; metrics: { n: number } };
  assert.ok(cal.temperature > 0);
  assert.ok(cal.metrics.n > 0);
  const p = await cxr('calibrate', '--model', out, '--data', CHEST_XRAY, '--scaling', 'platt', '--json');
  assert.equal(p.code, 0, p.stderr);
  const platt = JSON.parse(p.stdout) as { temperature: number; logitBias: number; scaling: string };
  assert.equal(platt.scaling, 'platt');
  const written = JSON.parse(fs.readFileSync(path.join(out, 'cxr.json'), 'utf8'));
  assert.equal(written.logitBias, platt.logitBias);
  assert.equal(written.temperature, platt.temperature);
  assert.equal(written.calibration.scaling, 'platt');
  // A one-epoch model on six validation films may rank them backwards: then the fit keeps the temperature alone.
  assert.match(
    fs.readFileSync(path.join(out, 'MODEL_CARD.md'), 'utf8'),
    written.logitBias === 0 ? /the Platt fit asked for fell back to it/ : /Platt scaling \(sigmoid\(logit \/ /,
  );

  // --split validation is the model's own split, defined only in the folder it trained on: another training
  // root (here a few of the same films) is refused, not evaluated as if it were that split.
  const own = await cxr('evaluate', '--model', out, '--data', CHEST_XRAY, '--split', 'validation', '--json');
  assert.equal(own.code, 0, own.stderr);
  const other = path.join(root, 'other-root');
  for (const cls of ['NORMAL', 'PNEUMONIA']) {
    const from = path.join(CHEST_XRAY, 'train', cls);
    fs.mkdirSync(path.join(other, 'train', cls), { recursive: true });
    for (const f of fs.readdirSync(from).sort().slice(0, 6))
      fs.copyFileSync(path.join(from, f), path.join(other, 'train', cls, f));
  }
  const foreign = await cxr('evaluate', '--model', out, '--data', other, '--split', 'validation');
  assert.equal(foreign.code, 1);
  assert.match(foreign.stderr, /other-root is not the data .* was trained on \(its split fingerprint differs\)/);
  // Class folders with nothing in them: said so, not "has splits : choose one".
  const empty = path.join(root, 'empty-classes');
  for (const cls of ['NORMAL', 'PNEUMONIA']) fs.mkdirSync(path.join(empty, cls), { recursive: true });
  const none = await cxr('evaluate', '--model', out, '--data', empty);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /empty-classes: no images in NORMAL\/ and PNEUMONIA\//);

  // New test-time views come with a new calibration, both written to cxr.json and the card.
  const v = await cxr(
    'calibrate',
    '--model',
    out,
    '--data',
    CHEST_XRAY,
    '--tta',
    'identity',
    'gamma-up',
    'gamma-down',
    '--json',
  );
  assert.equal(v.code, 0, v.stderr);
  assert.deepEqual((JSON.parse(v.stdout) as { tta: string[] }).tta, ['identity', 'gamma-up', 'gamma-down']);
  assert.match(v.stderr, /test-time views identity, gamma-up, gamma-down/);
  const withViews = JSON.parse(fs.readFileSync(path.join(out, 'cxr.json'), 'utf8'));
  assert.deepEqual(withViews.tta, ['identity', 'gamma-up', 'gamma-down']);
  assert.notEqual(withViews.temperature, written.temperature);
  assert.match(
    fs.readFileSync(path.join(out, 'MODEL_CARD.md'), 'utf8'),
    /test-time augmentation: identity, gamma-up, gamma-down\./,
  );
  const misspelt = await cxr('calibrate', '--model', out, '--data', CHEST_XRAY, '--tta', 'gamma_up');
  assert.equal(misspelt.code, 1);
  assert.match(misspelt.stderr, /'gamma_up' is invalid\. Allowed choices are identity, zoom-in/);

  // A second member on the same validation split (same split seed), then the ensemble of both.
  const second = path.join(root, 'tiny-run-2');
  const t2 = await trainTiny(second, '--seed', '2', '--split-seed', '42');
  assert.equal(t2.code, 0, t2.stderr);
  const ensOut = path.join(root, 'tiny-ensemble');
  const e = await cxr('ensemble', '--members', out, second, '--out', ensOut, '--json');
  assert.equal(e.code, 0, e.stderr);
  const ens = JSON.parse(e.stdout) as {
    out: string;
    name: string;
    operatingPoints: Record<string, { threshold: number }>;
  };
  assert.equal(ens.out, ensOut);
  assert.ok(fs.existsSync(path.join(ensOut, 'cxr.json')));
  // The ensemble's validation split is its members' (trained on 20 films per class), found again from cxr.json.
  const ensVal = await cxr('evaluate', '--model', ensOut, '--data', CHEST_XRAY, '--split', 'validation', '--json');
  assert.equal(ensVal.code, 0, ensVal.stderr);
  assert.equal((JSON.parse(ensVal.stdout) as { n: number }).n, cal.metrics.n);
  assert.ok(ens.operatingPoints.balanced.threshold > 0);
});
