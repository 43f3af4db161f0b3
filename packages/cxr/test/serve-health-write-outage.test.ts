// /health during a write outage: the audit log answers its ping but refuses rows (an SQLite disk full).
// Every prediction is refused 503 AUDIT_UNAVAILABLE meanwhile, so /health must answer 503 "degraded" too, or
// a load balancer whose readiness check reads it keeps sending every film to a server that refuses them
// all. And it must come back to 200 by itself once the disk has room, with no prediction to write: a load
// balancer that stopped routing sends none.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createLogger } from '../src/log';
import { WRITE_PROBE_MS } from '../src/serve/audit_guard';
import { type RunningServer, startServer } from '../src/serve/server';
import { gradientFilm, loadPredictor, makeTinyModel, multipartBody, tempDir } from './serve-fixtures';
import { fillDisk, mountTmpfs } from './small-disk';

let dir = '';
let film: Buffer;

before(async () => {
  dir = tempDir('health-write-outage');
  await makeTinyModel(path.join(dir, 'model'));
  film = await gradientFilm();
});

after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function post(base: string): Promise<Response> {
  const { body, headers } = multipartBody('image', 'film.png', film);
  return fetch(`${base}/api/v1/predictions`, { method: 'POST', body: new Uint8Array(body), headers });
}

async function metric(base: string, name: RegExp): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = new RegExp(`^${name.source} (\\d+)$`, 'm').exec(text);
  assert.ok(m, `${name.source} is reported`);
  return Number(m[1]);
}

async function health(base: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}/api/v1/health`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test('an SQLite audit log on a full disk: /health says 503 degraded while writes fail, and ok once they work', {
  timeout: 120_000,
}, async (t) => {
  const mnt = path.join(dir, 'small-disk');
  const why = mountTmpfs(mnt);
  if (why) return t.skip(why);
  let lines = '';
  let server: RunningServer;
  try {
    server = await startServer({
      host: '127.0.0.1',
      port: 0,
      dbPath: path.join(mnt, 'audit.db'),
      log: createLogger({ level: 'info', destination: { write: (line: string) => void (lines += line) } }),
      loadPredictor: () => loadPredictor(path.join(dir, 'model')),
    });
  } catch (e) {
    spawnSync('umount', ['-l', mnt]);
    throw e;
  }
  const filler = path.join(mnt, 'filler');
  try {
    assert.equal((await post(server.url)).status, 200);
    assert.equal((await health(server.url)).status, 200);
    fillDisk(filler, 64 * 1024);
    // The row cannot be written: the prediction is refused, and the outage is a write outage.
    const refused = await post(server.url);
    assert.equal(refused.status, 503, await refused.clone().text());
    assert.equal(((await refused.json()) as { code: string }).code, 'AUDIT_UNAVAILABLE');
    assert.match(lines, /cannot be used: .*\(SQLITE_FULL\)/);
    assert.equal(await metric(server.url, /cxr_audit_available/), 0);

    // Each /health while the disk is full says so, across more than one write check (WRITE_PROBE_MS): the
    // check really writes, and a ping that answers does not end the outage.
    const until = Date.now() + WRITE_PROBE_MS + 1_500;
    let probes = 0;
    while (Date.now() < until) {
      const h = await health(server.url);
      assert.equal(h.status, 503, JSON.stringify(h.body));
      assert.equal(h.body.status, 'degraded');
      assert.equal(h.body.audit, 'unavailable');
      assert.equal(h.body.engine, 'ready');
      assert.match(String(h.body.detail), /the audit log answers but refuses writes/);
      probes++;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(probes >= 5);
    assert.equal(await metric(server.url, /cxr_audit_available/), 0);
    // At most one write per WRITE_PROBE_MS, not one per probe: at least the second check failed, and few did.
    const checks = await metric(server.url, /cxr_audit_failures_total\{operation="health"\}/);
    assert.ok(checks >= 1 && checks <= 3, `write checks that failed: ${checks} (probes: ${probes})`);
    assert.equal(await metric(server.url, /cxr_audit_failures_total\{operation="write"\}/), 1, 'probes are no rows');

    // Room again: /health comes back with no prediction sent, within a write check's interval.
    fs.rmSync(filler);
    const back = Date.now() + WRITE_PROBE_MS + 3_000;
    let h = await health(server.url);
    while (h.status !== 200 && Date.now() < back) {
      await new Promise((r) => setTimeout(r, 250));
      h = await health(server.url);
    }
    assert.equal(h.status, 200, JSON.stringify(h.body));
    assert.equal(h.body.status, 'ok');
    assert.equal(h.body.audit, 'ok');
    assert.equal(await metric(server.url, /cxr_audit_available/), 1);
    assert.match(lines, /"msg":"the audit log \(.*audit\.db\) answers again, after \d+ s"/);
    assert.equal(await server.audit.count(), 1, 'the write check adds no row');
    assert.equal((await post(server.url)).status, 200);
    assert.equal(await server.audit.count(), 2);
  } finally {
    // Room first: closing checkpoints the log, which a full disk refuses (and that error would hide the test's).
    fs.rmSync(filler, { force: true });
    try {
      await server.close();
    } finally {
      spawnSync('umount', ['-l', mnt]);
    }
  }
});
