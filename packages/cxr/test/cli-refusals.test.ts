// Output folders a command cannot make fail at once, with a message naming them (Node's recursive mkdir
// never returns under /proc, so an --out there used to hang), and `cxr report` refuses a folder that holds
// no run instead of writing an empty page into it.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeDirs } from '../src/make_dirs';
import { ensureWritableFile } from '../src/cli/writable';
import { openSqliteStore } from '../src/serve/audit_sqlite';
import * as adapt from '../src/cli/adapt';
import * as ensemble from '../src/cli/ensemble';
import * as evaluate from '../src/cli/evaluate';
import * as experiments from '../src/cli/experiments';
import * as gan from '../src/cli/gan';
import * as ood from '../src/cli/ood';
import * as report from '../src/cli/report';
import * as robustness from '../src/cli/robustness';
import * as train from '../src/cli/train';
import { runLikeMain } from './in-process-cli';

const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const noProc = fs.existsSync('/proc/self') ? false : 'needs a /proc file system';
const COMMANDS = [adapt, ensemble, evaluate, experiments, gan, ood, report, robustness, train].map((c) => c.register);

/** `cxr ARGS` as a process of its own: its exit status, and what main.js's error handler writes. */
function cxrProcess(...args: string[]) {
  // A command that hangs is killed after the timeout: its status is then null, not 1.
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `cxr ARGS` in this process (a child each costs an engine start); cxrProcess checks main.js's part once. */
async function cxr(...args: string[]) {
  const r = await runLikeMain(COMMANDS, args);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('every command that writes an output folder fails at once where none can be made', { skip: noProc }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-refusals-'));
  const bad = '/proc/cxr-no-such-folder/out';
  const commands = [
    ['evaluate', '--data', tmp, '--out', bad],
    ['train', '--data', tmp, '--out', bad],
    ['train', '--data', tmp, '--out', bad, '--resume'],
    ['robustness', '--data', tmp, '--out', bad],
    ['adapt', '--images', tmp, '--out', bad],
    ['ensemble', '--members', tmp, tmp, '--out', bad],
    ['gan', 'train', '--data', tmp, '--out', bad],
    ['gan', 'sample', '--gan-model', tmp, '--n', '1', '--class', 'NORMAL', '--out', bad],
    ['experiments', 'seed', '--data', tmp, '--out', bad],
    ['experiments', 'adapt', '--data', tmp, '--out', `${bad}/table.md`],
    ['experiments', 'heatmap', '--data', tmp, '--out', `${bad}/table.md`],
    ['ood', 'fit-layout', '--data', tmp, '--out', `${bad}/layout.ts`],
  ];
  // The first through main.js itself: the refusal is its exit status 1 and its message on stderr.
  const viaMain = cxrProcess(...commands[0]);
  assert.equal(viaMain.code, 1, viaMain.stderr);
  assert.match(
    viaMain.stderr,
    /^cxr: --out \/proc\/cxr-no-such-folder\/out: cannot write there \(no folder can be made/,
  );
  for (const args of commands) {
    const started = Date.now();
    const r = await cxr(...args);
    assert.equal(r.code, 1, `cxr ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /--out \/proc\/cxr-no-such-folder\/out: cannot write there \(no folder can be made/);
    assert.ok(Date.now() - started < 30_000, `cxr ${args.join(' ')} took ${Date.now() - started} ms`);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('a one-file --out that is a folder is refused before the run', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-refusals-'));
  for (const args of [
    ['experiments', 'adapt', '--data', tmp, '--out', tmp],
    ['experiments', 'heatmap', '--data', tmp, '--out', tmp],
    ['ood', 'fit-layout', '--data', tmp, '--out', tmp],
  ]) {
    const r = await cxr(...args);
    assert.equal(r.code, 1, `cxr ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /--out .*: is a folder; give a file name/, `cxr ${args.join(' ')}`);
  }
  // A folder that does not exist yet is made and kept for the file the command writes at the end.
  ensureWritableFile(path.join(tmp, 'new', 'table.md'), '--out');
  assert.ok(fs.statSync(path.join(tmp, 'new')).isDirectory());
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('makeDirs makes missing parents, returns what it made, and throws where the file system refuses', {
  skip: noProc,
}, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-make-dirs-'));
  assert.deepEqual(makeDirs(path.join(tmp, 'a', 'b')), [path.join(tmp, 'a'), path.join(tmp, 'a', 'b')]);
  assert.deepEqual(makeDirs(path.join(tmp, 'a', 'b')), []);
  fs.writeFileSync(path.join(tmp, 'file'), '');
  assert.throws(() => makeDirs(path.join(tmp, 'file', 'c')), { code: 'ENOTDIR' });
  assert.throws(() => makeDirs(path.join(tmp, 'file')), { code: 'ENOTDIR' }, 'a file where the folder should be');
  assert.throws(() => makeDirs('/proc/cxr-no-such-folder/x'), { code: 'ENOENT' });
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('an SQLite audit log where no folder can be made fails at once, naming the folder', { skip: noProc }, () => {
  // serve --db and worker --db open it this way; recursive mkdir used to hang here before the model loaded.
  assert.throws(() => openSqliteStore('/proc/cxr-no-such-folder/audit.db'), {
    message: 'audit log /proc/cxr-no-such-folder/audit.db: cannot write it (no folder can be made there)',
  });
});

test('an SQLite audit log SQLite cannot open is named, with why', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-refusals-'));
  // SQLite's own message is "unable to open database file", naming neither.
  assert.throws(() => openSqliteStore(tmp), { message: `audit log ${tmp}: cannot open it (it is a folder)` });
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('a train refused for its --out leaves no folder behind', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-refusals-'));
  fs.writeFileSync(path.join(tmp, 'file'), '');
  const r = await cxr('train', '--data', tmp, '--out', path.join(tmp, 'file', 'run'));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--out .*file\/run: cannot write there \(a file is in the way\)/);
  // The write check of a command that must leave nothing behind removes the folders it made to probe.
  const fine = await cxr('train', '--data', path.join(tmp, 'nope'), '--out', path.join(tmp, 'new', 'run'));
  assert.equal(fine.code, 1);
  assert.match(fine.stderr, /--data .*nope: no such folder/);
  assert.deepEqual(fs.readdirSync(tmp), ['file']);
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('cxr report refuses a folder that holds no run, and names the runs of an experiments folder', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-report-refusal-'));
  fs.writeFileSync(path.join(tmp, 'notes.txt'), 'not a run\n');
  const r = await cxr('report', tmp);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no run record here \(cxr\.json, log\.jsonl, predictions\/\*\.json or metrics\/\*\.json\)/);
  assert.match(r.stderr, /cxr report reads the folder of a run \(cxr train --out DIR\)/);
  assert.deepEqual(fs.readdirSync(tmp), ['notes.txt'], 'no report/ folder written');
  const rob = path.join(tmp, 'rob');
  fs.mkdirSync(rob);
  fs.writeFileSync(path.join(rob, 'robustness.json'), '{}');
  const robust = await cxr('report', rob);
  assert.equal(robust.code, 1);
  assert.match(
    robust.stderr,
    /rob: a robustness run, not a training or evaluation run: its page is .*rob\/index\.html/,
  );
  const missing = await cxr('report', path.join(tmp, 'nope'));
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope: no such folder/);
  assert.doesNotMatch(missing.stderr, /ENOENT/);

  fs.mkdirSync(path.join(tmp, 'baseline', 'metrics'), { recursive: true });
  fs.writeFileSync(path.join(tmp, 'baseline', 'metrics', 'test.json'), '{}');
  fs.writeFileSync(path.join(tmp, 'comparison.html'), '<html></html>');
  const experiments = await cxr('report', tmp);
  assert.equal(experiments.code, 1);
  assert.match(experiments.stderr, /it holds runs in sub-folders \(its comparison\.html is their table\)/);
  assert.match(experiments.stderr, /e\.g\. cxr report .*baseline/);
  fs.rmSync(tmp, { recursive: true, force: true });
});
