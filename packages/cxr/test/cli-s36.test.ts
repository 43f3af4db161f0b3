// CLI consistency (session 36): every command given an unfinished training run as its model says so with the
// `cxr train --resume` that finishes it; runEvaluation's refusals carry codes; one URL redaction for every URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadRedisUrl, redactRedisUrl } from '../src/queue/connection';
import { redactUrl } from '../src/serve/audit_target';
import { gradientJpeg } from './archive-fixtures';
import { makeTinyModel } from './serve-fixtures';
import * as adapt from '../src/cli/adapt';
import * as calibrate from '../src/cli/calibrate';
import * as ood from '../src/cli/ood';
import * as report from '../src/cli/report';
import { runLikeMain } from './in-process-cli';
import { tempDirsRemovedAfter } from './temp-dirs';
import { interruptedRun } from './interrupted-run';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const newDir = tempDirsRemovedAfter();

const COMMANDS = [adapt, calibrate, ood, report].map((c) => c.register);
/** `cxr ARGS` to its end, in this process (the words are the subject; a child each would cost an engine start). */
const cxr = (args: string[]) => runLikeMain(COMMANDS, args);

const interruptedTitle =
  'calibrate, ood, adapt and adapt-reference on an interrupted run say to finish it with cxr train --resume';
test(interruptedTitle, async () => {
  const dir = newDir('cli-s36-run');
  const run = interruptedRun(path.join(dir, 'run'), '/data/chest xray', 2);
  const films = path.join(dir, 'films');
  fs.mkdirSync(films);
  const resume = `cxr train --data '/data/chest xray' --out ${run} --resume`;
  for (const args of [
    ['calibrate', '--model', run, '--data', dir],
    ['ood', 'fit', '--model', run],
    ['ood', 'evaluate', '--model', run],
    ['ood', 'score', '--model', run, path.join(dir, 'film.png')],
    ['adapt', '--model', run, '--images', films, '--out', path.join(dir, 'adapted')],
    ['adapt-reference', '--model', run],
  ]) {
    const what = args.slice(0, 2).join(' ');
    const r = await cxr(args);
    assert.equal(r.status, 1, `${what}: ${r.stderr}`);
    assert.ok(r.stderr.includes('holds a training run that was stopped after epoch 2, before it wrote'), what);
    assert.ok(r.stderr.includes(resume), `${what}: ${r.stderr}`);
    assert.ok(!r.stderr.includes('not a cxr model folder'), `${what}: ${r.stderr}`);
    assert.equal(r.stdout, '', what);
  }
  assert.ok(!fs.existsSync(path.join(dir, 'adapted')), 'adapt made no --out folder');
});

