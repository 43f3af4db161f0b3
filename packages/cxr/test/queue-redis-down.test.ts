// The queue's commands when Redis is not there. BullMQ's connections retry for ever, so without bounds
// `cxr enqueue` and `cxr worker` started against a Redis that is not running waited without a word, and a
// worker asked to stop after its Redis went away waited for ever (found with a worker left running for 87
// minutes); `cxr serve` held POST /jobs and /metrics open while Redis was away. Now the commands check Redis
// first and say why they stop (refused, wrong password), a stopping worker exits 1 after --close-timeout (with
// Redis up it stops at once, 0; with Redis already seen gone it may too), and the server answers 503
// QUEUE_UNAVAILABLE, scrapes NaN within a second (cxr_queue_available 0), and still exits.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startModelStack, stopModelStack } from './queue-stack';
import { type ChildServer, CLI, spawnServer, XRAY_JPEG } from './serve-fixtures';
import { spawnAsync } from './spawn-async';
import { type Stack, stackCmdAsync, stackUnavailable, startStackAsync, stopStackAsync } from './stack-fixture';

const skip = stackUnavailable();
let stack: Stack | undefined;
let dir = '';
let modelDir = '';
const children: ChildProcess[] = [];

before(async () => {
  if (skip) return;
  ({ dir, modelDir, stack } = await startModelStack('worker-stop', ['redis']));
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await stopModelStack({ stack, dir });
});

