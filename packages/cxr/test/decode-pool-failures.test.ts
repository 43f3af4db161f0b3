// A decode pool's failure paths: workers that cannot start, a close with a decode in flight, a bad size. Each
// once left a decode unanswered (a prediction hung) or a worker respawned for ever.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_LIMITS } from '../src/data/decode';
import { DecodePool, DecodeWorkerError } from '../src/serve/decode_pool';
import { startServer } from '../src/serve/server';
import { tempDir } from './serve-fixtures';

const root = tempDir('decode-pool-failures');
after(() => fs.rmSync(root, { recursive: true, force: true }));

const req = { size: 32, limits: DEFAULT_LIMITS, wantDisplay: false };

/** A worker script (the pool's test-only workerFile option) with `body` as its code. */
function script(name: string, body: string): string {
  const file = path.join(root, name);
  fs.writeFileSync(file, body);
  return file;
}

test('workers that die before they are ready: the pool gives up after 3, refusing queued and new decodes', async () => {
  const warns: string[] = [];
  const pool = new DecodePool({
    size: 2,
    timeoutMs: 60_000,
    log: { warn: (_o, msg) => warns.push(msg) },
    workerFile: script('throws.js', "throw new Error('cannot load');\n"),
  });
  try {
    const queued = pool.decode(Buffer.from('x'), req);
    await assert.rejects(queued, (e: unknown) => {
      assert.ok(e instanceof DecodeWorkerError);
      assert.match(e.message, /3 decode workers in a row ended before they were ready \(last: cannot load\)/);
      return true;
    });
    await new Promise((r) => setTimeout(r, 500));
    // Two replaced, the third failure ends it: no endless respawning.
    assert.equal(pool.stats().restarts, 2);
    assert.equal(warns.filter((w) => /cannot start/.test(w)).length, 1);
    await assert.rejects(pool.decode(Buffer.from('x'), req), DecodeWorkerError);
  } finally {
    await pool.close();
  }
});

test('close() with a decode in flight rejects it at once, and its deadline never respawns a worker', async () => {
  const hangs = script(
    'hangs.js',
    "const { parentPort } = require('node:worker_threads');\n" +
      'parentPort.postMessage({ ready: true });\n' +
      'parentPort.on("message", () => {});\n',
  );
  const pool = new DecodePool({ size: 1, timeoutMs: 300, workerFile: hangs });
  const inFlight = pool.decode(Buffer.from('x'), req);
  const outcome = inFlight.then(
    () => 'resolved',
    (e: Error) => e.message,
  );
  while (pool.stats().busy === 0) await new Promise((r) => setTimeout(r, 10));
  await pool.close();
  // Answered by close itself, not by the deadline 300 ms later.
  const first = await Promise.race([outcome, new Promise((r) => setTimeout(() => r('unanswered'), 100))]);
  assert.equal(first, 'decode worker: the decode pool was closed');
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(pool.stats(), { size: 1, busy: 0, queued: 0, restarts: 0 });
});

test('a pool size that is not an integer >= 1 is a TypeError (NaN once started no worker at all)', () => {
  for (const size of [Number.NaN, 0, -1, 1.5]) {
    assert.throws(() => new DecodePool({ size }), TypeError, String(size));
  }
});

test('startServer refuses decodeWorkers NaN before it loads the model (0 still means no pool)', async () => {
  let loaded = false;
  const start = startServer({
    host: '127.0.0.1',
    port: 0,
    dbPath: path.join(root, 'never.db'),
    loadPredictor: async () => {
      loaded = true;
      throw new Error('not reached');
    },
    webDir: null,
    decodeWorkers: Number.NaN,
  });
  await assert.rejects(start, TypeError);
  assert.equal(loaded, false);
});