test('report on an interrupted run says it is unfinished and how to finish it, and still draws its log', async () => {
  const dir = newDir('cli-s36-report');
  const run = interruptedRun(path.join(dir, 'run'), '/data/xray', 2);
  const r = await cxr(['report', run, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const { files, warnings } = JSON.parse(r.stdout) as { files: string[]; warnings: string[] };
  assert.ok(
    files.some((f) => f.endsWith('index.html')),
    'the page is written',
  );
  assert.ok(warnings[0].includes('stopped after epoch 2, before it wrote its model'), warnings[0]);
  assert.ok(warnings[0].includes(`cxr train --data /data/xray --out ${run} --resume`), warnings[0]);
  // Stopped before its first epoch: no log to draw, and the folder is a run, not "no run record".
  const early = interruptedRun(path.join(dir, 'early'), '/data/xray', null);
  const e = await cxr(['report', early]);
  assert.equal(e.status, 1, e.stderr);
  assert.ok(e.stderr.includes('stopped before its first epoch ended'), e.stderr);
  assert.ok(e.stderr.includes(`cxr train --data DATA --out ${early} --resume`), e.stderr);
  assert.ok(!e.stderr.includes('no run record'), e.stderr);
});

const repo = path.resolve(__dirname, '..', '..', '..', '..');
/** What a program gets from `require('@cxr/app')`, resolved by name as one in this workspace would. */
// biome-ignore lint/suspicious/noExplicitAny: the test reads the exports by name, as a JavaScript program would.
const app = (): any => require(require.resolve('@cxr/app', { paths: [repo] }));

/** A folder of films laid out as `cxr evaluate` reads them: NORMAL/ and PNEUMONIA/, each with `n` copies. */
function filmFolder(dir: string, film: Buffer | string, n = 1): string {
  for (const cls of ['NORMAL', 'PNEUMONIA']) {
    fs.mkdirSync(path.join(dir, cls), { recursive: true });
    for (let i = 0; i < n; i++) fs.writeFileSync(path.join(dir, cls, `person${i}_x.jpeg`), film);
  }
  return dir;
}

test("runEvaluation's refusals carry a code to branch on (EvaluationRefused, DatasetLayoutError)", async () => {
  const { runEvaluation, EvaluationRefused, DatasetLayoutError } = app();
  assert.equal(typeof EvaluationRefused, 'function', 'the package exports EvaluationRefused');
  const dir = newDir('cli-s36-eval');
  const modelDir = await makeTinyModel(path.join(dir, 'model'));
  const films = filmFolder(path.join(dir, 'films'), await gradientJpeg());
  const run = (o: object) => runEvaluation({ modelDir, data: films, progress: false, warn: () => {}, ...o });
  /** Rejects with `cls` and `code`; the message is what it was (the words are the CLI's too). */
  const refused = async (o: object, cls: unknown, code: string, words: RegExp) =>
    assert.rejects(run(o), (e: Error & { code?: string }) => {
      assert.ok(e instanceof (cls as typeof Error), `${code}: ${e.name}: ${e.message}`);
      assert.equal(e.code, code, e.message);
      assert.match(e.message, words);
      return true;
    });
  await refused({ operatingPoint: 'nope' }, EvaluationRefused, 'UNKNOWN_OPERATING_POINT', /no operating point 'nope'/);
  await refused({ split: 'validation' }, EvaluationRefused, 'NOT_A_TRAINING_ROOT', /has no train\//);
  // --out holding another model: its cxr.json of another identity, or one that cannot be read.
  const other = path.join(dir, 'other');
  fs.cpSync(modelDir, other, { recursive: true });
  const meta = JSON.parse(fs.readFileSync(path.join(other, 'cxr.json'), 'utf8'));
  fs.writeFileSync(path.join(other, 'cxr.json'), JSON.stringify({ ...meta, name: 'another' }));
  await refused({ out: other }, EvaluationRefused, 'OUT_OTHER_MODEL', /holds another model/);
  const broken = path.join(dir, 'broken');
  fs.mkdirSync(broken);
  fs.writeFileSync(path.join(broken, 'cxr.json'), '{');
  await refused({ out: broken }, EvaluationRefused, 'OUT_MODEL_UNREADABLE', /cannot be read/);
  // --out holding an evaluation of other films under the same name (`all`, as this folder's split is).
  const out = path.join(dir, 'out');
  fs.mkdirSync(path.join(out, 'metrics'), { recursive: true });
  const earlier = { n: 2, source: '/elsewhere/films (all)', operatingPoint: 'balanced' };
  fs.writeFileSync(path.join(out, 'metrics', 'all.json'), JSON.stringify(earlier));
  await refused({ out }, EvaluationRefused, 'OUT_OTHER_EVALUATION', /already holds an evaluation of other films/);
  // No film that can be read: refused after reading them, each unreadable one named in the message's example.
  const junk = filmFolder(path.join(dir, 'junk'), 'not a film', 2);
  await refused({ data: junk }, EvaluationRefused, 'NO_READABLE_IMAGES', /no readable images \(4 could not be read/);
  // The data folder's own: empty class folders, and splits with none to take by default.
  const empty = path.join(dir, 'empty');
  for (const cls of ['NORMAL', 'PNEUMONIA']) fs.mkdirSync(path.join(empty, cls), { recursive: true });
  await refused({ data: empty }, DatasetLayoutError, 'NO_IMAGES', /no images in NORMAL\/ and PNEUMONIA\//);
  const splits = path.join(dir, 'splits');
  for (const s of ['train', 'val']) filmFolder(path.join(splits, s), 'x');
  await refused({ data: splits }, DatasetLayoutError, 'SPLIT_NEEDED', /has splits .*: choose one with --split/);
  await refused({ data: splits, split: 'test' }, DatasetLayoutError, 'NO_IMAGES', /split 'test' has no images/);
  // A refusal frees nothing twice and leaves the model usable: the same call with good options scores.
  const r = await run({});
  assert.equal(r.n, 2);
});

test('a Redis URL is shown as every other credential URL: its password hidden, never a throw', () => {
  const urls = [
    'redis://:p%40ss@10.0.0.1:6390/3',
    'redis://10.0.0.1:6390/3',
    'rediss://cxr:S3cret@[::1]:6380/2',
    'redis://u:p@ss@h:1/0',
    'REDIS://:S3cret@H:1/0',
  ];
  for (const url of urls) assert.equal(redactRedisUrl(url), redactUrl(url), url);
  assert.equal(redactRedisUrl('redis://:p%40ss@10.0.0.1:6390/3'), 'redis://:*****@10.0.0.1:6390/3');
  assert.equal(redactRedisUrl('redis://10.0.0.1:6390/3'), 'redis://10.0.0.1:6390/3');
  // A password as a parameter: taken by --redis and CXR_REDIS_URL, and printed by `cxr worker` and `cxr serve`.
  const param = loadRedisUrl({ url: 'redis://h:6379/0?password=S3cret', env: {} });
  assert.equal(redactRedisUrl(param), 'redis://h:6379/0?password=*****');
  // A mistyped URL quoted in a message is hidden as the audit log's is, not a TypeError "Invalid URL".
  assert.equal(redactRedisUrl('redis//:S3cret@h:6379'), 'redis//:*****@h:6379');
});
