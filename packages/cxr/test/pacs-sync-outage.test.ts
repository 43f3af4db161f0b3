// `cxr orthanc sync` polling rides out an outage of its audit log as it does one of Orthanc. QA stopped the
// stack's PostgreSQL under `cxr orthanc sync --interval 2`: it exited 1 with only `cxr: connect ECONNREFUSED
// 127.0.0.1:39005`. Now the pass stops before storing the film's results, the cursor stays before the film,
// the log names the audit log (password hidden) and says it retries, and once the database is back the film
// gets its one audit row, SR and Secondary Capture: nothing lost, nothing twice. Also: the sync's and the
// workers' log lines gave "PNEUMONIA p=0.997 [...]" for a film the model cannot assess; they give the verdict.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSource } from '../src/dicom_out';
import { resultText } from '../src/pacs';
import Database from 'better-sqlite3';
import { AuditOpenError, openAuditStoreForWriting } from '../src/cli/writable';
import { openAuditStore } from '../src/serve/audit';
import { pgAwayAtOpen, pgOutage } from '../src/serve/audit_pg';
import { AuditStoreOpenError } from '../src/serve/audit_store';
import { isFilmDownload, startOrthancProxy } from './orthanc-proxy';
import { assertOneResultEach, findInstances, results } from './pacs-results';
import { startModelStack, stopModelStack } from './queue-stack';
import { CLI, DICOM_DIR, DICOM_FILE, tempDir } from './serve-fixtures';
import { orthanc, postgresUnavailable, type Stack, stackCmd, stackUnavailable } from './stack-fixture';

test('a log line gives the verdict, not the label, for a film the model cannot assess', () => {
  const warnings = ['image is blank or nearly uniform (contrast 0.0 of 255)'];
  const result = (status: 'assessed' | 'cannot-assess' | 'outside-population', w: string[] = warnings) => ({
    label: 'PNEUMONIA',
    probability: 0.9971,
    verdict: { status },
    warnings: w,
  });
  assert.equal(resultText(result('cannot-assess')), `cannot assess p=0.997 [${warnings[0]}]`);
  assert.equal(resultText(result('assessed', [])), 'PNEUMONIA p=0.997');
  const age = ['outside the intended population (children aged 1–5): the DICOM header gives a patient age over 10'];
  assert.equal(resultText(result('outside-population', age)), `PNEUMONIA p=0.997 [${age[0]}]`);
  // A row logged before verdicts were kept: cannot assess when it carries warnings, as cxr history reads it.
  assert.equal(resultText({ label: 'NORMAL', probability: 0.2, warnings }), `cannot assess p=0.200 [${warnings[0]}]`);
});

test("an audit log away at start is told from one that cannot be used, by the driver's error", () => {
  // As the pg driver and Node give them: PostgreSQL's errors carry their SQLSTATE, a socket's its errno code,
  // the driver's own (a connection closed or timed out) only their words.
  const driver = (message: string, code?: string) => Object.assign(new Error(message), code ? { code } : {});
  const everyAddress = Object.assign(new AggregateError([driver('connect ECONNREFUSED ::1:5432', 'ECONNREFUSED')]), {
    code: 'ECONNREFUSED',
  });
  // Away for now: waited for by a polling sync.
  for (const e of [
    driver('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'),
    driver('getaddrinfo EAI_AGAIN db', 'EAI_AGAIN'),
    everyAddress,
    driver('the database system is starting up', '57P03'),
    driver('the database system is shutting down', '57P03'),
    driver('terminating connection due to administrator command', '57P01'),
    driver('sorry, too many clients already', '53300'),
    driver('connection failure', '08006'),
    driver('Connection terminated due to connection timeout'),
    driver('timeout expired'),
  ]) {
    assert.equal(pgAwayAtOpen(e), true, e.message);
    // One set of rules: what is away at start is an outage to a running server too (503, a job retried).
    assert.notEqual(pgOutage(e), null, e.message);
  }
  // A migration at open that lost a lock to an older process's write (an image prune taking the two tables the
  // other way round): waited out at start, as the next try takes the lock.
  for (const e of [driver('deadlock detected', '40P01'), driver('could not obtain lock on relation', '55P03')]) {
    assert.equal(pgAwayAtOpen(e), true, e.message);
  }
  // A fault no wait mends: said at once. A refused login is an outage only to a running server.
  for (const e of [
    driver('password authentication failed for user "cxr"', '28P01'),
    driver('no pg_hba.conf entry for host "10.0.0.1", user "cxr", database "cxr", no encryption', '28000'),
    driver('database "cxr_audti" does not exist', '3D000'),
    driver('permission denied for schema public', '42501'),
    driver('cannot execute CREATE TABLE in a read-only transaction', '25006'),
    driver('audit log postgres://cxr:*****@db:5432/cxr: no audit log in this database'),
  ]) {
    assert.equal(pgAwayAtOpen(e), false, e.message);
  }
  // The words alone decide nothing: a message that only quotes an outage's words is no outage.
  assert.equal(pgAwayAtOpen(driver('relation "ECONNREFUSED" does not exist', '42P01')), false);
});

