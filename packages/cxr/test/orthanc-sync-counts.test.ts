// `cxr orthanc sync` counts each film when it is done. QA: after an Orthanc outage, 48 films were predicted and
// stored (48 log lines, 48 audit rows) but --json said "processed":38: the films of a pass the outage interrupted
// were dropped from the totals, which were added only after a pass that finished.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { openAuditStore } from '../src/serve/audit';
import { numberedFilm } from './numbered-film';
import { isFilmDownload, type OrthancProxy, startOrthancProxy } from './orthanc-proxy';
import { findInstances } from './pacs-results';
import { startModelStack, stopModelStack } from './queue-stack';
import { CLI } from './serve-fixtures';
import { orthanc, type Stack, stackUnavailable } from './stack-fixture';

const skip = stackUnavailable();
if (skip) console.log(`# orthanc-sync-counts skipped: ${skip}`);
let stack: Stack | undefined;
let dir = '';
let modelDir = '';

before(async () => {
  if (skip) return;
  ({ dir, modelDir, stack } = await startModelStack('orthanc-sync-counts', ['orthanc']));
});
after(async () => {
  await stopModelStack({ stack, dir });
});

/** A small chest film of its own (its UIDs from `n`). */
const film = (n: number) => numberedFilm(n, { uidRoot: 880000, pixel: (i, n) => (i % 256) ^ (n * 37) });

/**
 * A proxy before Orthanc that goes away (503, as a load balancer answers for a PACS that is down) for `outageMs`
 * from the `nth` film download on: the pass in progress stops there, after the films before it were done.
 */
function flakyProxy(target: string, nth: number, outageMs: number): Promise<OrthancProxy> {
  let downloads = 0;
  let downUntil = 0;
  return startOrthancProxy(target, {
    intercept: (req, res) => {
      if (isFilmDownload(req.url) && ++downloads === nth) downUntil = Date.now() + outageMs;
      if (Date.now() >= downUntil) return false;
      res.writeHead(503).end('down for maintenance');
      return true;
    },
  });
}

test('films done in a pass an Orthanc outage interrupts are counted', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const films = 3;
  for (let n = 1; n <= films; n++) {
    const r = await orthanc(stack!, '/instances', { method: 'POST', body: new Uint8Array(film(n)) });
    assert.equal(r.status, 200);
  }
  // The third film's download meets the outage: the first pass does two films, the next one the third.
  const proxy = await flakyProxy(stack!.env.CXR_ORTHANC_URL, films, 1_500);
  const db = path.join(dir, 'audit.db');
  const sync = spawn(
    process.execPath,
    [CLI, 'orthanc', 'sync', '--interval', '0.5', '--since-start', '--state', path.join(dir, 's.json'), '--json'],
    { env: { ...process.env, ...stack!.env, CXR_ORTHANC_URL: proxy.url, CXR_MODEL: modelDir, CXR_DB: db } },
  );
  let err = '';
  let out = '';
  sync.stderr.on('data', (d) => (err += d));
  sync.stdout.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => sync.on('close', r));
  try {
    const end = Date.now() + 90_000;
    while ((await findInstances(stack!, { Modality: 'SR' })).length < films) {
      assert.ok(Date.now() < end && sync.exitCode === null, `the films' results never came:\n${err}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.match(err, /503[^\n]*retrying in 0\.5 s/, 'the outage interrupted a pass');
    sync.kill('SIGTERM');
    assert.equal(await exited, 0, err);
  } finally {
    if (sync.exitCode === null) sync.kill('SIGKILL');
    await proxy.close();
  }
  const predicted = err.match(/predicted \S+ \([\d.]+\) and stored its results/g) ?? [];
  assert.equal(predicted.length, films, err);
  const store = await openAuditStore(db, { readonly: true });
  const rows = await store.count();
  await store.close();
  assert.equal(rows, films);
  const counts = JSON.parse(out) as Record<'instances' | 'processed' | 'alreadyDone' | 'skipped' | 'failed', number>;
  assert.deepEqual({ processed: counts.processed, failed: counts.failed }, { processed: films, failed: 0 }, out);
  // Every NewInstance change read once (the results stored back are skipped), each counted as what became of it.
  assert.equal(counts.instances, counts.processed + counts.alreadyDone + counts.skipped + counts.failed, out);
  assert.match(err, new RegExp(`stopped: ${counts.instances} new instances: ${films} predicted and stored, .* in all`));
});
