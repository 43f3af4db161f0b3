// End to end with a real Orthanc (scripts/stack.sh): films uploaded over REST, `cxr orthanc sync
// --once` (in this process: a child each would cost an engine start), then the PACS must hold exactly one
// report (SR) and one heat map (SC) per chest film, in the film's own study, and still so after reruns. The
// polling sync stopped by SIGTERM is a child process of the built CLI: the signal and exit status are its test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as orthancCommand from '../src/cli/orthanc';
import { openAuditStore } from '../src/serve/audit';
import { runLikeMain } from './in-process-cli';
import { assertOneResultEach, uploadSamples, findInstances as findInstancesIn } from './pacs-results';
import { startModelStack, stopModelStack } from './queue-stack';
import { orthanc, type Stack, stackUnavailable } from './stack-fixture';

const MAIN = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const skip = stackUnavailable();
if (skip) console.log(`# pacs-e2e skipped: ${skip}`);

let stack: Stack | undefined;
let dir = '';
let modelDir = '';

before(async () => {
  if (skip) return;
  ({ dir, modelDir, stack } = await startModelStack('pacs-e2e', ['orthanc']));
});
after(async () => {
  await stopModelStack({ stack, dir });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `cxr orthanc sync ARGS` in this process, as main.js runs it. Credentials only through the environment, as in
 * production. The sync sets process.exitCode (2: a film failed): cleared before (not to read an earlier run's)
 * and after (not to be the test process's own).
 */
async function syncRun(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  process.exitCode = undefined;
  try {
    const r = await runLikeMain([orthancCommand.register], ['orthanc', 'sync', ...args], {
      ...stack!.env,
      CXR_MODEL: modelDir,
      CXR_DB: auditDb(),
      ...env,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    process.exitCode = undefined;
  }
}

const sync = (...args: string[]) => syncRun(['--state', path.join(dir, 'state.json'), '--json', ...args]);

const findInstances = (query: Record<string, string>) => findInstancesIn(stack!, query);
/** The sync's own audit log (SQLite here; the queue's e2e test covers PostgreSQL). */
const auditDb = () => path.join(dir, 'audit.db');

/** The audit rows' result keys: one per film predicted, whatever the reruns. */
async function auditKeys(): Promise<string[]> {
  const store = await openAuditStore(auditDb(), { readonly: true });
  try {
    const page = await store.list({ limit: 1000 });
    return page.items.map((r) => r.resultKey ?? '').sort();
  } finally {
    await store.close();
  }
}

test('Orthanc → cxr orthanc sync → one SR and one SC per chest film in its study; reruns add nothing', {
  skip: skip ?? false,
  timeout: 240_000,
}, async () => {
  // Upload every sample; files holding the same SOP instance are stored once by Orthanc.
  const films = await uploadSamples(stack!);
  assert.equal(films.size, 4, 'the six samples hold four distinct chest instances');

  const first = await sync('--once', '--since-start');
  assert.equal(first.code, 0, first.stderr);
  const stats = JSON.parse(first.stdout) as Record<string, number>;
  assert.deepEqual(
    { processed: stats.processed, failed: stats.failed, alreadyDone: stats.alreadyDone },
    { processed: 4, failed: 0, alreadyDone: 0 },
    first.stderr,
  );

  const check = () => assertOneResultEach(stack!, films);
  await check();
  // As cxr predict: one audit row per film, keyed by its SOP Instance UID.
  assert.deepEqual(await auditKeys(), [...films.keys()].sort());

  // Second run from the saved cursor: only cxr's own results are new, and they are skipped.
  const second = await sync('--once');
  assert.equal(second.code, 0, second.stderr);
  const s2 = JSON.parse(second.stdout) as Record<string, number>;
  assert.equal(s2.processed, 0);
  assert.equal(s2.skipped, films.size * 2, "the 8 results, recognised as cxr's own");
  // Counted in the summary line, not logged one by one (a restart met one line per result it had stored).
  assert.match(second.stderr, /8 skipped \(8 of them cxr's own results\)/);
  assert.doesNotMatch(second.stderr, /skip \S+: a cxr result/);

  // From the start again: every film is found done (deterministic UIDs) and nothing is stored twice.
  const third = await sync('--once', '--since-start');
  assert.equal(third.code, 0, third.stderr);
  const s3 = JSON.parse(third.stdout) as Record<string, number>;
  assert.equal(s3.processed, 0);
  assert.equal(s3.alreadyDone, films.size);
  await check();
  assert.deepEqual(await auditKeys(), [...films.keys()].sort(), 'reruns add no audit row');

  // A film arriving later is picked up from the saved cursor, and only it.
  const [someFilm] = await findInstances({ Modality: 'CR' });
  const newUid = '2.25.1234567890123456789';
  const modified = await orthanc(stack!, `/instances/${someFilm}/modify`, {
    method: 'POST',
    body: JSON.stringify({ Replace: { SOPInstanceUID: newUid }, Force: true }),
  });
  assert.equal(modified.status, 200);
  const upload = await orthanc(stack!, '/instances', {
    method: 'POST',
    body: new Uint8Array(await modified.arrayBuffer()),
  });
  assert.equal(upload.status, 200);
  films.set(
    newUid,
    ((await (await orthanc(stack!, `/instances/${someFilm}/simplified-tags`)).json()) as { StudyInstanceUID: string })
      .StudyInstanceUID,
  );
  const fourth = await sync('--once');
  assert.equal(fourth.code, 0, fourth.stderr);
  const s4 = JSON.parse(fourth.stdout) as Record<string, number>;
  assert.deepEqual({ instances: s4.instances, processed: s4.processed }, { instances: 1, processed: 1 }, fourth.stderr);
  await check();
  assert.deepEqual(await auditKeys(), [...films.keys()].sort(), 'the late film has its row too');

  // Polling: SIGTERM stops it cleanly (exit 0, counts printed).
  const poll = spawn(
    process.execPath,
    [MAIN, 'orthanc', 'sync', '--interval', '0.5', '--state', path.join(dir, 'state.json'), '--json'],
    { env: { ...process.env, ...stack!.env, CXR_MODEL: modelDir, CXR_DB: auditDb() } },
  );
  let pollErr = '';
  let pollOut = '';
  poll.stdout.on('data', (d) => (pollOut += d));
  const exited = new Promise<number | null>((resolve) => poll.on('close', resolve));
  await new Promise<void>((resolve) =>
    poll.stderr.on('data', (d) => {
      pollErr += d;
      if (/watching/.test(pollErr)) resolve();
    }),
  );
  await new Promise((r) => setTimeout(r, 1200)); // a few polls
  poll.kill('SIGTERM');
  assert.equal(await exited, 0, pollErr);
  assert.match(pollErr, /SIGTERM: stopping after the current film/);
  assert.equal((JSON.parse(pollOut) as Record<string, number>).processed, 0);

  // Wrong password: a clear error, non-zero exit, the cursor file untouched.
  const state = fs.readFileSync(path.join(dir, 'state.json'), 'utf8');
  const bad = await syncRun(['--once', '--state', path.join(dir, 'state.json')], { CXR_ORTHANC_PASSWORD: 'wrong' });
  assert.equal(bad.code, 1);
  assert.match(
    bad.stderr,
    /HTTP 401: Orthanc at \S+ refused the login \(user 'cxr'\): check the login where it is given: CXR_ORTHANC_USER/,
  );
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')).last, JSON.parse(state).last);
});
