// POST/GET /api/v1/jobs on a real `cxr serve` and `cxr worker` sharing the stack's Redis and audit
// log: films uploaded in one request, 202 with job ids, the prediction once a worker is done (the
// shape of POST /predictions); the same film again finds the finished job; an upload survives a
// restart of the server before any worker took it; a server without a queue answers 503.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startModelStack, stopModelStack } from './queue-stack';
import { CLI, DICOM_FILE, spawnServer, XRAY_JPEG, type ChildServer } from './serve-fixtures';
import { type Stack, stackUnavailable } from './stack-fixture';

const skip = stackUnavailable();
let stack: Stack | undefined;
let dir = '';
let modelDir = '';
const children: ChildProcess[] = [];
const servers: ChildServer[] = [];

before(async () => {
  if (skip) return;
  ({ dir, modelDir, stack } = await startModelStack('queue-api', []));
});
after(async () => {
  for (const s of servers) await s.stop('SIGKILL');
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await stopModelStack({ stack, dir });
});

const env = () => ({ ...stack!.env, CXR_MODEL: modelDir, CXR_API_TOKEN: 'tok-1234' });
const auth = { authorization: 'Bearer tok-1234' };

async function serve(extra: Record<string, string> = {}): Promise<ChildServer> {
  const s = await spawnServer(['--threads', '1'], { ...env(), ...extra });
  servers.push(s);
  return s;
}

function films(...files: string[]): FormData {
  const form = new FormData();
  for (const f of files) form.append('image', new Blob([new Uint8Array(fs.readFileSync(f))]), path.basename(f));
  return form;
}

async function startWorker(): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CLI, 'worker', '--threads', '1'], { env: { ...process.env, ...env() } });
  children.push(child);
  let log = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      log += d;
      if (/consuming/.test(log)) resolve();
    });
    child.on('close', (code) => reject(new Error(`worker exited ${code}: ${log}`)));
  });
  return child;
}

interface JobAnswer {
  id: string;
  status: string;
  outcome: string | null;
  prediction: Record<string, unknown> | null;
  error: string | null;
}

