// Hospital IT, second walk (the first: integrator-s37.test.ts), on the services of scripts/stack.sh.
//
// `cxr worker` checked Orthanc with GET /system only: an Orthanc without its DICOMweb plugin took the worker in, and
// each Orthanc job failed at its STOW-RS after its tries. It is now said at start, one line, exit 1.
//
// `cxr enqueue` printed counts only: a file queued from the command line could not be followed with GET /jobs/ID.
// Each job is now named (a line on stderr, and `jobs` in --json); the summary line is as it was.
//
// `cxr serve --redis-config` (or --orthanc-config) with a file of bad JSON logged a fatal line carrying the stack
// trace, and V8's words quote the start of the file (a password in it included). Now one line names the file.
//
// POST /jobs with a JSON body that does not fit answered in zod's words ("orthancInstances: Invalid input: expected
// array, received undefined"); now in plain words, saying what is expected.
//
// A job waiting out an outage answered `status: waiting` with `error: null`; it now says why its last try failed.
//
// Lateral views in the PACS (ViewPosition LL, RL, LATERAL...) were predicted, each answered "cannot assess": a PA +
// lateral exam got one such report per lateral film. The sync and `cxr enqueue --orthanc-all` now skip them
// (counted apart); a POST /jobs naming one is still answered.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { classifyInstance, LATERAL_REASON, OrthancClient } from '../src/pacs';
import { buildApp } from '../src/serve/app';
import { type Element, imageElements, writeDicom } from './dicom-writer';
import { startOrthancProxy } from './orthanc-proxy';
import { CLI, idleJobs, makeTinyModel, runCli, serverParts, spawnServer, tempDir, XRAY_JPEG } from './serve-fixtures';
import { type Stack, stackUnavailable, startStack, stopStack, storeInstance } from './stack-fixture';

const skipStack = stackUnavailable();
let stackUp: Stack | undefined;
let dir = '';
let modelDir = '';

before(async () => {
  dir = tempDir('integrator2-s37');
  modelDir = await makeTinyModel(path.join(dir, 'model'));
  if (!skipStack) stackUp = startStack('integrator2-s37', ['orthanc', 'redis']);
});
after(() => {
  stopStack(stackUp);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** A small 8-bit DX chest film of its own (UIDs from `n`), with this ViewPosition. */
function dxFilm(n: number, view: string): Buffer {
  const pixels = new Uint8Array(128 * 128);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i % 128) ^ (n * 37);
  const uid = (tag: number): Element => ({ tag, vr: 'UI', value: `2.25.${737000 + n * 10 + (tag & 0xf)}` });
  const extra: Element[] = [
    { tag: 0x00080060, vr: 'CS', value: 'DX' },
    { tag: 0x00185101, vr: 'CS', value: view },
    uid(0x00080018),
    uid(0x0020000d),
    uid(0x0020000e),
  ];
  return writeDicom(imageElements({ rows: 128, columns: 128, bitsAllocated: 8, pixels, extra }));
}

const store = (bytes: Buffer) => storeInstance(stackUp!, bytes);

test('lateral views: skipped by what the PACS offers, read when a request names them', () => {
  const film = (view: string) => ({
    Modality: 'DX',
    BodyPartExamined: 'CHEST',
    ViewPosition: view,
    SOPInstanceUID: '2.25.21',
    StudyInstanceUID: '2.25.22',
  });
  for (const view of ['LL', 'RL', 'LATERAL', 'll ']) {
    assert.deepEqual(classifyInstance(film(view)), { accept: false, reason: LATERAL_REASON }, view);
    assert.deepEqual(classifyInstance(film(view), { lateral: 'read' }), { accept: true }, `${view} named`);
  }
  for (const view of ['PA', 'AP', '']) assert.deepEqual(classifyInstance(film(view)), { accept: true }, view);
});

test('cxr serve: a Redis or Orthanc config file of bad JSON is one log line naming the file, no stack', () => {
  const env: NodeJS.ProcessEnv = { ...process.env, CXR_MODEL: modelDir, CXR_DB: path.join(dir, 'bad.db') };
  delete env.CXR_REDIS_URL;
  delete env.CXR_ORTHANC_URL;
  const bad = path.join(dir, 'bad-config.json');
  // Not JSON, as a hand-written file may be: V8's complaint quotes its start, the password with it.
  fs.writeFileSync(bad, 'url: redis://:hunter2secret@localhost:6379\n', { mode: 0o600 });
  for (const option of ['--redis-config', '--orthanc-config']) {
    const r = spawnSync(process.execPath, [CLI, 'serve', '--port', '0', option, bad], {
      encoding: 'utf8',
      env,
      timeout: 60_000,
    });
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `one line:\n${r.stderr}`);
    const line = JSON.parse(lines[0]) as { msg: string; err?: unknown };
    assert.equal(line.err, undefined, `no error object with its stack:\n${r.stderr}`);
    assert.ok(!/"stack"|\\n\s+at /.test(r.stderr), `no stack trace:\n${r.stderr}`);
    assert.ok(line.msg.includes(bad) && /is not JSON/.test(line.msg), line.msg);
    assert.ok(/Redis|Orthanc/.test(line.msg), `says whose file: ${line.msg}`);
    assert.ok(!r.stderr.includes('hunter2secret'), 'the password in the file is never printed');
  }
});

