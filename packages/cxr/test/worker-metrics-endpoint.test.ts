// `cxr worker --metrics-port`'s endpoint and counters under what a review found, without Redis or a model:
// an error the server reports after it listens (EMFILE on accept) is logged, rate-limited, and never stops the
// worker; a client that dribbles its headers, or opens many connections, is cut off; every refusal code is a
// series at 0 before its first refusal (increase() sees the first one); the worker's close lets go of the port
// before the queue's Redis, so that no scrape reads the queue as away on a graceful restart; and --metrics-host
// without --metrics-port is refused, not ignored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { metricValue, parseMetrics, samplesOf } from './prometheus-text';
import { closeInOrder } from '../src/cli/worker';
import { REFUSED_CODES, serveWorkerMetrics, WorkerMetrics } from '../src/queue/metrics';
import { filmRefused } from '../src/queue/retry';

const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const LOCAL = '127.0.0.1';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('an error of the metrics server after it listens is logged, rate-limited, and the worker goes on', async () => {
  const lines: string[] = [];
  const endpoint = await serveWorkerMetrics(new WorkerMetrics({ defaultMetrics: false }), {
    host: LOCAL,
    port: 0,
    warn: (l) => lines.push(l),
  });
  try {
    // What Node emits when accept() fails for want of file descriptors; with no listener, emit() throws it.
    const emfile = () => Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', syscall: 'accept' });
    assert.doesNotThrow(() => {
      for (let i = 0; i < 3; i++) endpoint.server.emit('error', emfile());
    });
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0], /accept EMFILE/);
    // Still listening and answering.
    assert.equal((await fetch(endpoint.url)).status, 200);
  } finally {
    await endpoint.close();
  }
});

test('a client that dribbles its headers is cut off after the request timeout', async () => {
  const endpoint = await serveWorkerMetrics(new WorkerMetrics({ defaultMetrics: false }), {
    host: LOCAL,
    port: 0,
    requestTimeoutMs: 500,
  });
  const { port } = endpoint.server.address() as net.AddressInfo;
  const socket = net.connect(port, LOCAL);
  const started = Date.now();
  const drip = setInterval(() => socket.write('X-Slow: 1\r\n'), 100);
  try {
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.write('GET /metrics HTTP/1.1\r\nHost: worker\r\n');
    const cut = new Promise<string>((r) => socket.once('close', () => r('closed')));
    socket.on('error', () => {});
    const still = sleep(4_000).then(() => 'still open after 4 s');
    assert.equal(await Promise.race([cut, still]), 'closed');
    assert.ok(Date.now() - started < 4_000);
  } finally {
    clearInterval(drip);
    socket.destroy();
    await endpoint.close();
  }
});

test('past 16 connections at once, another is refused; once they close, scrapes are answered again', async () => {
  const endpoint = await serveWorkerMetrics(new WorkerMetrics({ defaultMetrics: false }), { host: LOCAL, port: 0 });
  const { port } = endpoint.server.address() as net.AddressInfo;
  const held: net.Socket[] = [];
  try {
    for (let i = 0; i < 16; i++) {
      const s = net.connect(port, LOCAL);
      s.on('error', () => {});
      held.push(s);
      await new Promise<void>((r) => s.once('connect', () => r()));
    }
    // The server counts a connection once it has accepted it.
    const count = () => new Promise<number>((r) => endpoint.server.getConnections((_e, n) => r(n)));
    for (let i = 0; i < 50 && (await count()) < 16; i++) await sleep(20);
    const refused = await fetch(endpoint.url).then(
      (res) => `answered ${res.status}`,
      () => 'refused',
    );
    assert.equal(refused, 'refused');
    for (const s of held) s.destroy();
    for (let i = 0; i < 50 && (await count()) > 0; i++) await sleep(20);
    assert.equal((await fetch(endpoint.url)).status, 200);
  } finally {
    for (const s of held) s.destroy();
    await endpoint.close();
  }
});

test('every refusal code is a series at 0 from the start, so that increase() sees the first refusal', async () => {
  const m = parseMetrics(await new WorkerMetrics({ defaultMetrics: false }).text());
  const refused = samplesOf(m, 'cxr_worker_jobs_total', { outcome: 'refused' });
  assert.deepEqual(refused.map((s) => s.labels.code).sort(), [...REFUSED_CODES].sort());
  assert.ok(refused.every((s) => s.value === 0));
  for (const code of ['TRUNCATED', 'CORRUPT', 'NOT_A_CHEST_XRAY', 'READ_FAILED', 'CHANGED', 'UNREADABLE']) {
    assert.ok(REFUSED_CODES.includes(code as (typeof REFUSED_CODES)[number]), code);
  }
});

test('a refusal code is one of the known codes, checked when the tests compile', () => {
  assert.equal(filmRefused('TRUNCATED', 'cut.jpeg: truncated').name, 'UnrecoverableError');
  // A label value of the metrics: a code outside the closed set (a typo, a free string) does not compile.
  // @ts-expect-error not a RefusedCode
  assert.equal(filmRefused('TRUNCATD', 'cut.jpeg: truncated').name, 'UnrecoverableError');
});

test("the worker's close lets go of the metrics port before the queue: no scrape reads the queue as away", async () => {
  const metrics = new WorkerMetrics({ defaultMetrics: false });
  let redisOpen = true;
  metrics.watchQueue(async () => {
    if (!redisOpen) throw new Error('Connection is closed.');
    return { waiting: 0, active: 0, delayed: 0, failed: 0 };
  }, 500);
  const endpoint = await serveWorkerMetrics(metrics, { host: LOCAL, port: 0 });
  const seen: string[] = [];
  const scrape = async (when: string) => {
    try {
      const text = await (await fetch(endpoint.url)).text();
      seen.push(`${when}: available ${metricValue(parseMetrics(text), 'cxr_worker_queue_available')}`);
    } catch {
      seen.push(`${when}: no answer`);
    }
  };
  try {
    await closeInOrder({ close: () => scrape('jobs finishing') }, endpoint, {
      close: async () => {
        redisOpen = false;
        await scrape('queue closing');
      },
    });
    assert.deepEqual(seen, ['jobs finishing: available 1', 'queue closing: no answer']);
  } finally {
    await endpoint.close();
  }
});

test('--metrics-host without --metrics-port is refused with a usage error, not ignored', () => {
  const env = { ...process.env };
  delete env.CXR_REDIS_URL;
  const r = spawnSync(process.execPath, [CLI, 'worker', '--metrics-host', '0.0.0.0'], {
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--metrics-host needs --metrics-port/, r.stderr);
});