test('opening: PostgreSQL refusing the connection is away (message unchanged); a file no log is not', async () => {
  // Port 1 on this machine: nothing listens, so the connection is refused at once.
  await assert.rejects(openAuditStoreForWriting('postgres://cxr:s3cret-pw@127.0.0.1:1/cxr'), (e: unknown) => {
    assert.ok(e instanceof AuditOpenError);
    assert.equal(e.away, true);
    assert.equal(e.reason, 'audit log postgres://cxr:*****@127.0.0.1:1/cxr: connect ECONNREFUSED 127.0.0.1:1');
    // An outage is not mended by switching the audit off: --no-audit is not offered for it.
    assert.equal(
      e.message,
      `${e.reason}; it does not answer for now: run again once it does, or choose another with --db`,
    );
    return true;
  });
  const notALog = path.join(tempDir('audit-open-away'), 'notes.txt');
  fs.writeFileSync(notALog, 'not a database, but long enough to be read as one by SQLite if it tried'.repeat(20));
  await assert.rejects(openAuditStoreForWriting(notALog), (e: unknown) => {
    assert.ok(e instanceof AuditOpenError);
    assert.equal(e.away, false);
    assert.match(e.reason, /not an SQLite database/);
    return true;
  });
  // The SQLite opener says so itself, as the PostgreSQL one does.
  await assert.rejects(openAuditStore(notALog), (e: unknown) => {
    assert.ok(e instanceof AuditStoreOpenError, String(e));
    assert.equal(e.away, false);
    assert.match(e.message, /not an SQLite database/);
    return true;
  });
  fs.rmSync(path.dirname(notALog), { recursive: true, force: true });
});

