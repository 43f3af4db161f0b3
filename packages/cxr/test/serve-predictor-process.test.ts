// The server's predictor in a child process (serve/predictor_process.ts): the same answers and errors as
// the predictor in process, no model in the server's own process, and an engine that dies (a native fault
// too) fails only the predictions it held (503 ENGINE_RESTARTING, Retry-After) while the next one is answered.
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { Predictor } from '../src/predict/predictor';
import { InputError } from '../src/predict/errors';
import { ModelLoadError } from '../src/predict/predictor_load';
import { type AuditStore, openAuditStore } from '../src/serve/audit';
import { buildApp } from '../src/serve/app';
import { HttpError } from '../src/serve/http_error';
import { createLogger } from '../src/log';
import { type ChildPredictor, loadChildPredictor } from '../src/serve/predictor_process';
import { endMidWork, stopped } from './engine-kill-fixture';
import { makeTinyModel, multipartBody, spawnServer, tempDir, XRAY_JPEG_NORMAL } from './serve-fixtures';

let dir: string;
let modelDir: string;
let engine: ChildPredictor;
let film: Buffer;

before(async () => {
  dir = tempDir('predictor-process');
  modelDir = await makeTinyModel(path.join(dir, 'model'));
  film = fs.readFileSync(XRAY_JPEG_NORMAL);
  const before = tf.memory().numTensors;
  engine = await loadChildPredictor(modelDir, { decodeWorkers: 1 });
  // The model lives in the child process: none of its tensors in this one.
  assert.equal(tf.memory().numTensors, before, 'the child predictor loaded the model in the server process');
});

after(() => {
  engine.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Resolves once the engine is decoding an upload (its pool's state reaches this process); at most 30 s. */

async function decoding(): Promise<void> {
  const working = () => engine.decodeStats!().busy + engine.decodeStats!().queued > 0;
  for (let i = 0; i < 6000 && !working(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(working(), 'the upload never reached the engine');
}

/** Waits (at most 30 s) for `cond`. */

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 3000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), 'timed out waiting');
}

/** The engine process of the server `pid` (its child running predictor_child.js), or undefined. */

function engineOf(pid: number): number | undefined {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // The parent's pid is the fourth field, after "(comm)", which may hold spaces.
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid && fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('predictor_child.js')) return +d;
    } catch {
      /* a process that ended while listed */
    }
  }
  return undefined;
}

