// Decoding off the main thread for a program that embeds cxr: a film's decode (a JPEG 2000 DICOM takes a second or
// more) must not hold the event loop. predictor.decodeIn(createDecodePool()) gives a library's Predictor the pool
// `cxr serve` uses; startServer gives one by default to a Predictor its caller loaded, and serves the package's page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { silentLogger } from '../src/log';
import { Predictor } from '../src/predict/predictor';
import { createDecodePool } from '../src/serve/decode_pool';
import { startServer } from '../src/serve/server';
import { DICOM_DIR, makeTinyModel, multipartBody, tempDir } from './serve-fixtures';

// Decoded by the JPEG 2000 codec on the thread that calls it: 1.5 s on the machine that found the stall.
const SLOW_FILM = path.join(DICOM_DIR, 'WG04_RG1_J2KI.dcm');
// Generous (a shared, busy test machine): an in-process decode of SLOW_FILM holds the loop for longer than this.
const MAX_DELAY_MS = 400;

let root = '';
let modelDir = '';
let film: Buffer;

before(async () => {
  root = tempDir('decode-pool-library');
  modelDir = await makeTinyModel(path.join(root, 'model'));
  film = fs.readFileSync(SLOW_FILM);
});

after(() => fs.rmSync(root, { recursive: true, force: true }));

/**
 * The longest gap between two firings of a 5 ms timer while `work` ran, in ms: how long the event loop was held.
 * (A histogram of monitorEventLoopDelay misses a stall that ends with the work: no timer fires in it to record it.)
 */
async function loopDelayDuring<T>(work: () => Promise<T>): Promise<{ maxMs: number; value: T }> {
  let last = performance.now();
  let maxMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxMs = Math.max(maxMs, now - last);
    last = now;
  }, 5);
  try {
    const value = await work();
    await new Promise((resolve) => setTimeout(resolve, 20)); // a stall that ended with the work is measured too
    return { maxMs, value };
  } finally {
    clearInterval(timer);
  }
}

test('a Predictor given a decode pool keeps the event loop free while a slow film decodes', async () => {
  const p = await Predictor.load(modelDir, { warmUp: false });
  const pool = createDecodePool({ size: 1 });
  assert.equal(p.decodeIn(pool), true);
  assert.equal(p.decodeIn(createDecodePool({ size: 1 })), false, 'a second pool is refused (left to its caller)');
  try {
    await p.predict(film); // the worker loads its modules once
    const { maxMs, value } = await loopDelayDuring(() => p.predict(film));
    assert.equal(value.input.kind, 'dicom');
    assert.ok(maxMs < MAX_DELAY_MS, `the event loop was held ${maxMs.toFixed(0)} ms during the decode`);
  } finally {
    p.dispose();
  }
  // dispose() closed the pool: its workers are gone, and it takes no more work.
  await assert.rejects(pool.decode(film, { size: 32, limits: {} as never, wantDisplay: false }), /closed/);
});

test('startServer decodes in worker threads by default, and serves the page without webDir', async () => {
  const server = await startServer({
    host: '127.0.0.1',
    port: 0,
    dbPath: path.join(root, 'audit.db'),
    loadPredictor: () => Predictor.load(modelDir, { warmUp: false }),
    log: silentLogger(),
  });
  try {
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.match(String(page.headers.get('content-type')), /^text\/html/);
    assert.match(await page.text(), /<html/i);

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^cxr_decode_workers\{state="idle"\} 2$/m, 'a pool of `concurrency` (2) workers');

    const { body, headers } = multipartBody('image', 'film.dcm', film);
    // The first upload starts the workers' modules; the second is timed.
    assert.equal(
      (await server.app.inject({ method: 'POST', url: '/api/v1/predictions', payload: body, headers })).statusCode,
      200,
    );
    const { maxMs, value } = await loopDelayDuring(async () => {
      const upload = fetch(`${server.url}/api/v1/predictions`, { method: 'POST', body: new Uint8Array(body), headers });
      const t0 = performance.now();
      const health = await fetch(`${server.url}/api/v1/health`);
      const healthMs = performance.now() - t0;
      return { upload: await upload, health, healthMs };
    });
    assert.equal(value.upload.status, 200, await value.upload.text());
    assert.equal(value.health.status, 200);
    assert.ok(value.healthMs < MAX_DELAY_MS * 2, `/health took ${value.healthMs.toFixed(0)} ms during an upload`);
    assert.ok(maxMs < MAX_DELAY_MS, `the event loop was held ${maxMs.toFixed(0)} ms during the upload`);
  } finally {
    await server.close();
  }
});

test('a server with webDir null says it has no page; decodeWorkers 0 decodes on the main thread', async () => {
  const server = await startServer({
    host: '127.0.0.1',
    port: 0,
    dbPath: path.join(root, 'audit-nopage.db'),
    loadPredictor: () => Predictor.load(modelDir, { warmUp: false }),
    log: silentLogger(),
    webDir: null,
    decodeWorkers: 0,
  });
  try {
    const page = await server.app.inject({ url: '/' });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /started without the web page/);
    assert.doesNotMatch(page.body, /npm run build/);
    const metrics = await server.app.inject({ url: '/metrics' });
    assert.doesNotMatch(metrics.body, /cxr_decode_workers/);
  } finally {
    await server.close();
  }
});
