// Hospital IT setting cxr up from docs/deployment.md and docs/api.md, on the services of scripts/stack.sh.
//
// PostgreSQL credentials from a pass file (PGPASSFILE, as the docs advise over a password in CXR_DB): the driver's
// own pass-file support printed a Node DeprecationWarning on stderr at the first connection (a line that is not
// JSON in `cxr serve`'s log, and support its next major drops), and with no password found anywhere (no entry for
// the role, a file others can read, which PostgreSQL ignores) the login failed as "SASL:
// SCRAM-SERVER-FIRST-MESSAGE: client password must be a string", which says nothing of where a password goes.
//
// Chest films whose modality writes BodyPartExamined THORAX (or LUNG) were skipped by `cxr orthanc sync`, `cxr
// enqueue --orthanc-all` and POST /jobs with orthancInstances ("body part THORAX is not CHEST"), so no result ever
// reached their studies, while `cxr predict` and POST /predictions read the same file as a chest film (their check
// takes CHEST, THORAX and LUNG). The PACS now takes what the model reads as a chest.
//
// `cxr serve` read Orthanc from CXR_ORTHANC_* only, while the sync, `cxr enqueue` and `cxr worker` also take the
// mode-600 config file the docs advise for the password: a site keeping it there got 503 NO_PACS for every POST
// /jobs with orthancInstances, and `--orthanc-config` was refused as an unknown option. serve now takes it too.
//
// An Orthanc without its DICOMweb plugin (Debian's `orthanc` without `orthanc-dicomweb`, or the plugin not in its
// "Plugins") answers the STOW-RS of every result 404: the sync stopped with "cxr: POST /dicom-web/studies: HTTP 404:
// {" and Orthanc's JSON over nine more lines, naming neither the plugin nor what to do. Now one line says it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { imageChecks } from '../src/explain/image_checks';
import { classifyInstance } from '../src/pacs';
import { CLI, DICOM_FILE, makeTinyModel, runCli, spawnServer, tempDir, XRAY_JPEG } from './serve-fixtures';
import { startOrthancProxy } from './orthanc-proxy';
import { orthanc, postgresUnavailable, type Stack, stackUnavailable, startStack, stopStack } from './stack-fixture';

const skipPg = postgresUnavailable();
const skipStack = stackUnavailable();
// One stack for the file: PostgreSQL for the audit log's login, Orthanc and Redis for the job queue.
let stackUp: Stack | undefined;
let dir = '';
let modelDir = '';

before(async () => {
  dir = tempDir('integrator-s37');
  modelDir = await makeTinyModel(path.join(dir, 'model'));
  const services = [...(skipPg ? [] : ['postgresql']), ...(skipStack ? [] : ['orthanc', 'redis'])];
  if (services.length > 0) stackUp = startStack('integrator-s37', services);
});
after(() => {
  stopStack(stackUp);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** The stack's CXR_DB split into the URL without its password, and the password. */
function pgLogin(): { url: string; password: string; host: string; port: string } {
  const u = new URL(stackUp!.env.CXR_DB);
  const password = decodeURIComponent(u.password);
  u.password = '';
  return { url: u.toString(), password, host: u.hostname, port: u.port };
}

/** `cxr predict --db URL` on one film, HOME in the temp folder (no ~/.pgpass of the machine's) and no PG* vars. */
function predictWith(url: string, env: Record<string, string>) {
  const base: NodeJS.ProcessEnv = { ...process.env, HOME: dir, CXR_MODEL: modelDir };
  for (const k of Object.keys(base)) if (k.startsWith('PG') || k === 'CXR_DB') delete base[k];
  return spawnSync(process.execPath, [CLI, 'predict', '--db', url, '--threads', '1', XRAY_JPEG], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...base, ...env },
  });
}

test('PostgreSQL password from PGPASSFILE: taken without a DeprecationWarning; none found is said plainly', {
  skip: skipPg ?? false,
  timeout: 300_000,
}, () => {
  const { url, password, host, port } = pgLogin();
  const passFile = path.join(dir, 'pgpass');
  // A comment, a line for another role, then the one that matches (a colon in a password is escaped as \:).
  fs.writeFileSync(passFile, `# cxr\n${host}:${port}:cxr:someone:else\n*:${port}:cxr:cxr:${password}\n`, {
    mode: 0o600,
  });
  const ok = predictWith(url, { PGPASSFILE: passFile });
  assert.equal(ok.status, 0, ok.stderr);
  assert.ok(!/DeprecationWarning|pgpass support/.test(ok.stderr), `no deprecation warning:\n${ok.stderr}`);
  assert.ok(/written to the audit log/.test(ok.stderr), ok.stderr);

  const fromEnv = predictWith(url, { PGPASSWORD: password });
  assert.equal(fromEnv.status, 0, fromEnv.stderr);

  // No password anywhere: one line saying where one goes, not the SCRAM exchange's words.
  const none = predictWith(url, {});
  assert.equal(none.status, 1, none.stderr);
  assert.ok(!/SASL|SCRAM|must be a string/.test(none.stderr), `plain words:\n${none.stderr}`);
  assert.ok(/no password/.test(none.stderr) && /PGPASSFILE/.test(none.stderr), none.stderr);
  assert.ok(!none.stderr.includes(password), 'the password is never printed');

  // A pass file without a line for this role and database: named, with what it lacks.
  const other = path.join(dir, 'pgpass-other');
  fs.writeFileSync(other, `${host}:${port}:cxr:someone:else\n`, { mode: 0o600 });
  const missing = predictWith(url, { PGPASSFILE: other });
  assert.equal(missing.status, 1, missing.stderr);
  assert.ok(missing.stderr.includes(other) && /no line for/.test(missing.stderr), missing.stderr);

  // A pass file others can read is ignored, as PostgreSQL's own tools ignore it: said, with the fix.
  fs.chmodSync(passFile, 0o644);
  const open = predictWith(url, { PGPASSFILE: passFile });
  assert.equal(open.status, 1, open.stderr);
  assert.ok(/chmod 600/.test(open.stderr) && open.stderr.includes(passFile), open.stderr);
  assert.ok(!open.stderr.includes(password), 'the password is never printed');
});

