// CLI leftovers of earlier reviews (session 35): an unfinished run given as --model, serve's number options,
// compare --split validation of two different recorded splits, the audit log URL's redaction, the token named
// `default` in `cxr history`, and one folder of films named two ways to `evaluate --out`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runComparison } from '../src/cli/compare_run';
import { runEvaluation } from '../src/cli/evaluate_run';
import { openAuditStore } from '../src/serve/audit';
import { parseAuditTarget, redactUrl } from '../src/serve/audit_target';
import { CHEST_XRAY, haveData, makeSeededModel } from './ood-fixtures';
import { auditRecord } from './serve-fixtures';
import * as evaluate from '../src/cli/evaluate';
import * as history from '../src/cli/history';
import * as predict from '../src/cli/predict';
import * as serve from '../src/cli/serve';
import { runLikeMain } from './in-process-cli';
import { tempDirsRemovedAfter } from './temp-dirs';
import { interruptedRun } from './interrupted-run';

process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');
const newDir = tempDirsRemovedAfter();

const COMMANDS = [evaluate, history, predict, serve].map((c) => c.register);

/**
 * `cxr ARGS` to its end, in this process (the words are the subject; a child each would cost an engine start),
 * with `env` over this environment less the tokens, queue, Orthanc and CXR_DB_WAIT a caller may have set.
 */
function cxr(args: string[], env: NodeJS.ProcessEnv = {}) {
  const unset = { CXR_API_TOKEN: undefined, CXR_API_TOKENS: undefined, CXR_REDIS_URL: undefined };
  return runLikeMain(COMMANDS, args, { ...unset, CXR_ORTHANC_URL: undefined, CXR_DB_WAIT: undefined, ...env });
}

// A command started by mistake instead of refused (a server) is cut here, as the child's 30 s limit did.
test('predict and evaluate on an interrupted run folder say to finish it with cxr train --resume', {
  timeout: 60_000,
}, async () => {
  const dir = newDir('leftovers-run');
  const run = interruptedRun(path.join(dir, 'run'), '/data/chest xray', 2);
  const film = path.join(dir, 'film.png');
  fs.writeFileSync(film, 'not really a film');
  const resume = `cxr train --data '/data/chest xray' --out ${run} --resume`;
  for (const args of [
    ['predict', '--model', run, '--no-audit', film],
    ['evaluate', '--model', run, '--data', dir],
  ]) {
    const r = await cxr(args);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /holds a training run that was stopped after epoch 2, before it wrote its model/, args[0]);
    assert.ok(r.stderr.includes(resume), `${args[0]}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /not a cxr model folder/);
    assert.equal(r.stdout, '');
  }
});

test('serve: each number option refused as every command refuses one, naming the option, value and range', {
  timeout: 60_000,
}, async () => {
  const dir = newDir('leftovers-serve');
  const base = ['serve', '--model', path.join(dir, 'no-model'), '--db', path.join(dir, 'a.db')];
  const cases: [string, string, string][] = [
    ['--port', '99999', 'an integer from 0 to 65535'],
    ['--port', '', 'an integer from 0 to 65535'],
    ['--max-upload-mb', '0', 'a number of MiB > 0, at most 1024'],
    ['--concurrency', '65', 'an integer from 1 to 64'],
    ['--threads', '1.5', 'a positive integer'],
    ['--db-wait', '-1', 'a whole number of seconds from 0 to 604800 (7 days)'],
    ['--job-uploads-mb', 'lots', 'a number of MiB > 0, at most 1048576'],
  ];
  for (const [option, value, what] of cases) {
    const r = await cxr([...base, option, value]);
    assert.equal(r.status, 1, `${option} ${value}: ${r.stderr}`);
    assert.ok(r.stderr.includes(`argument '${value}' is invalid. ${what}`), `${option} ${value}: ${r.stderr}`);
    assert.ok(r.stderr.includes(`'${option} <`), r.stderr);
    assert.doesNotMatch(r.stderr, /✖|Too big|Too small|→ at/, 'not zod raw text');
  }
  const env = await cxr([...base, '--port', '0'], { CXR_DB_WAIT: 'soon' });
  assert.equal(env.status, 1, env.stderr);
  assert.match(
    env.stderr,
    /^cxr: serve: --db-wait, from CXR_DB_WAIT, must be a whole number of seconds .*\(got "soon"\)/,
  );
});

