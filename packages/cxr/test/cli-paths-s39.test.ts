// A path the user got wrong, said in words (session 39): a missing model folder by the option that named it (every
// command, as `cxr compare --models` said it), a path through a file by which part is the file (the system said
// only ENOTDIR), a mistyped --db refused rather than made into a new, empty audit log; and `npm test` ends a
// file's process as scripts/run-tests.js does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as adapt from '../src/cli/adapt';
import * as calibrate from '../src/cli/calibrate';
import * as compare from '../src/cli/compare';
import * as enqueue from '../src/cli/enqueue';
import * as ensemble from '../src/cli/ensemble';
import * as evaluate from '../src/cli/evaluate';
import * as experiments from '../src/cli/experiments';
import * as ood from '../src/cli/ood';
import * as orthanc from '../src/cli/orthanc';
import * as predict from '../src/cli/predict';
import * as robustness from '../src/cli/robustness';
import * as worker from '../src/cli/worker';
import { spawnCli } from './child-cli';
import { runLikeMain } from './in-process-cli';
import { makeTinyModel } from './serve-fixtures';
import { tempDirsRemovedAfter } from './temp-dirs';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const newDir = tempDirsRemovedAfter();

const COMMANDS = [
  adapt,
  calibrate,
  compare,
  enqueue,
  ensemble,
  evaluate,
  experiments,
  ood,
  orthanc,
  predict,
  robustness,
  worker,
].map((c) => c.register);

/** `cxr ARGS` as main.js ends it, in this process; its exit code cleared before and after (predict sets one). */
async function cxr(args: string[], env: NodeJS.ProcessEnv = {}) {
  process.exitCode = undefined;
  try {
    return await runLikeMain(COMMANDS, args, env);
  } finally {
    process.exitCode = undefined;
  }
}

/** The last line of stderr: main.js's `cxr: MESSAGE`. */
const lastLine = (stderr: string) => stderr.trim().split('\n').pop() ?? '';