/** A worker on `redis` (a stack's env) with its own audit log `db`; resolves once it consumes. */
async function startWorker(
  redis: Record<string, string>,
  db: string,
): Promise<{ log: () => string; exited: Promise<number | null>; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [CLI, 'worker', '--threads', '1', '--db', path.join(dir, db), '--close-timeout', '2000'],
    { env: { ...process.env, ...redis, CXR_MODEL: modelDir } },
  );
  children.push(child);
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const end = Date.now() + 60_000;
  while (!/consuming/.test(log)) {
    if (child.exitCode !== null || Date.now() > end) throw new Error(`the worker did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { log: () => log, exited, child };
}

// The tests share no state (each has its own Redis or none, its own audit log) and mostly wait on servers,
// workers and Redis, so they run side by side: the file takes about the time of its longest (the /health one,
// which waits on the server's 5 s watch three times, first so that the others fill its waits). Three at a time:
// more would only slow each other's engine starts on a two-core machine. Nothing blocks this process
// (spawnAsync, stackCmdAsync), for the tests time their answers. The commands stay child processes: their
// subject is a process's exit status (main.js's handler) and a server's or worker's behaviour while Redis goes.
describe('the queue with Redis away', { concurrency: 3 }, () => {
  test('cxr serve reports the job queue in /health and logs once when Redis goes away and once when it is back', {
    skip: skip ?? false,
    timeout: 240_000,
  }, async () => {
    // QA: with Redis stopped, /health answered 200 {"status":"ok"} with no word of the queue while every /jobs call
    // answered 503, and the server logged nothing. The status stays 200 "ok" (predictions need no queue, and a load
    // balancer must not drop the server for it); the body says how the queue is, and the log says when it changes.
    const own = await startStackAsync('serve-redis-health', ['redis']);
    try {
      const server = await spawnServer(['--db', path.join(dir, 'serve-health.db')], {
        ...own.env,
        CXR_MODEL: modelDir,
      });
      children.push(server.proc);
      const health = async () => {
        const t0 = Date.now();
        const res = await fetch(`${server.url}/api/v1/health`);
        const body = (await res.json()) as { status: string; audit: string; queue?: string };
        return { code: res.status, ms: Date.now() - t0, ...body };
      };
      await logSays(server, /job queue: Redis at \S+ answers/);
      assert.deepEqual(await health().then((h) => [h.code, h.status, h.queue]), [200, 'ok', 'available']);
      assert.equal((await stackCmdAsync(own.dir, 'down', ['redis'])).code, 0);
      // Nobody asks meanwhile: the server's own watch notices.
      const away =
        /the job queue \(Redis[^\n]*\) (does|did) not answer[^\n]*: the \/jobs routes answer 503 QUEUE_UNAVAILABLE/;
      await logSays(server, away);
      for (let i = 0; i < 2; i++) {
        const h = await health();
        assert.deepEqual([h.code, h.status, h.audit, h.queue], [200, 'ok', 'ok', 'unavailable'], server.log());
        assert.ok(h.ms < 3_000, `/health answered after ${h.ms} ms`);
      }
      assert.equal((await stackCmdAsync(own.dir, 'up', ['redis'])).code, 0);
      await logSays(server, /the job queue \(Redis\) answers again, after \d+ s/);
      assert.equal((await health()).queue, 'available');
      await new Promise((r) => setTimeout(r, 6_000)); // another watch: nothing more to say
      assert.equal(server.log().match(new RegExp(away.source, 'g'))?.length, 1, server.log());
      assert.equal(server.log().match(/\(Redis\) answers again/g)?.length, 1, server.log());
      assert.equal(await server.stop('SIGTERM'), 0, server.log());
    } finally {
      await stopStackAsync(own);
    }
  });

  test('cxr enqueue and cxr worker say when Redis cannot be reached, and why, instead of waiting', {
    skip: skip ?? false,
    timeout: 120_000,
  }, async () => {
    const run = (url: string, ...args: string[]) =>
      spawnAsync(process.execPath, [CLI, ...args], {
        timeout: 60_000,
        env: { ...process.env, CXR_REDIS_URL: url, CXR_MODEL: modelDir },
      });
    const wrong = stack!.env.CXR_REDIS_URL.replace(/\/\/:[^@]*@/, '//:wrong@');
    const [refused, denied, worker] = await Promise.all([
      run('redis://:secret@127.0.0.1:1/0', 'enqueue', XRAY_JPEG),
      run(wrong, 'enqueue', XRAY_JPEG),
      run('redis://127.0.0.1:1', 'worker', '--threads', '1', '--db', path.join(dir, 'refused.db')),
    ]);
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(
      refused.stderr,
      /cannot reach Redis at redis:\/\/:\*\*\*\*\*@127\.0\.0\.1:1\/0 \(connect ECONNREFUSED/,
    );
    assert.doesNotMatch(refused.stderr, /secret/);
    assert.equal(denied.status, 1, denied.stderr);
    assert.match(denied.stderr, /cannot reach Redis at .*\(WRONGPASS/);
    assert.equal(worker.status, 1, worker.stderr);
    assert.match(worker.stderr, /cannot reach Redis at redis:\/\/127\.0\.0\.1:1 \(connect ECONNREFUSED/);
  });

  test('cxr serve with Redis gone: POST /jobs answers 503 within seconds, /metrics answers, SIGTERM exits 0', {
    skip: skip ?? false,
    timeout: 240_000,
  }, async () => {
    const own = await startStackAsync('serve-redis-down', ['redis']);
    let up = true;
    try {
      const server = await spawnServer(['--db', path.join(dir, 'serve.db')], { ...own.env, CXR_MODEL: modelDir });
      children.push(server.proc); // killed by after() if an assertion stops the test before server.stop()
      const post = () => {
        const form = new FormData();
        form.append('image', new Blob([new Uint8Array(fs.readFileSync(XRAY_JPEG))]), 'x.jpeg');
        return fetch(`${server.url}/api/v1/jobs?heatmap=false`, { method: 'POST', body: form });
      };
      assert.equal((await post()).status, 202, server.log());
      assert.match(await (await fetch(`${server.url}/metrics`)).text(), /^cxr_queue_available 1$/m);
      // The start-up check's line names the server, its password hidden.
      await logSays(server, /job queue: Redis at redis:\/\/(:\*\*\*\*\*@)?127\.0\.0\.1:\d+\/\d* answers/);
      const password = new URL(own.env.CXR_REDIS_URL).password;
      assert.ok(!password || !server.log().includes(password), 'the log does not show the Redis password');
      await stopStackAsync(own);
      up = false;
      const t0 = Date.now();
      const res = await post();
      const took = Date.now() - t0;
      assert.equal(res.status, 503);
      const body = (await res.json()) as { code: string; detail: string };
      assert.equal(body.code, 'QUEUE_UNAVAILABLE');
      // The queue's own bound (a producer's call fails within seconds) or the route's (5 s), whichever comes first.
      assert.match(body.detail, /the job queue \(Redis\) (does not answer|did not answer within 5 s); retry later/);
      assert.ok(took < 15_000, `answered after ${took} ms`);
      // A scrape waits for the queue only briefly (it took the 5 s of the /jobs routes), and says it is away.
      for (let i = 0; i < 2; i++) {
        const s0 = Date.now();
        const metrics = await fetch(`${server.url}/metrics`);
        const scraped = Date.now() - s0;
        assert.equal(metrics.status, 200);
        const text = await metrics.text();
        assert.ok(scraped < 4_000, `/metrics answered after ${scraped} ms`);
        assert.doesNotMatch(text, /^cxr_queue_waiting /m);
        assert.match(text, /^cxr_queue_available 0$/m);
      }
      const direct = new FormData();
      direct.append('image', new Blob([new Uint8Array(fs.readFileSync(XRAY_JPEG))]), 'x.jpeg');
      const predicted = await fetch(`${server.url}/api/v1/predictions?heatmap=false`, { method: 'POST', body: direct });
      assert.equal(predicted.status, 200, 'predictions do not need the queue');
      // The queue's connection is dropped at once when Redis is away (queue.ts ProducerQueue), so the server does not
      // need its own 5 s bound on closing it.
      const s0 = Date.now();
      assert.equal(await server.stop('SIGTERM'), 0, server.log());
      assert.ok(Date.now() - s0 < 4_000, `stopped after ${Date.now() - s0} ms`);
    } finally {
      if (up) await stopStackAsync(own);
    }
  });

  test('cxr serve started with Redis unreachable says so at start, and still serves predictions', {
    skip: skip ?? false,
    timeout: 240_000,
  }, async () => {
    const server = await spawnServer(['--db', path.join(dir, 'serve-unreachable.db')], {
      CXR_REDIS_URL: 'redis://127.0.0.1:1',
      CXR_MODEL: modelDir,
    });
    children.push(server.proc);
    try {
      await logSays(server, /job queue: cannot reach Redis at redis:\/\/127\.0\.0\.1:1\/? \(connect ECONNREFUSED/);
      assert.match(server.log(), /The \/jobs routes answer 503 QUEUE_UNAVAILABLE until it does/);
      const direct = new FormData();
      direct.append('image', new Blob([new Uint8Array(fs.readFileSync(XRAY_JPEG))]), 'x.jpeg');
      const predicted = await fetch(`${server.url}/api/v1/predictions?heatmap=false`, { method: 'POST', body: direct });
      assert.equal(predicted.status, 200, server.log());
    } finally {
      await server.stop('SIGTERM');
    }
  });

  /** Waits (up to 20 s) until the server's log matches `pattern`: the start-up queue check runs after it listens. */
  async function logSays(server: ChildServer, pattern: RegExp): Promise<void> {
    const until = Date.now() + 20_000;
    while (!pattern.test(server.log())) {
      if (Date.now() > until) assert.fail(`the server's log never matched ${pattern}:\n${server.log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  test('a worker stopped with Redis up exits 0; with Redis gone it exits 1 after --close-timeout, saying why', {
    skip: skip ?? false,
    timeout: 180_000,
  }, async () => {
    // The file's Redis serves the first test's wrong password meanwhile: the worker's Redis to stop is its own.
    const own = await startStackAsync('worker-stop-own', ['redis']);
    let w: Awaited<ReturnType<typeof startWorker>>;
    try {
      const up = await startWorker(own.env, 'audit.db');
      up.child.kill('SIGTERM');
      assert.equal(await up.exited, 0, up.log());
      assert.match(up.log(), /"msg":"stopped"/);
      w = await startWorker(own.env, 'audit-gone.db');
    } finally {
      await stopStackAsync(own);
    }
    const t0 = Date.now();
    w.child.kill('SIGTERM');
    const code = await w.exited;
    const took = Date.now() - t0;
    assert.ok(took < 30_000, `exited after ${took} ms`);
    if (code === 0) {
      // BullMQ had seen Redis go before the signal (CI once: "Redis does not answer" logged first): its connections
      // were already down, so the queue closed at once, with no job in progress; a clean stop.
      assert.match(w.log(), /Redis does not answer[^\n]*\n(?:.*\n)*.*"msg":"stopped"/, w.log());
    } else {
      // Closing waited on a connection that never answers: cut at --close-timeout, saying why.
      assert.equal(code, 1, w.log());
      assert.ok(took >= 1900, `exited after ${took} ms`);
      assert.match(w.log(), /the queue did not close within 2 s \(is Redis reachable\?\): exiting without it/);
    }
  });
});