async function until(server: ChildServer, url: string, status: string): Promise<JobAnswer> {
  const end = Date.now() + 90_000;
  for (;;) {
    const res = await fetch(server.url + url, { headers: auth });
    assert.equal(res.status, 200, server.log());
    const body = (await res.json()) as JobAnswer;
    if (body.status === status) return body;
    assert.notEqual(body.status, 'failed', body.error ?? '');
    if (Date.now() > end) throw new Error(`job still ${body.status}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('POST /api/v1/jobs → 202, a worker predicts, GET gives the prediction; resubmitting reuses it', {
  skip: skip ?? false,
  timeout: 400_000,
}, async () => {
  let server = await serve();
  const noAuth = await fetch(`${server.url}/api/v1/jobs`, { method: 'POST', body: films(XRAY_JPEG) });
  assert.equal(noAuth.status, 401, 'behind the token like every other route');

  const posted = await fetch(`${server.url}/api/v1/jobs?heatmap=false`, {
    method: 'POST',
    headers: auth,
    body: films(DICOM_FILE, XRAY_JPEG),
  });
  assert.equal(posted.status, 202, await posted.clone().text());
  const { jobs } = (await posted.json()) as { jobs: { id: string; status: string; statusUrl: string; file: string }[] };
  assert.deepEqual(
    jobs.map((j) => j.status),
    ['queued', 'queued'],
  );
  // An upload's job is named by its bytes, not its UID (two files may share one: the sample data has such a pair).
  assert.match(jobs[0].id, /^sha256-[0-9a-f]{64}~[0-9a-f]{64}~balanced$/);
  assert.match(jobs[1].id, /^sha256-[0-9a-f]{64}~/);
  assert.equal(jobs[1].file, path.basename(XRAY_JPEG));
  const w0 = await fetch(server.url + jobs[0].statusUrl, { headers: auth });
  const waiting = (await w0.json()) as JobAnswer;
  assert.equal(w0.status, 200, JSON.stringify(waiting));
  assert.deepEqual({ status: waiting.status, prediction: waiting.prediction }, { status: 'waiting', prediction: null });
  // /metrics reads the queue at scrape time: both films wait, none runs (no worker yet).
  const metrics = await (await fetch(`${server.url}/metrics`, { headers: auth })).text();
  assert.match(metrics, /^cxr_queue_waiting 2$/m);
  assert.match(metrics, /^cxr_queue_active 0$/m);

  // The same JPEG at another operating point: its own job, sharing the film held for the first.
  const other = await fetch(`${server.url}/api/v1/jobs?heatmap=false&operatingPoint=screening`, {
    method: 'POST',
    headers: auth,
    body: films(XRAY_JPEG),
  });
  assert.equal(other.status, 202, await other.clone().text());
  const screening = ((await other.json()) as { jobs: { id: string; status: string; statusUrl: string }[] }).jobs[0];
  assert.deepEqual(screening, { ...screening, id: jobs[1].id.replace(/balanced$/, 'screening'), status: 'queued' });

  // The uploads are held in Redis: a restart of the server before any worker loses nothing.
  assert.equal(await server.stop(), 0);
  server = await serve();
  const worker = await startWorker();
  // Whichever of the two jobs of the JPEG runs first, the other still finds its film.
  const screened = await until(server, screening.statusUrl, 'completed');
  assert.equal(screened.outcome, 'predicted', JSON.stringify(screened));
  assert.equal(screened.prediction!.operatingPoint, 'screening');
  for (const j of jobs) {
    const done = await until(server, j.statusUrl, 'completed');
    assert.equal(done.outcome, 'predicted', JSON.stringify(done));
    const p = done.prediction!;
    assert.ok(typeof p.probability === 'number' && p.probability >= 0 && p.probability <= 1);
    assert.equal(p.requestedBy, 'default', 'the token that queued it');
    assert.equal(p.operatingPoint, 'balanced');
    assert.ok((p.verdict as { status: string }).status, 'the verdict, as POST /predictions gives it');
    // The prediction is in the shared audit log, under its id.
    const row = await fetch(`${server.url}/api/v1/predictions/${p.id as string}`, { headers: auth });
    assert.equal(row.status, 200);
    assert.equal(((await row.json()) as { probability: number }).probability, p.probability);
  }

  // The same film again: the finished job, no new prediction.
  const again = await fetch(`${server.url}/api/v1/jobs?heatmap=false`, {
    method: 'POST',
    headers: auth,
    body: films(DICOM_FILE),
  });
  assert.equal(again.status, 202);
  const a = ((await again.json()) as { jobs: { id: string; status: string }[] }).jobs[0];
  assert.deepEqual(a, { ...a, id: jobs[0].id, status: 'already-done' });

  // A JPEG with a stated adult's age: another result (the answer is outside the population), its own job; a
  // child's age answers as no age does, so it finds the finished job.
  const adult = await fetch(`${server.url}/api/v1/jobs?heatmap=false&patientAge=34`, {
    method: 'POST',
    headers: auth,
    body: films(XRAY_JPEG),
  });
  assert.equal(adult.status, 202, await adult.clone().text());
  const aj = ((await adult.json()) as { jobs: { id: string; status: string; statusUrl: string }[] }).jobs[0];
  assert.equal(aj.status, 'queued');
  assert.equal(aj.id, jobs[1].id.replace('~', '+age-over-10~'));
  assert.ok(aj.statusUrl.endsWith(encodeURIComponent(aj.id)), aj.statusUrl);
  const adultDone = await until(server, aj.statusUrl, 'completed');
  const verdict = adultDone.prediction!.verdict as { status: string; reasons: { code: string }[] };
  assert.equal(verdict.status, 'outside-population', JSON.stringify(verdict));
  assert.ok(verdict.reasons.some((r) => r.code === 'AGE'));
  assert.notEqual(adultDone.prediction!.id, (await until(server, jobs[1].statusUrl, 'completed')).prediction!.id);
  const childAge = await fetch(`${server.url}/api/v1/jobs?heatmap=false&patientAge=3.5`, {
    method: 'POST',
    headers: auth,
    body: films(XRAY_JPEG),
  });
  const cj = ((await childAge.json()) as { jobs: { id: string; status: string }[] }).jobs[0];
  assert.deepEqual(cj, { ...cj, id: jobs[1].id, status: 'already-done' });
  const pacsAge = await fetch(`${server.url}/api/v1/jobs?patientAge=34`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ orthancInstances: ['0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d-0a1b2c3d'] }),
  });
  assert.equal(pacsAge.status, 400);
  assert.match(((await pacsAge.json()) as { detail: string }).detail, /'patientAge' is for uploaded films/);
  const upper = await fetch(`${server.url}/api/v1/jobs?patientAge=34`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ orthancInstances: ['0A1B2C3D-0A1B2C3D-0A1B2C3D-0A1B2C3D-0A1B2C3D'] }),
  });
  assert.equal(upper.status, 400);
  assert.match(((await upper.json()) as { detail: string }).detail, /'patientAge' is for uploaded films/, 'id taken');

  // Errors are problem+json.
  const missing = await fetch(`${server.url}/api/v1/jobs/sha256-${'0'.repeat(64)}~${'0'.repeat(64)}~balanced`, {
    headers: auth,
  });
  assert.equal(missing.status, 404);
  assert.match(missing.headers.get('content-type') ?? '', /application\/problem\+json/);
  const bad = await fetch(`${server.url}/api/v1/jobs/..%2Fetc`, { headers: auth });
  assert.equal(bad.status, 400);
  const badJson = await fetch(`${server.url}/api/v1/jobs`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ orthancInstances: ['nope'] }),
  });
  assert.equal(badJson.status, 400);
  assert.match(((await badJson.json()) as { detail: string }).detail, /orthancInstances\.0: an Orthanc instance id/);

  // The OpenAPI document describes both routes.
  const doc = (await (await fetch(`${server.url}/api/v1/openapi.json`)).json()) as { paths: Record<string, unknown> };
  assert.ok(doc.paths['/api/v1/jobs'] && doc.paths['/api/v1/jobs/{id}']);

  worker.kill('SIGTERM');
  assert.equal(await server.stop(), 0);

  // Without a queue: 503 with a clear message.
  const plain = await serve({ CXR_REDIS_URL: '' });
  const off = await fetch(`${plain.url}/api/v1/jobs`, { method: 'POST', headers: auth, body: films(XRAY_JPEG) });
  assert.equal(off.status, 503);
  assert.match(((await off.json()) as { detail: string }).detail, /no job queue: start cxr serve with CXR_REDIS_URL/);
});
