// The one reader of the job queue's depth that /metrics and /health share (serve/queue_probe.ts): one read at
// a time however many ask, each asker waiting at most the bound, a failure an answer, and each settled read
// seen once by its watcher (the health route logs an outage once, not once per asker).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { LATE } from '../src/deadline';
import { type ProbeRead, queueProbe } from '../src/serve/queue_probe';

/** A read that settles when the test says so, counting how often it was started. */
function controlled() {
  let starts = 0;
  let settle: { ok: (v: number) => void; fail: (e: Error) => void } | null = null;
  const read = () => {
    starts++;
    return new Promise<number>((resolve, reject) => {
      settle = { ok: resolve, fail: reject };
    });
  };
  return {
    read,
    starts: () => starts,
    ok: (v: number) => settle?.ok(v),
    fail: (e: Error) => settle?.fail(e),
  };
}

test('askers while a read is pending share it; the next ask after it settled reads again', async () => {
  const q = controlled();
  const seen: ProbeRead<number>[] = [];
  const probe = queueProbe(q.read, 1_000, (r) => seen.push(r));
  const asked = [probe(), probe(), probe()];
  assert.equal(q.starts(), 1);
  q.ok(7);
  assert.deepEqual(await Promise.all(asked), Array(3).fill({ ok: true, value: 7 }));
  assert.deepEqual(seen, [{ ok: true, value: 7 }], 'the watcher sees the read once, not once per asker');
  const again = probe();
  assert.equal(q.starts(), 2);
  q.ok(8);
  assert.deepEqual(await again, { ok: true, value: 8 });
});

test('a read not settled within the bound answers LATE, and the next ask waits for that same read', async () => {
  const q = controlled();
  const seen: ProbeRead<number>[] = [];
  const probe = queueProbe(q.read, 50, (r) => seen.push(r));
  const t0 = Date.now();
  assert.equal(await probe(), LATE);
  assert.ok(Date.now() - t0 < 1_000, 'the bound holds');
  assert.deepEqual(seen, [], 'a late answer is no settled read');
  const next = probe();
  assert.equal(q.starts(), 1, 'no second command while the first still waits for Redis');
  q.fail(new Error('the job queue (Redis) at redis://127.0.0.1:6379 does not answer: connect ECONNREFUSED'));
  const r = await next;
  assert.deepEqual(r, {
    ok: false,
    reason: 'the job queue (Redis) at redis://127.0.0.1:6379 does not answer: connect ECONNREFUSED',
  });
  assert.deepEqual(seen, [r]);
});

test('a failed read is an answer, not a throw, whatever it failed with', async () => {
  const probe = queueProbe(() => Promise.reject('refused'), 1_000);
  assert.deepEqual(await probe(), { ok: false, reason: 'refused' });
});