let app: FastifyInstance | undefined;
const parts = serverParts('integrator2-s37-api', {
  ready: async ({ predictor, audit }) => {
    app = await buildApp({ predictor, audit, jobs: idleJobs() });
  },
  closing: () => app?.close(),
});

test('POST /jobs: a JSON body that does not fit is answered in plain words, saying what is expected', async () => {
  assert.ok(parts);
  const post = async (body: string) => {
    const res = await app!.inject({
      method: 'POST',
      url: '/api/v1/jobs',
      headers: { 'content-type': 'application/json' },
      payload: body,
    });
    assert.equal(res.statusCode, 400, res.body);
    const p = res.json() as { code: string; detail: string };
    assert.equal(p.code, 'INVALID_REQUEST');
    assert.ok(!/Invalid input|received|Too small|Unrecognized/.test(p.detail), `not zod's words: ${p.detail}`);
    return p.detail;
  };
  const missing = await post('{}');
  assert.ok(/'orthancInstances' is missing/.test(missing) && /\{"orthancInstances": \[/.test(missing), missing);
  assert.ok(/must be a list of Orthanc instance ids/.test(await post('{"orthancInstances": "abc"}')));
  assert.ok(/expected a JSON object/.test(await post('[]')));
  assert.ok(/is empty: name at least one/.test(await post('{"orthancInstances": []}')));
  const id = '0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d';
  assert.ok(/unknown field 'ids'/.test(await post(JSON.stringify({ orthancInstances: [id], ids: [] }))));
  const tooMany = await post(JSON.stringify({ orthancInstances: new Array(1001).fill(id) }));
  assert.ok(/more than 1000 ids/.test(tooMany), tooMany);
  // An id that is not one keeps its place, as before.
  assert.ok(
    /orthancInstances\.1: an Orthanc instance id/.test(await post(JSON.stringify({ orthancInstances: [id, 7] }))),
  );
});

/** `cxr worker ARGS`, killed after `ms` if it is still running (it then took jobs: it was meant to stop at start). */
function workerWithin(
  ms: number,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, 'worker', ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    }),
  );
}

test('cxr worker: an Orthanc without its DICOMweb plugin stops it at start, in one line naming the plugin', {
  skip: skipStack ?? false,
  timeout: 300_000,
}, async () => {
  const stack = stackUp!;
  // The stack's Orthanc has the plugin: the check passes.
  const { CXR_ORTHANC_URL: url, CXR_ORTHANC_USER: user, CXR_ORTHANC_PASSWORD: password } = stack.env;
  await new OrthancClient({ url, user, password }).checkDicomWeb();
  // Orthanc's answer to a route no plugin serves.
  const proxy = await startOrthancProxy(url, {
    intercept: (req, res) => {
      if (!req.url?.startsWith('/dicom-web/')) return false;
      res.writeHead(404, { 'content-type': 'application/json' }).end('{ "HttpStatus" : 404 }\n');
      return true;
    },
  });
  try {
    const r = await workerWithin(60_000, ['--db', path.join(dir, 'worker-noweb.db')], {
      ...process.env,
      ...stack.env,
      CXR_ORTHANC_URL: proxy.url,
      CXR_MODEL: modelDir,
    });
    assert.equal(r.code, 1, r.stderr);
    const last = r.stderr.trimEnd().split('\n').at(-1) ?? '';
    assert.ok(/^cxr: /.test(last) && /DICOMweb plugin/.test(last) && /orthanc-dicomweb/.test(last), r.stderr);
    assert.ok(!/consuming/.test(r.stderr), `no job was taken:\n${r.stderr}`);
  } finally {
    await proxy.close();
  }
});

/** A port nothing listens on (one the system just gave out and took back). */
function freePort(): Promise<number> {
  const server = net.createServer();
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    }),
  );
}

interface JobAnswer {
  id: string;
  status: string;
  error: string | null;
}

