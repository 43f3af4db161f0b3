// Orthanc behind a proxy at /pacs/, and cxr configured with the proxy's root (the prefix left out), on the
// stack's Orthanc and Redis. Every route is then the proxy's 404, and POST /jobs answered 422 UNKNOWN_INSTANCE
// for every film of the archive: the client was told its ids were wrong when the server's URL was. Now a 404
// asks once whether Orthanc is there at all (GET /system), and a wrong path is a 503 that says what to check;
// `cxr orthanc sync` says the same at start.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OrthancClient, OrthancError } from '../src/pacs';
import { type JobQueue, openQueue, queueApi, queueDepth } from '../src/queue';
import { PACS_LOGIN_RETRY_AFTER_S } from '../src/queue/api';
import { HttpError } from '../src/serve/http_error';
import { type OrthancProxy, startOrthancProxy } from './orthanc-proxy';
import { CLI, DICOM_FILE, tempDir } from './serve-fixtures';
import { orthanc, type Stack, stackUnavailable, startStack, stopStack } from './stack-fixture';

const skip = stackUnavailable();
const MODEL = { sha256: 'e'.repeat(64), defaultOperatingPoint: 'balanced' };
const OPTS = { heatmap: false, requestedBy: 'tok' };
let stack: Stack | undefined;
let proxy: OrthancProxy | undefined;
let portal: OrthancProxy | undefined;
let dir = '';
let queue: JobQueue;
let id = '';