test('the PACS takes a chest film by the body parts the model reads as a chest (THORAX, LUNG), as predict does', () => {
  const film = (bodyPart: string) => ({
    Modality: 'CR',
    BodyPartExamined: bodyPart,
    SOPInstanceUID: '2.25.11',
    StudyInstanceUID: '2.25.12',
    Manufacturer: 'ACME',
  });
  for (const part of ['CHEST', 'THORAX', 'LUNG', 'thorax ', '']) {
    assert.deepEqual(classifyInstance(film(part)), { accept: true }, `body part '${part}' is a chest film`);
  }
  assert.deepEqual(classifyInstance(film('HAND')), { accept: false, reason: 'body part HAND is not CHEST' });
  // One rule with the image check of every prediction: what it warns about as no chest, the PACS skips.
  const pixels = new Uint8Array(64 * 64).fill(128);
  for (const part of ['CHEST', 'THORAX', 'LUNG', 'CHESTABDOMEN', 'HAND', 'SKULL', 'ABDOMEN']) {
    const warned = imageChecks({ pixels, size: 64, bodyPart: part }).some((c) => c.code === 'BODY_PART');
    assert.equal(classifyInstance(film(part)).accept, !warned, part);
  }
});

/** The DICOM sample stored in the stack's Orthanc: its Orthanc instance id. */
async function storeSample(stack: Stack): Promise<string> {
  const stored = await orthanc(stack, '/instances', {
    method: 'POST',
    body: new Uint8Array(fs.readFileSync(DICOM_FILE)),
  });
  const text = await stored.text();
  assert.equal(stored.status, 200, text);
  return (JSON.parse(text) as { ID: string }).ID;
}

test('cxr serve --orthanc-config: Orthanc jobs from the config file the worker and enqueue read', {
  skip: skipStack ?? false,
  timeout: 300_000,
}, async () => {
  const stack = stackUp!;
  const instance = await storeSample(stack);
  const config = path.join(dir, 'orthanc.json');
  const { CXR_ORTHANC_URL: url, CXR_ORTHANC_USER: user, CXR_ORTHANC_PASSWORD: password } = stack.env;
  fs.writeFileSync(config, JSON.stringify({ url, user, password }), { mode: 0o600 });
  const server = await spawnServer(['--model', modelDir, '--orthanc-config', config], {
    CXR_REDIS_URL: stack.env.CXR_REDIS_URL,
    CXR_ORTHANC_URL: '',
    CXR_DB: path.join(dir, 'serve-audit.db'),
  });
  try {
    const res = await fetch(`${server.url}/api/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ orthancInstances: [instance] }),
    });
    const body = await res.text();
    assert.equal(res.status, 202, body);
    const job = (JSON.parse(body) as { jobs: { id: string; status: string }[] }).jobs[0];
    assert.equal(job.status, 'queued', body);
    assert.ok(job.id.startsWith('orthanc-'), body);
    assert.ok(!server.log().includes(password), 'the Orthanc password is never logged');
  } finally {
    await server.stop();
  }
});

test('an Orthanc without the DICOMweb plugin: the sync says so in one line, naming the plugin', {
  skip: skipStack ?? false,
  timeout: 300_000,
}, async () => {
  const stack = stackUp!;
  await storeSample(stack);
  // Orthanc's own answer to a route no plugin serves, word for word (HttpDescribeErrors, as the stack sets it).
  const unknown = [
    '{',
    '\t"HttpError" : "Not Found",',
    '\t"HttpStatus" : 404,',
    '\t"Message" : "Unknown resource",',
    '\t"Method" : "POST",',
    '\t"OrthancError" : "Unknown resource",',
    '\t"OrthancStatus" : 17,',
    '\t"Uri" : "/dicom-web/studies"',
    '}',
    '',
  ].join('\n');
  const proxy = await startOrthancProxy(stack.env.CXR_ORTHANC_URL, {
    intercept: (req, res) => {
      if (!req.url?.startsWith('/dicom-web/')) return false;
      res.writeHead(404, { 'content-type': 'application/json' }).end(unknown);
      return true;
    },
  });
  try {
    // Not spawnSync: the proxy runs in this process, and must answer while the sync runs.
    const r = await runCli(
      ['orthanc', 'sync', '--once', '--since-start', '--no-audit', '--state', path.join(dir, 'noweb.json')],
      { env: { ...process.env, ...stack.env, CXR_ORTHANC_URL: proxy.url, CXR_MODEL: modelDir } },
    );
    assert.equal(r.code, 1, r.stderr);
    const last = r.stderr.trimEnd().split('\n').at(-1) ?? '';
    assert.ok(/^cxr: /.test(last) && /DICOMweb plugin/.test(last), `one line naming the plugin:\n${r.stderr}`);
    assert.ok(/orthanc-dicomweb/.test(last) && /POST \/dicom-web\/studies/.test(last), last);
    assert.ok(!r.stderr.includes('"HttpStatus"'), `not Orthanc's JSON over many lines:\n${r.stderr}`);
  } finally {
    await proxy.close();
  }
});
