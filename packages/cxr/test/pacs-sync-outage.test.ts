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
import { openAuditStore } from '../src/serve/audit';
import { assertOneResultEach, findInstances } from './pacs-results';
import { CLI, DICOM_FILE, makeTinyModel, tempDir } from './serve-fixtures';
import {
  orthanc,
  postgresUnavailable,
  type Stack,
  stackCmd,
  stackUnavailable,
  startStack,
  stopStack,
} from './stack-fixture';

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

const skip = stackUnavailable() ?? postgresUnavailable();
if (skip) console.log(`# pacs-sync-outage skipped: ${skip}`);
let stack: Stack | undefined;
let dir = '';
let modelDir = '';

before(async () => {
  if (skip) return;
  dir = tempDir('pacs-sync-outage');
  modelDir = await makeTinyModel(path.join(dir, 'model'));
  stack = startStack('pacs-sync-outage', ['postgresql', 'orthanc']);
});
after(() => {
  stopStack(stack);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
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
  const poll = spawn(
    process.execPath,
    [CLI, 'orthanc', 'sync', '--interval', '0.5', '--since-start', '--state', state, '--json'],
    { env: { ...process.env, ...stack!.env, CXR_MODEL: modelDir } },
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
    // Two polls that met the outage (each predicted the film, then could not record it), and still running.
    const retries = () => err.match(/audit log[^\n]*postgres:\/\/cxr:\*+@[^\n]*; retrying in 0\.5 s/g) ?? [];
    await until(
      () => retries().length >= 2,
      20_000,
      () => `no retry of the audit log:\n${err}`,
    );
    assert.equal(poll.exitCode, null, err);
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
    await assertOneResultEach(stack!, new Map([[film.sopInstanceUid, film.studyInstanceUid]]));
    assert.deepEqual(await auditKeys(), [film.sopInstanceUid], 'one audit row');
  } finally {
    if (poll.exitCode === null) poll.kill('SIGKILL');
  }
});