test('compare --split validation refuses two different recorded splits before scoring either model', {
  skip: !haveData && 'no shared/data',
}, async () => {
  const dir = newDir('leftovers-compare');
  const tiny = { inputSize: 32, widths: [4, 8, 8, 8] };
  const split = (splitSeed: number) => ({ valFraction: 0.25, splitSeed, limitPerClass: 8 });
  const a = await makeSeededModel(path.join(dir, 'a'), { ...tiny, seed: 1, split: split(1) });
  const b = await makeSeededModel(path.join(dir, 'b'), { ...tiny, seed: 2, split: split(2) });
  // B's weights cut short: B cannot be loaded, so a refusal that names the splits came before B was scored
  // (and before A was, which goes first): the splits were compared from the two cxr.json alone.
  const weights = path.join(b, 'weights.bin');
  fs.writeFileSync(weights, fs.readFileSync(weights).subarray(0, 100));
  await assert.rejects(
    runComparison({ models: [a, b], data: CHEST_XRAY, split: 'validation', progress: false }),
    (e: Error) => {
      assert.match(e.message, /the two models record different validation splits/);
      assert.match(e.message, /in (A|B)'s validation split only/);
      return true;
    },
  );
});

test('audit log URLs: the password hidden, and only the password, in any form of URL', () => {
  const table: [string, string][] = [
    ['postgres://u:p@h/db', 'postgres://u:*****@h/db'],
    ['postgres:/u:p@h/db', 'postgres:/u:*****@h/db'],
    ['postgres:/u@h/db', 'postgres:/u@h/db'],
    ['postgres:u:p@h/db', 'postgres:u:*****@h/db'],
    ['postgres//cxr:S3cret@db/cxr', 'postgres//cxr:*****@db/cxr'],
    ['postgres:///db', 'postgres:///db'],
    ['postgres://u@h/db', 'postgres://u@h/db'],
    ['postgres://h/db', 'postgres://h/db'],
    ['postgres://u:@h/db', 'postgres://u:@h/db'],
    ['postgres://:p@h/db', 'postgres://:*****@h/db'],
    ['postgres://u:p@ss@h/db', 'postgres://u:*****@h/db'],
    ['postgres://u:p/ss@h/db', 'postgres://u:*****@h/db'],
    ['postgres://u:p?ss@h/db', 'postgres://u:*****@h/db'],
    ['postgres://u:p:q@h:5432/db', 'postgres://u:*****@h:5432/db'],
    ['postgres://u:p@h/db?application_name=a@b', 'postgres://u:*****@h/db?application_name=a@b'],
    ['postgres://u:p@h/db?sslrootcert=/c@d:e', 'postgres://u:*****@h/db?sslrootcert=/c@d:e'],
    ['postgres://cxr:pw@db.lan:99999/db', 'postgres://cxr:*****@db.lan:99999/db'],
    ['postgres://h/db?password=pw&sslmode=require', 'postgres://h/db?password=*****&sslmode=require'],
    ['POSTGRESQL://U:P@[::1]:5/DB', 'POSTGRESQL://U:*****@[::1]:5/DB'],
    ['http//cxr:S3cret@h:1', 'http//cxr:*****@h:1'],
    ['//cxr:S3cret@h:1', '//cxr:*****@h:1'],
    ['cxr:S3cret@h:1', 'cxr:*****@h:1'],
    ['/var/lib/cxr/audit@2.db', '/var/lib/cxr/audit@2.db'],
    ['C:/audit@2.db', 'C:/audit@2.db'],
  ];
  for (const [url, shown] of table) assert.equal(redactUrl(url), shown, url);
  // No password is ever shown, whatever the form: every one of these is refused, quoting the URL hidden.
  for (const typo of ['postgres:/cxr:S3cret@db/cxr', 'postgres:cxr:S3cret@db/x', 'postgres://cxr:S3/cret@db/x']) {
    assert.throws(
      () => parseAuditTarget(typo),
      (e: Error) => !e.message.includes('S3') && /cxr:\*\*\*\*\*@db/.test(e.message),
      typo,
    );
  }
  assert.throws(
    () => parseAuditTarget('postgres://cxr@db/x?password=S3cret'),
    (e: Error) => /unknown parameter 'password'/.test(e.message) && !e.message.includes('S3cret'),
  );
});

test('cxr history names a token as one: the single CXR_API_TOKEN is token "default", not "by default"', async () => {
  const db = path.join(newDir('leftovers-history'), 'audit.db');
  const store = await openAuditStore(db);
  const record = (i: number, requestedBy: string | null) => auditRecord(i, { requestedBy });
  await store.insert(record(1, 'default'), null);
  await store.insert(record(2, null), null);
  await store.close();
  const r = await cxr(['history', '--db', db]);
  assert.equal(r.status, 0, r.stderr);
  const [, newest, older] = r.stdout.trim().split('\n');
  assert.doesNotMatch(r.stdout, /by default/);
  assert.match(older, / by token "default"$/);
  assert.doesNotMatch(newest, / by /, 'a row no token asked for names none');
});

test('evaluate --out: --data x/val and --data x --split val are the same films, not "other films"', {
  skip: !haveData && 'no shared/data',
}, async () => {
  const dir = newDir('leftovers-films');
  const tiny = { inputSize: 32, widths: [4, 8, 8, 8] };
  const a = await makeSeededModel(path.join(dir, 'a'), { ...tiny, seed: 1 });
  const b = await makeSeededModel(path.join(dir, 'b'), { ...tiny, seed: 2 });
  const root = path.join(dir, 'x');
  for (const c of ['NORMAL', 'PNEUMONIA']) {
    fs.mkdirSync(path.join(root, 'val', c), { recursive: true });
    for (const f of fs.readdirSync(path.join(CHEST_XRAY, 'val', c)).slice(0, 2))
      fs.copyFileSync(path.join(CHEST_XRAY, 'val', c, f), path.join(root, 'val', c, f));
  }
  const out = path.join(dir, 'evals');
  const run = (modelDir: string, data: { data: string; split?: string }) =>
    runEvaluation({ modelDir, ...data, out, progress: false, warn: () => {} });
  await run(a, { data: path.join(root, 'val') });
  const metrics = path.join(out, 'metrics', 'eval-val.json');
  const shaA = JSON.parse(fs.readFileSync(metrics, 'utf8')).model.sha256;
  // The same model on the same films, named the other way: a rerun, replaced without asking.
  await run(a, { data: root, split: 'val' });
  // Another model on them, either way: refused as the same films by another model (not as other films).
  for (const data of [{ data: root, split: 'val' }, { data: path.join(root, 'val') }])
    await assert.rejects(run(b, data), /already holds an evaluation of these films by another model/);
  assert.equal(JSON.parse(fs.readFileSync(metrics, 'utf8')).model.sha256, shaA);
});