// Each test but those of the shared engine has an engine (or a server) of its own: three at a time, so that one's
// model loads and backoffs pass while another works. The waits are on conditions, with room for a loaded machine.
describe('the predictor in a child process', { concurrency: 3 }, () => {
  // These share the engine the file loads (one ends it, one signals it): one after the other, in this order.
  describe('the shared engine', { concurrency: false }, () => {
    test('a prediction from the engine process equals the in-process one, images as Buffers', async () => {
      const local = await Predictor.load(modelDir, { warmUp: false });
      try {
        const opts = { heatmap: true, thumbnail: true, operatingPoint: 'screening' };
        const [a, b] = [await local.predict(film, opts), await engine.predict(film, opts)];
        assert.equal(b.probability, a.probability);
        assert.equal(b.label, a.label);
        assert.equal(b.operatingPoint, 'screening');
        assert.deepEqual(b.verdict, a.verdict);
        assert.ok(Buffer.isBuffer(b.heatmapPng) && Buffer.isBuffer(b.thumbnailPng), 'images come back as Buffers');
        assert.ok(b.heatmapPng.equals(a.heatmapPng!), 'the same heat map');
        assert.deepEqual(engine.model, { ...local.model });
      } finally {
        local.dispose();
      }
    });

    test("an input's fault crosses the process boundary as the same InputError (code and status)", async () => {
      const refused = await engine.predict(Buffer.from('not an image at all'), {}).catch((e: unknown) => e);
      assert.ok(refused instanceof InputError, `got ${String(refused)}`);
      assert.equal(refused.code, 'UNSUPPORTED_FORMAT');
      assert.equal(refused.status, 415);
      const badPoint = await engine.predict(film, { operatingPoint: 'nope' }).catch((e: unknown) => e);
      assert.ok(badPoint instanceof InputError && badPoint.code === 'UNKNOWN_OPERATING_POINT');
    });

    test('an engine ended by a native fault fails only its predictions (503 ENGINE_RESTARTING), then answers', {
      timeout: 120_000,
    }, async () => {
      let audit: AuditStore | undefined;
      let app: FastifyInstance | undefined;
      const restartsBefore = engine.engineRestarts!();
      try {
        audit = await openAuditStore(path.join(dir, 'audit.db'));
        app = await buildApp({ predictor: engine, audit, requestLog: false });
        // A large film, so that the engine is still at work when it is ended.
        const big = await sharp({ create: { width: 4000, height: 4000, channels: 3, background: '#777' } })
          .png({ compressionLevel: 9 })
          .toBuffer();
        // What libtorch's own fault does to its process: a worker thread's would have ended this one too.
        const work = () => engine.predict(big, { heatmap: true }).catch((e: unknown) => e);
        const lost = await endMidWork(engine.child, work, decoding, 'SIGSEGV');
        assert.ok(lost instanceof HttpError, `got ${String(lost)}`);
        assert.equal(lost.statusCode, 503);
        assert.equal(lost.code, 'ENGINE_RESTARTING');
        assert.match(lost.message, /\(a native fault, SIGSEGV\)/);
        assert.equal(engine.engineRestarts!(), restartsBefore + 1);
        // While the new process loads the model, /health says so (503: send predictions elsewhere for now).
        const loading = await app.inject({ method: 'GET', url: '/api/v1/health' });
        assert.equal(loading.statusCode, 503, loading.body);
        assert.equal(loading.json().engine, 'restarting');
        assert.equal(loading.json().audit, 'ok');
        // Over HTTP: the next upload waits for the new process and is answered.
        const { body, headers } = multipartBody('image', 'film.jpeg', film, 'image/jpeg');
        const res = await app.inject({ method: 'POST', url: '/api/v1/predictions', payload: body, headers });
        assert.equal(res.statusCode, 200, res.body);
        const back = await app.inject({ method: 'GET', url: '/api/v1/health' });
        assert.equal(back.statusCode, 200, back.body);
        assert.equal(back.json().engine, 'ready');
        // /metrics counts the end and says the engine is ready again.
        const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
        assert.match(metrics, new RegExp(`^cxr_engine_restarts_total ${engine.engineRestarts!()}$`, 'm'));
        assert.ok(engine.engineRestarts!() >= 1);
        assert.match(metrics, /^cxr_engine_state\{state="ready"\} 1$/m);
        assert.match(metrics, /^cxr_engine_state\{state="restarting"\} 0$/m);
        // A death during a request is its 503 with a Retry-After, never a 500.
        // Another image: one in flight at two ends is refused as their cause (the last test).
        const other = await sharp({ create: { width: 3900, height: 4000, channels: 3, background: '#888' } })
          .png({ compressionLevel: 9 })
          .toBuffer();
        const upload = multipartBody('image', 'other.png', other, 'image/png');
        const during = () =>
          app!.inject({ method: 'POST', url: '/api/v1/predictions', payload: upload.body, headers: upload.headers });
        const refused = await endMidWork(engine.child, during, decoding, 'SIGKILL');
        assert.equal(refused.statusCode, 503, refused.body);
        assert.equal(refused.json().code, 'ENGINE_RESTARTING');
        assert.equal(refused.headers['retry-after'], '5');
      } finally {
        await app?.close();
        await audit?.close();
      }
    });

    test('Ctrl-C or a stop signal to the whole group leaves the engine to the server: its predictions finish', {
      timeout: 120_000,
    }, async () => {
      const restarts = engine.engineRestarts!();
      await until(() => engine.engineState!() === 'ready');
      const inFlight = engine.predict(film, { heatmap: true });
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) engine.child().kill(signal);
      assert.ok((await inFlight).probability >= 0);
      assert.equal(engine.engineRestarts!(), restarts, 'the engine ended on a signal meant for the server');
    });
  });

  test("a model folder that cannot load rejects with the loader's own message", async () => {
    const missing = path.join(dir, 'no-such-model');
    // Its class and code cross from the engine process, for a program (or the start-up log) to tell it apart.
    await assert.rejects(
      loadChildPredictor(missing),
      (e: Error) => e instanceof ModelLoadError && e.code === 'NOT_FOUND' && e.message.includes(missing),
    );
  });

  test('an engine that does not load the model within its deadline is killed and the load fails', async () => {
    await assert.rejects(loadChildPredictor(modelDir, { loadDeadlineMs: 50 }), /did not load the model within 0.05 s/);
  });

  test('a model that cannot load again: health and predictions say so, one reload for all; it recovers', async () => {
    const copy = path.join(dir, 'model-copy');
    fs.cpSync(modelDir, copy, { recursive: true });
    const lines: { level: string; msg: string }[] = [];
    const log = createLogger({ destination: { write: (l: string) => void lines.push(JSON.parse(l)) } });
    const p = await loadChildPredictor(copy, { decodeWorkers: 1, log, reloadFirstMs: 300 });
    let audit: AuditStore | undefined;
    let app: FastifyInstance | undefined;
    const failedLoads = () => lines.filter((l) => l.msg.startsWith('the prediction engine could not load')).length;
    try {
      audit = await openAuditStore(path.join(dir, 'audit-unavailable.db'));
      app = await buildApp({ predictor: p, audit, requestLog: false });
      const aside = `${copy}-aside`;
      fs.renameSync(copy, aside);
      p.child().kill('SIGKILL');
      await until(() => p.engineState!() === 'unavailable');
      const health = await app.inject({ method: 'GET', url: '/api/v1/health' });
      assert.equal(health.statusCode, 503, health.body);
      assert.equal(health.json().engine, 'unavailable');
      // Four at once: one reload for all of them (each had its own before), then each answered 503 with the
      // engine's Retry-After, and no path of the server's in the answer.
      const before = failedLoads();
      const { body, headers } = multipartBody('image', 'film.jpeg', film, 'image/jpeg');
      const post = () => app!.inject({ method: 'POST', url: '/api/v1/predictions', payload: body, headers });
      const refused = await Promise.all([post(), post(), post(), post()]);
      for (const r of refused) {
        assert.equal(r.statusCode, 503, r.body);
        assert.equal(r.json().code, 'ENGINE_UNAVAILABLE');
        assert.equal(r.headers['retry-after'], '5');
        assert.ok(!r.body.includes(dir), r.body);
      }
      assert.ok(failedLoads() - before <= 2, `${failedLoads() - before} failed loads for 4 predictions`);
      // The folder back: the engine loads it by itself, with no request to set it off (a load balancer sends
      // none to a server whose /health says 503).
      fs.renameSync(aside, copy);
      await until(() => p.engineState!() === 'ready');
      const res = await post();
      assert.equal(res.statusCode, 200, res.body);
      // Warmed up before it said ready: the first film after a restart does not wait for kernels to compile.
      const again = lines.find((l) => l.msg === 'the prediction engine is running again') as { warmUpMs?: unknown };
      assert.ok(again, 'no "running again" line');
      assert.equal(typeof again.warmUpMs, 'number', JSON.stringify(again));
    } finally {
      await app?.close();
      await audit?.close();
      p.dispose();
    }
  });

  test('an image in flight at two ends of the engine is refused from then on (422 ENGINE_FAULT)', async () => {
    // A second end soon after a load waits for the backoff's first step before a new engine: short here.
    const p = await loadChildPredictor(modelDir, { decodeWorkers: 1, reloadFirstMs: 200 });
    try {
      const big = await sharp({ create: { width: 4000, height: 4000, channels: 3, background: '#777' } })
        .png({ compressionLevel: 9 })
        .toBuffer();
      for (const expected of ['ENGINE_RESTARTING', 'ENGINE_FAULT']) {
        const work = () => p.predict(big, {}).catch((e: unknown) => e);
        const begun = () => until(() => p.decodeStats!().busy + p.decodeStats!().queued > 0);
        const e = await endMidWork(p.child, work, begun, 'SIGKILL');
        assert.ok(e instanceof HttpError && e.code === expected, `${expected}: got ${String(e)}`);
      }
      // Sent again, it never reaches the engine; another film is answered.
      const again = await p.predict(big, {}).catch((e: unknown) => e);
      assert.ok(again instanceof HttpError && again.statusCode === 422 && again.code === 'ENGINE_FAULT');
      assert.equal(p.engineRestarts!(), 2);
      assert.ok((await p.predict(film, {})).probability >= 0);
    } finally {
      p.dispose();
    }
  });

  test('images in flight together at an end are suspects that run alone: a second end names one, not both', {
    timeout: 120_000,
  }, async () => {
    // A second end soon after a load waits for the backoff's first step before a new engine: short here.
    const p = await loadChildPredictor(modelDir, { decodeWorkers: 1, reloadFirstMs: 200 });
    const inThread = (n: number) => until(() => p.decodeStats!().busy + p.decodeStats!().queued >= n);
    try {
      const png = (w: number) =>
        sharp({ create: { width: w, height: 4000, channels: 3, background: '#777' } })
          .png({ compressionLevel: 9 })
          .toBuffer();
      const [a, b] = [await png(4000), await png(3990)];
      const both = () => Promise.all([a, b].map((x) => p.predict(x, {}).catch((e: unknown) => e)));
      for (const e of await endMidWork(p.child, both, () => inThread(2), 'SIGKILL'))
        assert.ok(e instanceof HttpError && e.code === 'ENGINE_RESTARTING');
      // Sent again together: a runs alone (b waits), and the engine ends under it alone. (Sent once more if the
      // engine answered first: both stay suspects, so a runs alone again.)
      const alone = async () => {
        await inThread(1);
        assert.equal(p.decodeStats!().busy + p.decodeStats!().queued, 1, 'the suspect is alone in the engine');
      };
      const [refused, answered] = await endMidWork(p.child, both, alone, 'SIGKILL');
      assert.ok(refused instanceof HttpError && refused.code === 'ENGINE_FAULT', String(refused));
      // b was not in the engine at that end: answered, not blamed.
      assert.ok(!(answered instanceof Error), String(answered));
    } finally {
      p.dispose();
    }
  });

  test('`cxr serve` outlives a native fault of its engine: 503 meanwhile, then answers again', async () => {
    const server = await spawnServer(['--model', modelDir, '--db', path.join(dir, 'serve-fault.db')]);
    try {
      const first = engineOf(server.proc.pid!);
      assert.ok(first, 'no engine process under the server');
      process.kill(first, 'SIGSEGV');
      // The server answers /health all along (503 while a new engine loads), until a new engine is ready.
      let again: number | undefined;
      let health = { status: 0, engine: '' };
      for (let i = 0; i < 600; i++) {
        const res = await fetch(`${server.url}/api/v1/health`);
        health = { status: res.status, engine: ((await res.json()) as { engine: string }).engine };
        assert.ok(health.status === 200 || (health.status === 503 && health.engine !== 'ready'), String(health));
        again = engineOf(server.proc.pid!);
        if (again && again !== first && health.engine === 'ready') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(health, { status: 200, engine: 'ready' });
      assert.ok(again && again !== first, 'no new engine process');
      const form = new FormData();
      form.append('image', new Blob([new Uint8Array(film)], { type: 'image/jpeg' }), 'film.jpeg');
      const res = await fetch(`${server.url}/api/v1/predictions`, { method: 'POST', body: form });
      assert.equal(res.status, 200, await res.text());
      assert.match(server.log(), /the prediction engine stopped \(a native fault, SIGSEGV\); starting a new one"/);
      // Stopped, the server takes its engine with it.
      assert.equal(await server.stop(), 0);
      await until(() => !fs.existsSync(`/proc/${again}`));
    } finally {
      await server.stop('SIGKILL');
    }
  });

  test('an engine that ends soon after each load is replaced after a growing wait, not back to back', async () => {
    const lines: { msg: string }[] = [];
    const log = createLogger({ destination: { write: (l: string) => void lines.push(JSON.parse(l)) } });
    const p = await loadChildPredictor(modelDir, { decodeWorkers: 1, log, reloadFirstMs: 300 });
    try {
      // The first end is replaced at once (one fault is no loop), the next ones after 0.3 s, then 0.6 s.
      for (const [n, expected] of [
        [1, /\(ended by SIGKILL\); starting a new one$/],
        [2, /2 times in a row within a minute of loading; starting a new one in 0.3 s$/],
        [3, /3 times in a row within a minute of loading; starting a new one in 0.6 s$/],
      ] as const) {
        const child = p.child();
        child.kill('SIGKILL');
        await until(() => p.child() !== child);
        assert.equal(p.engineState!(), 'restarting');
        assert.match(lines.at(-1)!.msg, expected, `end ${n}`);
        await until(() => p.engineState!() === 'ready');
      }
      assert.ok((await p.predict(film, {})).probability >= 0);
    } finally {
      p.dispose();
    }
  });

  test('an engine that ends during the start-up warm-up says so, not "send the image again"', async () => {
    const p = await loadChildPredictor(modelDir, { decodeWorkers: 1 });
    try {
      const big = await sharp({ create: { width: 4000, height: 4000, channels: 3, background: '#666' } })
        .png({ compressionLevel: 9 })
        .toBuffer();
      const warming = () => p.warmUp(big).catch((e: unknown) => e);
      const begun = () => until(() => p.decodeStats!().busy + p.decodeStats!().queued > 0);
      const e = await endMidWork(p.child, warming, begun, 'SIGKILL');
      assert.ok(e instanceof Error && !(e instanceof HttpError), String(e));
      assert.match(e.message, /^the prediction engine stopped during its warm-up \(ended by SIGKILL\)$/);
    } finally {
      p.dispose();
    }
  });

  test('a server killed with uploads in flight takes its engine with it, without a trace in its log', async () => {
    // Killed while the engine decodes small films: the engine ends by itself, and nothing it does on the way out
    // reaches the log (a decode pool message sent to the closed channel was an unhandled EPIPE, with a trace).
    // Killed once the first is answered, the others in flight (two at a time in the engine, the rest waiting); the
    // engine is frozen first (SIGSTOP) so that it answers none meanwhile, and resumed after the server is gone. A
    // test process descheduled after the first answer can still find all eight answered: then it is done again.
    for (let attempt = 1, tries = 5; ; attempt++) {
      const server = await spawnServer(['--model', modelDir, '--db', path.join(dir, `serve-killed-${attempt}.db`)]);
      const engineProc = engineOf(server.proc.pid!);
      const stderrClosed = new Promise((r) => server.proc.stderr!.once('close', r));
      try {
        assert.ok(engineProc, 'no engine process under the server');
        const upload = () => {
          const form = new FormData();
          form.append('image', new Blob([new Uint8Array(film)], { type: 'image/jpeg' }), 'film.jpeg');
          return fetch(`${server.url}/api/v1/predictions`, { method: 'POST', body: form }).catch(() => null);
        };
        const uploads = Array.from({ length: 8 }, upload);
        await Promise.race(uploads);
        process.kill(engineProc, 'SIGSTOP');
        try {
          await stopped(engineProc);
          await server.stop('SIGKILL');
        } finally {
          process.kill(engineProc, 'SIGCONT');
        }
        const answers = await Promise.all(uploads);
        if (answers.every((a) => a !== null)) {
          assert.ok(attempt < tries, `every upload was answered before the kill, each of ${tries} times`);
          continue;
        }
        await until(() => !fs.existsSync(`/proc/${engineProc}`));
        // Its stderr closes once every process writing to it has ended (the engine shares the server's): all of it.
        await stderrClosed;
        assert.doesNotMatch(server.log(), /EPIPE|Unhandled|ERR_IPC/);
        return;
      } finally {
        await server.stop('SIGKILL');
        if (engineProc && fs.existsSync(`/proc/${engineProc}`)) process.kill(engineProc, 'SIGKILL');
      }
    }
  });
});