test('every command taking a model folder says a missing one by its option, with what to do', async () => {
  const dir = newDir('cli-paths-model');
  const data = path.join(dir, 'data');
  for (const c of ['NORMAL', 'PNEUMONIA']) fs.mkdirSync(path.join(data, c), { recursive: true });
  // Relative, as a user types it: the message also says where it was looked for.
  const missing = path.join('no-such-runs-s39', 'nope');
  const film = path.join(dir, 'film.png');
  const out = (name: string) => path.join(dir, name);
  const runs: [string, string[]][] = [
    ['--model', ['evaluate', '--model', missing, '--data', data]],
    ['--model', ['predict', '--model', missing, '--no-audit', film]],
    ['--model', ['robustness', '--model', missing, '--data', data]],
    ['--model', ['calibrate', '--model', missing, '--data', data]],
    ['--model', ['ood', 'fit', '--model', missing]],
    ['--model', ['ood', 'score', '--model', missing, film]],
    ['--model', ['adapt', '--model', missing, '--images', data, '--out', out('adapted')]],
    ['--model', ['adapt-reference', '--model', missing]],
    ['--model', ['experiments', 'adapt', '--model', missing, '--data', data]],
    ['--model', ['experiments', 'heatmap', '--model', missing, '--images', data]],
    ['--model', ['enqueue', '--model', missing, '--redis', 'redis://127.0.0.1:9', film]],
    ['--model', ['worker', '--model', missing]],
    ['--model', ['orthanc', 'sync', '--model', missing, '--url', 'http://127.0.0.1:9', '--once']],
    ['--models', ['compare', '--models', missing, missing, '--data', data]],
    ['--members', ['ensemble', '--members', missing, missing, '--out', out('ensemble')]],
  ];
  const expected = (option: string) =>
    `cxr: ${option} ${missing}: no such folder (${path.resolve(missing)}): check the path; ` +
    'give the folder holding cxr.json (cxr train --out writes one)';
  for (const [option, args] of runs) {
    const r = await cxr(args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(lastLine(r.stderr), expected(option), args.join(' '));
  }
  // CXR_MODEL set to a folder that is not there: said as CXR_MODEL, the place the user set it.
  const r = await cxr(['evaluate', '--data', data], { CXR_MODEL: missing });
  assert.ok(lastLine(r.stderr).startsWith(`cxr: CXR_MODEL ${missing}: no such folder`), r.stderr);
});

test('a path through a file says which part is the file, not ENOTDIR', async () => {
  const dir = newDir('cli-paths-through');
  const file = path.join(dir, 'film.dcm');
  fs.writeFileSync(file, 'not a folder');
  const through = path.join(file, 'x');
  const words = `a part of the path, ${file}, is a file, not a folder`;
  const model = await makeTinyModel(path.join(dir, 'model'));

  const given = await cxr(['predict', '--model', model, '--no-audit', '--format', 'json', through]);
  assert.equal(given.status, 1, given.stderr);
  const [row] = JSON.parse(given.stdout);
  assert.equal(row.file, through);
  assert.equal(row.error, words);
  assert.ok(!given.stderr.includes('ENOTDIR'), given.stderr);

  for (const [option, args] of [
    ['--model', ['predict', '--model', through, '--no-audit', file]],
    ['--data', ['evaluate', '--model', model, '--data', through]],
    ['--images', ['adapt', '--model', model, '--images', through, '--out', path.join(dir, 'adapted')]],
    ['--data', ['robustness', '--model', model, '--data', through]],
  ] as const) {
    const r = await cxr([...args]);
    assert.equal(r.status, 1, r.stderr);
    const said = lastLine(r.stderr);
    assert.ok(said.startsWith(`cxr: ${option} ${through}: ${words}`), said);
  }
});

test('a --db typed into a folder that is not there is refused before anything starts, and not made', async () => {
  const dir = newDir('cli-paths-db');
  const typo = path.join(dir, 'typo', 'dir');
  const db = path.join(typo, 'audit.db');
  const film = path.join(dir, 'film.png');
  fs.writeFileSync(film, 'not read');
  const expected =
    `cxr: --db ${db}: the folder ${typo} does not exist: check the path (is the audit log elsewhere?), ` +
    'or create the folder first to start a new audit log there';
  for (const args of [
    ['predict', '--db', db, film],
    ['worker', '--db', db],
    ['orthanc', 'sync', '--db', db, '--url', 'http://127.0.0.1:9', '--once'],
  ]) {
    const r = await cxr(args);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(lastLine(r.stderr), expected, args.join(' '));
    assert.ok(!fs.existsSync(path.join(dir, 'typo')), `${args[0]} made the mistyped folder`);
  }
  // With --no-audit no log is opened, so its folder is no reason to refuse: the next check speaks.
  const noAudit = await cxr(['predict', '--db', db, '--no-audit', '--model', path.join(dir, 'none'), film]);
  assert.ok(lastLine(noAudit.stderr).includes('--model'), noAudit.stderr);

  // cxr serve ends through its own handler (a fatal log line, exit 1): run as a user runs it.
  const serve = spawnCli(['serve', '--db', db, '--port', '0'], { ...process.env, CXR_LOG_LEVEL: 'info' });
  assert.equal(await serve.done, 1, serve.stderr());
  assert.ok(serve.stderr().includes(`--db ${db}: the folder ${typo} does not exist`), serve.stderr());
  assert.ok(!fs.existsSync(path.join(dir, 'typo')), 'serve made the mistyped folder');
});

test('npm test runs each package with --test-force-exit, as scripts/run-tests.js does', () => {
  const root = path.resolve(__dirname, '..', '..', '..', '..');
  const runner = fs.readFileSync(path.join(root, 'scripts', 'run-tests.js'), 'utf8');
  assert.ok(runner.includes("'--test-force-exit'"), 'run-tests.js no longer forces the exit: update this test');
  for (const pkg of ['cxr', 'backend-aten']) {
    const scripts = JSON.parse(fs.readFileSync(path.join(root, 'packages', pkg, 'package.json'), 'utf8')).scripts;
    assert.ok(scripts.test.split(/\s+/).includes('--test-force-exit'), `${pkg}: ${scripts.test}`);
  }
});