test('enqueue names its jobs; laterals are skipped by the backfill but answered when named; a waiting job says why', {
  skip: skipStack ?? false,
  timeout: 400_000,
}, async () => {
  const stack = stackUp!;
  const env = { ...process.env, ...stack.env, CXR_MODEL: modelDir };
  const cxr = (args: string[]) => runCli(args, { env, cwd: dir });
  const frontal = await store(dxFilm(1, 'PA'));
  const lateral = await store(dxFilm(2, 'LL'));

  // A file from the command line: its job named on stderr and in --json, the summary line as before.
  const text = await cxr(['enqueue', '--priority', 'normal', XRAY_JPEG]);
  assert.equal(text.code, 0, text.stderr);
  assert.ok(
    /^1 queued, 0 already queued/.test(text.stdout) && text.stdout.trim().split('\n').length === 1,
    text.stdout,
  );
  const named = new RegExp(`cxr enqueue: queued: ${XRAY_JPEG.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: job (\\S+)`);
  const fileJob = named.exec(text.stderr)?.[1];
  assert.ok(fileJob, `the job's id is printed:\n${text.stderr}`);
  const again = await cxr(['enqueue', '--json', XRAY_JPEG]);
  const counts = JSON.parse(again.stdout) as { alreadyQueued: number; jobs: { id: string; file: string }[] };
  assert.equal(counts.alreadyQueued, 1);
  assert.deepEqual(counts.jobs, [{ id: fileJob, status: 'already-queued', file: XRAY_JPEG }]);

  // The backfill: the lateral view is skipped, counted apart; the frontal one queued.
  const all = await cxr(['enqueue', '--orthanc-all', '--json']);
  assert.equal(all.code, 0, all.stderr);
  const backfill = JSON.parse(all.stdout) as { laterals: number; jobs: { orthancInstance: string }[] };
  assert.equal(backfill.laterals, 1, all.stdout);
  const instances = backfill.jobs.map((j) => j.orthancInstance);
  assert.ok(instances.includes(frontal) && !instances.includes(lateral), all.stdout);
  const line = await cxr(['enqueue', '--orthanc-all']);
  assert.ok(line.stdout.includes(', 1 lateral view skipped'), line.stdout);
  const sync = await cxr([
    'orthanc',
    'sync',
    '--once',
    '--since-start',
    '--queue',
    '--no-audit',
    '--state',
    path.join(dir, 'sync.json'),
  ]);
  assert.equal(sync.code, 0, sync.stderr);
  assert.ok(sync.stderr.includes(`1: ${LATERAL_REASON}`), sync.stderr);

  const server = await spawnServer(['--model', modelDir], {
    CXR_REDIS_URL: stack.env.CXR_REDIS_URL,
    CXR_ORTHANC_URL: stack.env.CXR_ORTHANC_URL,
    CXR_ORTHANC_USER: stack.env.CXR_ORTHANC_USER,
    CXR_ORTHANC_PASSWORD: stack.env.CXR_ORTHANC_PASSWORD,
    CXR_DB: path.join(dir, 'serve-audit.db'),
  });
  const job = async (id: string) => {
    const res = await fetch(`${server.url}/api/v1/jobs/${encodeURIComponent(id)}`);
    assert.equal(res.status, 200, id);
    return (await res.json()) as JobAnswer;
  };
  // A worker whose Orthanc is away (a port nobody listens on): the lateral's job fails for the outage and waits (a
  // long retry delay).
  const away = await freePort();
  const worker = spawn(
    process.execPath,
    [CLI, 'worker', '--db', path.join(dir, 'worker.db'), '--retry-delay', '600000', '--concurrency', '1'],
    { env: { ...env, CXR_ORTHANC_URL: `http://127.0.0.1:${away}` }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let workerLog = '';
  worker.stderr.on('data', (d) => (workerLog += d));
  try {
    assert.equal((await job(fileJob)).status !== undefined, true, 'the printed id is a job the API follows');
    // Named by a request, the lateral view is queued (its report will say why it cannot be assessed).
    const res = await fetch(`${server.url}/api/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ orthancInstances: [lateral] }),
    });
    const body = await res.text();
    assert.equal(res.status, 202, body);
    const asked = (JSON.parse(body) as { jobs: { id: string; status: string }[] }).jobs[0];
    assert.equal(asked.status, 'queued', body);
    let state = await job(asked.id);
    for (let i = 0; i < 120 && state.error === null; i++) {
      await new Promise((r) => setTimeout(r, 500));
      state = await job(asked.id);
    }
    assert.equal(state.status, 'waiting', JSON.stringify(state));
    assert.ok(state.error && /attempt 1 failed/.test(state.error), `${JSON.stringify(state)}\n${workerLog}`);
    assert.ok(/unreachable/.test(state.error), state.error);
  } finally {
    if (worker.exitCode === null && worker.signalCode === null) {
      const exited = new Promise((r) => worker.once('exit', r));
      worker.kill('SIGTERM');
      await exited;
    }
    await server.stop();
  }
});
