// Durability of the audit log with a real server process: kill -9 during a burst of requests
// loses no acknowledged prediction, and SIGTERM lets in-flight requests finish and closes the
// database cleanly.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { openAuditStore } from '../src/serve/audit';
import { metricValue, parseMetrics } from './prometheus-text';
import { makeTinyModel, multipartBody, spawnServer, tempDir, XRAY_JPEG } from './serve-fixtures';

let dir: string;
let model: string;
const jpeg = fs.readFileSync(XRAY_JPEG);

before(async () => {
  dir = tempDir('audit-crash');
  model = await makeTinyModel(path.join(dir, 'model'));
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function predictOnce(url: string, query = '?heatmap=false'): Promise<string | null> {
  const { body, headers } = multipartBody('image', 'x.jpeg', jpeg);
  try {
    const res = await fetch(`${url}/api/v1/predictions${query}`, {
      method: 'POST',
      body: new Uint8Array(body),
      headers,
    });
    if (res.status !== 200) return null;
    return ((await res.json()) as { id: string }).id;
  } catch {
    return null; // connection reset by the kill
  }
}

/** Resolves once the server at `url` has taken a prediction: computing it, waiting for a slot, or done with it. */
async function untilTaken(url: string): Promise<void> {
  for (const end = Date.now() + 60_000; ; await new Promise((r) => setTimeout(r, 20))) {
    const m = parseMetrics(await (await fetch(`${url}/metrics`)).text());
    const names = ['cxr_predictions_running', 'cxr_predictions_waiting', 'cxr_predictions_total'];
    if (names.some((name) => metricValue(m, name) > 0)) return;
    assert.ok(Date.now() < end, 'no prediction reached the server');
  }
}

test('kill -9 during a burst: every acknowledged prediction is in the log after restart', {
  timeout: 300_000,
}, async () => {
  const db = path.join(dir, 'crash.db');
  const server = await spawnServer(['--model', model, '--db', db, '--concurrency', '2']);
  const acked: string[] = [];
  let killed = false;
  // 8 clients in parallel; the server is killed once 25 answers have arrived, with requests in flight.
  const client = async () => {
    while (!killed) {
      const id = await predictOnce(server.url, acked.length % 3 ? '?heatmap=false' : '');
      if (id) acked.push(id);
      if (acked.length >= 25 && !killed) {
        killed = true;
        server.proc.kill('SIGKILL');
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, client));
  assert.equal(await server.stop(), null, 'killed by the signal');
  assert.ok(acked.length >= 25);

  // The database opens (WAL recovery), is consistent, and holds every acknowledged row.
  const raw = new Database(db);
  assert.equal(raw.pragma('integrity_check', { simple: true }), 'ok');
  raw.close();
  const audit = await openAuditStore(db);
  const missing: string[] = [];
  for (const id of acked) if ((await audit.get(id)) === null) missing.push(id);
  assert.deepEqual(missing, [], `${missing.length} of ${acked.length} acknowledged predictions lost`);
  assert.ok((await audit.count()) >= acked.length);
  await audit.close();

  const again = await spawnServer(['--model', model, '--db', db]);
  try {
    const health = (await (await fetch(`${again.url}/api/v1/health`)).json()) as { predictions: number };
    assert.ok(health.predictions >= acked.length);
    for (const id of acked.slice(0, 5))
      assert.equal((await fetch(`${again.url}/api/v1/predictions/${id}`)).status, 200);
    assert.ok(await predictOnce(again.url), 'serves after the restart');
  } finally {
    assert.equal(await again.stop('SIGTERM'), 0);
  }
});

test('SIGTERM: in-flight requests finish, then the log is checkpointed and closed', { timeout: 300_000 }, async () => {
  const db = path.join(dir, 'term.db');
  const server = await spawnServer(['--model', model, '--db', db, '--concurrency', '1']);
  const inflight = Array.from({ length: 6 }, () => predictOnce(server.url, ''));
  // Until the server has taken one (not a fixed 150 ms: on a loaded machine none may have reached it by then,
  // and a request that comes after SIGTERM is refused, not answered).
  await untilTaken(server.url);
  const code = await server.stop('SIGTERM');
  const ids = await Promise.all(inflight);
  assert.equal(code, 0, server.log());
  assert.match(server.log(), /closed cleanly/);
  const answered = ids.filter((x): x is string => x !== null);
  assert.ok(answered.length >= 1, 'requests already received were answered');
  assert.ok(!fs.existsSync(`${db}-wal`) || fs.statSync(`${db}-wal`).size === 0, 'WAL checkpointed on close');
  const audit = await openAuditStore(db);
  for (const id of answered) assert.ok(await audit.get(id), `answered ${id} is logged`);
  await audit.close();
});