test('opening: an SQLite log another program holds locked past the wait is away', { timeout: 30_000 }, async () => {
  const dir = tempDir('audit-open-locked');
  const file = path.join(dir, 'audit.db');
  await (await openAuditStore(file)).close();
  const other = new Database(file);
  other.exec('BEGIN EXCLUSIVE');
  try {
    await assert.rejects(openAuditStoreForWriting(file), (e: unknown) => {
      assert.ok(e instanceof AuditOpenError);
      assert.equal(e.away, true, e.message);
      assert.match(e.reason, /database is locked/);
      return true;
    });
    // Decided by the SQLite opener on the driver's error, as the PostgreSQL opener decides its own; the message
    // and code are the driver's, as before, for callers that read them (queue/retry.ts reads SQLITE_BUSY).
    await assert.rejects(openAuditStore(file), (e: unknown) => {
      assert.ok(e instanceof AuditStoreOpenError, String(e));
      assert.equal(e.away, true);
      assert.equal(e.message, 'database is locked');
      assert.match(e.code ?? '', /^SQLITE_BUSY/);
      return true;
    });
  } finally {
    other.exec('ROLLBACK');
    other.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const skip = stackUnavailable() ?? postgresUnavailable();
if (skip) console.log(`# pacs-sync-outage skipped: ${skip}`);
let stack: Stack | undefined;
let dir = '';
let modelDir = '';

before(async () => {
  if (skip) return;
  ({ dir, modelDir, stack } = await startModelStack('pacs-sync-outage', ['postgresql', 'orthanc']));
});
after(async () => {
  await stopModelStack({ stack, dir });
});

async function until(ok: () => boolean | Promise<boolean>, ms: number, why: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) assert.fail(why());
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function auditKeys(): Promise<string[]> {
  const store = await openAuditStore(stack!.env.CXR_DB, { readonly: true });
  try {
    return (await store.list({ limit: 100 })).items.map((r) => r.resultKey ?? '');
  } finally {
    await store.close();
  }
}

test('polling sync survives an audit-log outage and stores the film once the database is back', {
  skip: skip ?? false,
  timeout: 90_000,
}, async () => {
  const state = path.join(dir, 'state.json');
  // Through a proxy that notes each request: whether the film was downloaded (to be predicted) during the outage.
  const proxy = await startOrthancProxy(stack!.env.CXR_ORTHANC_URL);
  const downloads = () => proxy.seen.filter((r) => isFilmDownload(r.path)).length;
  const poll = spawn(
    process.execPath,
    [CLI, 'orthanc', 'sync', '--interval', '0.5', '--since-start', '--state', state, '--json'],
    { env: { ...process.env, ...stack!.env, CXR_ORTHANC_URL: proxy.url, CXR_MODEL: modelDir } },
  );
  let err = '';
  let out = '';
  poll.stderr.on('data', (d) => (err += d));
  poll.stdout.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => poll.on('close', resolve));
  try {
    await until(
      () => /watching/.test(err),
      30_000,
      () => `the sync did not start: ${err}`,
    );

    assert.equal(stackCmd(stack!.dir, 'down', ['postgresql']).code, 0);
    const bytes = fs.readFileSync(DICOM_FILE);
    const upload = await orthanc(stack!, '/instances', { method: 'POST', body: new Uint8Array(bytes) });
    assert.equal(upload.status, 200);
    const film = readSource(bytes);
    // Two polls that met the outage, and still running. The log is asked before the film is predicted: the model
    // does not run for a row that cannot be written, and no "predicted" line reads as if the film were done.
    const retries = () => err.match(/audit log[^\n]*postgres:\/\/cxr:\*+@[^\n]*; retrying in 0\.5 s/g) ?? [];
    await until(
      () => retries().length >= 2,
      20_000,
      () => `no retry of the audit log:\n${err}`,
    );
    assert.equal(poll.exitCode, null, err);
    assert.doesNotMatch(err, /predicted/, 'nothing predicted while the audit log is away');
    assert.equal(downloads(), 0, 'the film is not read (to be predicted) while the audit log is away');
    assert.ok(!err.includes(new URL(stack!.env.CXR_DB).password), 'the password stays hidden');
    assert.deepEqual(await findInstances(stack!, { Modality: 'SR' }), [], 'no results stored without their row');
    const cursor = (JSON.parse(fs.readFileSync(state, 'utf8')) as { last: number }).last;
    const changes = (await (await orthanc(stack!, `/changes?since=0&limit=100`)).json()) as {
      Changes: { ChangeType: string; Seq: number }[];
    };
    const filmChange = changes.Changes.find((c) => c.ChangeType === 'NewInstance')!;
    assert.ok(cursor < filmChange.Seq, `the cursor (${cursor}) stays before the film's change (${filmChange.Seq})`);

    assert.equal(stackCmd(stack!.dir, 'up', ['postgresql']).code, 0);
    await until(
      async () => (await findInstances(stack!, { Modality: 'SR' })).length > 0,
      20_000,
      () => `the film's results never came:\n${err}`,
    );
    await new Promise((r) => setTimeout(r, 1500)); // a few more polls: nothing more may come of them
    poll.kill('SIGTERM');
    assert.equal(await exited, 0, err);
    assert.equal((JSON.parse(out) as { processed: number }).processed, 1, err);
    assert.equal(err.match(/predicted \S+ \([\d.]+\) and stored its results: /g)?.length, 1, err);
    assert.equal(downloads(), 1, 'read once, when the log was back');
    await assertOneResultEach(stack!, new Map([[film.sopInstanceUid, film.studyInstanceUid]]));
    assert.deepEqual(await auditKeys(), [film.sopInstanceUid], 'one audit row');
  } finally {
    if (poll.exitCode === null) poll.kill('SIGKILL');
    await proxy.close();
  }
});

/** `cxr orthanc sync ARGS` with the stack's settings and `env`; resolves with its exit status and stderr. */
function syncRun(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [CLI, 'orthanc', 'sync', ...args], {
    env: { ...process.env, ...stack!.env, CXR_MODEL: modelDir, ...env },
  });
  const run = { child, err: '', out: '', exited: new Promise<number | null>((r) => child.on('close', r)) };
  child.stderr.on('data', (d) => (run.err += d));
  child.stdout.on('data', (d) => (run.out += d));
  return run;
}

test('polling sync started while PostgreSQL is away waits for the audit log, then does the film', {
  skip: skip ?? false,
  timeout: 90_000,
}, async () => {
  // QA: the polling sync exited 1 at start ("connect ECONNREFUSED ...; choose another with --db, or --no-audit")
  // when PostgreSQL was briefly away, whereas Orthanc away at start, and PostgreSQL away later, are waited out.
  assert.equal(stackCmd(stack!.dir, 'down', ['postgresql']).code, 0);
  const state = path.join(dir, 'state-start.json');
  const poll = syncRun(['--interval', '0.5', '--since-start', '--state', state, '--json']);
  try {
    await until(
      () => /the first poll tries again/.test(poll.err),
      30_000,
      () => `no wait for the audit log at start:\n${poll.err}`,
    );
    const away =
      /audit log postgres:\/\/cxr:\*+@[^\n]*ECONNREFUSED[^\n]*; no film is predicted until the audit log opens/;
    await until(
      () => away.test(poll.err),
      20_000,
      () => `no retry of the audit log:\n${poll.err}`,
    );
    assert.equal(poll.child.exitCode, null, poll.err);
    assert.doesNotMatch(poll.err, /choose another with --db/, 'no advice to give up the log that is only away');
    assert.ok(!poll.err.includes(new URL(stack!.env.CXR_DB).password), 'the password stays hidden');
    // A film arrives meanwhile: done once the log is back.
    const bytes = fs.readFileSync(path.join(DICOM_DIR, 'gdcm-CR-MONO1-10-chest.dcm'));
    assert.equal((await orthanc(stack!, '/instances', { method: 'POST', body: new Uint8Array(bytes) })).status, 200);
    const film = readSource(bytes);
    assert.equal(stackCmd(stack!.dir, 'up', ['postgresql']).code, 0);
    await until(
      async () => (await results(stack!, 'SR')).has(film.sopInstanceUid),
      30_000,
      () => `the film's results never came:\n${poll.err}`,
    );
    assert.match(poll.err, /audit log postgres:\/\/cxr:\*+@\S+ opened: reading the change feed/);
    poll.child.kill('SIGTERM');
    assert.equal(await poll.exited, 0, poll.err);
    assert.equal((JSON.parse(poll.out) as { processed: number }).processed, 1, poll.err);
    assert.ok((await auditKeys()).includes(film.sopInstanceUid), 'its audit row');
  } finally {
    if (poll.child.exitCode === null) poll.child.kill('SIGKILL');
    stackCmd(stack!.dir, 'up', ['postgresql']); // for the next test, also when this one failed early
  }
});

test('an audit log that cannot be used still stops the sync at once; --once does not wait for one away', {
  skip: skip ?? false,
  timeout: 60_000,
}, async () => {
  // A login PostgreSQL refuses is a configuration fault: polling or not, exit 1 with the advice.
  const url = new URL(stack!.env.CXR_DB);
  url.password = 'not-the-password';
  const refused = syncRun(['--interval', '0.5', '--state', path.join(dir, 'state-refused.json')], {
    CXR_DB: url.href,
  });
  assert.equal(await refused.exited, 1, refused.err);
  assert.match(refused.err, /password authentication failed[^\n]*; choose another with --db, or --no-audit/);
  assert.doesNotMatch(refused.err, /tries again|watching/);
  assert.ok(!refused.err.includes('not-the-password'), 'the password stays hidden');
  // --once is one pass: the log away is said at once, as docs/deployment.md says.
  assert.equal(stackCmd(stack!.dir, 'down', ['postgresql']).code, 0);
  try {
    const once = syncRun(['--once', '--state', path.join(dir, 'state-once.json')]);
    assert.equal(await once.exited, 1, once.err);
    assert.match(once.err, /ECONNREFUSED[^\n]*; it does not answer for now: run again once it does, or choose another/);
    assert.doesNotMatch(once.err, /--no-audit/);
  } finally {
    assert.equal(stackCmd(stack!.dir, 'up', ['postgresql']).code, 0);
  }
});
