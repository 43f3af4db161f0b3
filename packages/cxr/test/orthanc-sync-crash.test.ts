// A `cxr orthanc sync --since-start` killed in its first batch, then restarted without --since-start (the docs'
// follow-up step), must read the films it had not finished. QA: 20 films loaded, the run killed with -9 after 17:
// no state file was left (it was written only after a batch), so the restart counted as a first run, started at
// the end of the change feed, and the 3 films left were never read. The restart also logged one `skip ID: a cxr
// result` line for every result the killed run had stored.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readState } from '../src/pacs';
import { numberedFilm } from './numbered-film';
import { isFilmDownload, startOrthancProxy } from './orthanc-proxy';
import { findInstances } from './pacs-results';
import { startModelStack, stopModelStack } from './queue-stack';
import { CLI } from './serve-fixtures';
import { orthanc, type Stack, stackUnavailable } from './stack-fixture';

const skip = stackUnavailable();
if (skip) console.log(`# orthanc-sync-crash skipped: ${skip}`);
let stack: Stack | undefined;
let dir = '';
let modelDir = '';

before(async () => {
  if (skip) return;
  ({ dir, modelDir, stack } = await startModelStack('orthanc-sync-crash', ['orthanc']));
});
after(async () => {
  await stopModelStack({ stack, dir });
});

/** A small chest film of its own (its UIDs from `n`). */
const film = (n: number) =>
  numberedFilm(n, { uidRoot: 770000, pixel: (i, n) => (i * 7 + n * 53) % 256, modality: 'CR' });

/**
 * A proxy before Orthanc that never answers the `nth` film download while `hold` is on, so that the sync is
 * stopped, deterministically, in the middle of its first batch: the films before it done, the rest not.
 */
async function holdingProxy(target: string, nth: number) {
  let downloads = 0;
  const state = { hold: true, held: false };
  const proxy = await startOrthancProxy(target, {
    intercept: (req) => {
      if (!(isFilmDownload(req.url) && ++downloads === nth && state.hold)) return false;
      state.held = true;
      return true; // no answer: the sync waits here until it is killed
    },
  });
  return { url: proxy.url, state, close: proxy.close };
}

test('a --since-start sync killed in its first batch is resumed by a plain restart; nothing is skipped', {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const films = 4;
  for (let n = 1; n <= films; n++) {
    const r = await orthanc(stack!, '/instances', { method: 'POST', body: new Uint8Array(film(n)) });
    assert.equal(r.status, 200);
  }
  // The same proxy for both runs: the cursor file names the Orthanc it belongs to.
  const proxy = await holdingProxy(stack!.env.CXR_ORTHANC_URL, 2);
  const state = path.join(dir, 'st.json');
  const env = { ...process.env, ...stack!.env, CXR_ORTHANC_URL: proxy.url, CXR_MODEL: modelDir };
  const db = path.join(dir, 'audit.db');
  try {
    const first = spawn(
      process.execPath,
      [CLI, 'orthanc', 'sync', '--since-start', '--interval', '2', '--state', state, '--db', db],
      { env },
    );
    let err = '';
    first.stderr.on('data', (d) => (err += d));
    const exited = new Promise<void>((r) => first.on('close', () => r()));
    const end = Date.now() + 60_000;
    while (!(proxy.state.held && /predicted \S+ \([\d.]+\) and stored its results/.test(err))) {
      assert.ok(Date.now() < end && first.exitCode === null, `the first film was never done:\n${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    first.kill('SIGKILL');
    await exited;
    assert.match(err, /--since-start: reading the change feed from its beginning/);
    // Killed in its first batch (the default 100 changes hold every film's): the start it saved first.
    const saved = fs.existsSync(state) ? readState(state) : null;
    proxy.state.hold = false;

    // The docs' follow-up step: the same command without --since-start.
    const again = spawn(process.execPath, [CLI, 'orthanc', 'sync', '--once', '--state', state, '--db', db, '--json'], {
      env,
    });
    let out = '';
    let err2 = '';
    again.stdout.on('data', (d) => (out += d));
    again.stderr.on('data', (d) => (err2 += d));
    const code = await new Promise<number | null>((r) => again.on('close', r));
    assert.equal(code, 0, err2);
    const counts = JSON.parse(out) as Record<'processed' | 'alreadyDone' | 'skipped' | 'failed', number>;
    assert.deepEqual(
      { processed: counts.processed, alreadyDone: counts.alreadyDone, failed: counts.failed },
      { processed: films - 1, alreadyDone: 1, failed: 0 },
      `the restart reads the films the killed run had not finished:\n${err2}`,
    );
    assert.equal((await findInstances(stack!, { Modality: 'SR' })).length, films, 'one report per film');
    assert.doesNotMatch(err2, /first run/, err2);
    assert.deepEqual(saved && { url: saved.url, last: saved.last }, { url: proxy.url, last: 0 }, 'saved at start');

    // The killed run's results (an SR; these films get no heat map, the model cannot assess them) are read back
    // as cxr's own: counted in the summary, not a line each.
    assert.doesNotMatch(err2, /skip \S+: a cxr result/, err2);
    const own = Number(/(\d+) skipped \((\d+) of them cxr's own results\)/.exec(err2)?.[2] ?? 0);
    assert.ok(own >= 1, err2);
    assert.equal(counts.skipped, own, err2);
  } finally {
    await proxy.close();
  }
});