before(async () => {
  if (skip) return;
  dir = tempDir('orthanc-base-path');
  stack = startStack('orthanc-base-path', ['orthanc', 'redis']);
  queue = openQueue(stack.env.CXR_REDIS_URL, MODEL.sha256);
  const res = await orthanc(stack, '/instances', { method: 'POST', body: new Uint8Array(fs.readFileSync(DICOM_FILE)) });
  assert.equal(res.status, 200);
  id = ((await res.json()) as { ID: string }).ID;
  proxy = await startOrthancProxy(stack.env.CXR_ORTHANC_URL, { prefix: '/pacs' });
  portal = await startOrthancProxy(stack.env.CXR_ORTHANC_URL, { prefix: '/pacs', elsewhere: 'html-page' });
});
after(async () => {
  await proxy?.close();
  await portal?.close();
  await queue?.close();
  stopStack(stack);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const login = () => ({ user: stack!.env.CXR_ORTHANC_USER, password: stack!.env.CXR_ORTHANC_PASSWORD });
/** Made-up ids, as many as a batch may hold: each would be a 404 through the wrong URL. */
const madeUp = (n: number) =>
  Array.from({ length: n }, (_, i) => `${i.toString(16).padStart(8, '0')}-00000000-00000000-00000000-00000000`);
const systemProbes = (p: OrthancProxy, since: number) =>
  p.seen.slice(since).filter((r) => /\/system$/.test(r.path)).length;

test('POST /jobs through a URL without the proxy prefix: 503 PACS_UNAVAILABLE saying the path looks wrong', {
  skip: skip ?? false,
  timeout: 60_000,
}, async () => {
  const logged: string[] = [];
  const api = queueApi({
    queue,
    model: MODEL,
    orthanc: new OrthancClient({ url: proxy!.url, ...login() }),
    log: (l) => logged.push(l),
  });
  const depth0 = await queueDepth(queue);
  const seen0 = proxy!.seen.length;
  const e = await api.submitOrthancAll([id, ...madeUp(30)], OPTS).catch((x: unknown) => x);
  assert.ok(e instanceof HttpError, String(e));
  assert.deepEqual([e.statusCode, e.code], [503, 'PACS_UNAVAILABLE'], e.message);
  assert.match(e.message, /the path of this server's PACS \(Orthanc\) URL looks wrong/);
  assert.match(e.message, /must check CXR_ORTHANC_URL \(behind a proxy it includes the proxy's path/);
  assert.match(e.message, /nothing in this request was queued/);
  assert.equal(e.retryAfterS, PACS_LOGIN_RETRY_AFTER_S, 'a configuration to fix: not retried every second');
  assert.ok(!e.message.includes(stack!.env.CXR_ORTHANC_PASSWORD));
  // The server's log has the URL (no login) and what Orthanc's URL answered.
  const log = logged.join('\n');
  assert.match(log, new RegExp(`Orthanc URL ${proxy!.url}: GET /system there gave HTTP 404`));
  assert.ok(!log.includes(stack!.env.CXR_ORTHANC_PASSWORD), log);
  assert.equal(systemProbes(proxy!, seen0), 1, 'asked once for the whole batch, not per film');
  assert.ok(proxy!.seen.length - seen0 < 20, `stopped looking films up: ${proxy!.seen.length - seen0} requests`);
  assert.deepEqual(await queueDepth(queue), depth0);
});

test('through the right URL an unknown id is still 422 UNKNOWN_INSTANCE, and a known one is queued', {
  skip: skip ?? false,
  timeout: 60_000,
}, async () => {
  const api = queueApi({ queue, model: MODEL, orthanc: new OrthancClient({ url: `${proxy!.url}/pacs/`, ...login() }) });
  const seen0 = proxy!.seen.length;
  const unknown = madeUp(3);
  const e = await api.submitOrthancAll([id, ...unknown], OPTS).catch((x: unknown) => x);
  assert.ok(e instanceof HttpError, String(e));
  assert.deepEqual([e.statusCode, e.code], [422, 'UNKNOWN_INSTANCE'], e.message);
  assert.match(e.message, new RegExp(`no instance ${unknown.join(', ')}: nothing in this request was queued`));
  assert.equal(systemProbes(proxy!, seen0), 1, 'one GET /system for the three 404s');
  const ok = await api.submitOrthancAll([id], OPTS);
  assert.equal(ok[0].status, 'queued');
  const seen1 = proxy!.seen.length;
  await queue.remove(ok[0].id!);
  assert.equal((await api.submitOrthancAll([id], OPTS))[0].status, 'queued');
  assert.equal(systemProbes(proxy!, seen1), 0, 'no 404, no probe');
  await queue.obliterate({ force: true });
});

test('checkConnection (worker and sync start-up) names a wrong path, never the login in the URL', {
  skip: skip ?? false,
  timeout: 60_000,
}, async () => {
  const { user, password } = login();
  const inUrl = new URL(proxy!.url);
  inUrl.username = user;
  inUrl.password = password;
  for (const url of [inUrl.href, portal!.url]) {
    const e = await new OrthancClient({ url, ...(url === inUrl.href ? {} : login()) })
      .checkConnection()
      .catch((x: unknown) => x);
    assert.ok(e instanceof OrthancError, String(e));
    assert.equal(e.code, 'ORTHANC_BAD_PATH', e.message);
    assert.equal(e.outage, false);
    assert.match(e.message, /so no Orthanc answers under this URL: its path looks wrong/);
    assert.match(e.message, /Check CXR_ORTHANC_URL .*behind a proxy the URL must include the path/);
    assert.ok(!e.message.includes(password), e.message);
  }
  // The change feed and the archive's list (the sync's polls, `cxr enqueue --orthanc-all`) say it too.
  const root = new OrthancClient({ url: proxy!.url, ...login() });
  for (const listing of [root.changes(0, 10), root.lastChange(), root.instances(0, 10)]) {
    const e = await listing.catch((x: unknown) => x);
    assert.ok(e instanceof OrthancError && e.code === 'ORTHANC_BAD_PATH', String(e));
  }
  assert.deepEqual(
    await new OrthancClient({ url: `${proxy!.url}/pacs`, ...login() }).checkConnection(),
    { name: 'cxr-stack', version: '1.10.1' },
    'the prefixed URL is Orthanc',
  );

  // A child process, not spawnSync: the proxy answers from this process's event loop.
  const child = spawn(
    process.execPath,
    [CLI, 'orthanc', 'sync', '--once', '--no-audit', '--state', path.join(dir, 'sync.json')],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: {
        ...process.env,
        CXR_ORTHANC_URL: `${proxy!.url}/`,
        CXR_ORTHANC_USER: user,
        CXR_ORTHANC_PASSWORD: password,
      },
    },
  );
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const r = { status, stderr };
  assert.equal(r.status, 1, r.stderr);
  assert.match(
    r.stderr,
    /GET \/system there gave HTTP 404, so no Orthanc answers under this URL: its path looks wrong/,
  );
  assert.ok(!r.stderr.includes(password), r.stderr);
});
