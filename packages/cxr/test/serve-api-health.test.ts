// /health through fastify.inject (routes/health.ts): readiness is a ping of the audit log, probes share one
// row count, and a count that fails or outlasts the probe's bound is no outage.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { AuditStore } from '../src/serve/audit';
import { buildApp } from '../src/serve/app';
import { HEALTH_AUDIT_WAIT_MS } from '../src/serve/routes/health';
import { serverParts } from './serve-fixtures';

const parts = serverParts('serve-api-health');

test('health: readiness is a ping; probes share one row count, and a failed or slow count is no outage', async () => {
  let calls = 0;
  let failNext = true;
  const counting: AuditStore = Object.create(parts.audit);
  counting.count = async () => {
    calls++;
    if (failNext) {
      failNext = false;
      throw new Error('count failed for a moment');
    }
    return parts.audit.count();
  };
  const probed = await buildApp({ predictor: parts.predictor, audit: counting });
  try {
    const first = await probed.inject('/api/v1/health');
    assert.equal(first.statusCode, 200, 'the log answers its ping');
    assert.equal(first.json().predictions, null, 'no count yet: the first one failed and is not kept');
    const answers = await Promise.all(Array.from({ length: 5 }, () => probed.inject('/api/v1/health')));
    for (const a of answers) assert.equal(a.json().predictions, await parts.audit.count());
    assert.equal(calls, 2, 'one failed count, then one count for five probes');
  } finally {
    await probed.close();
  }
  // A COUNT(*) slower than the probe's bound (a large PostgreSQL log): still ready, and no outage declared.
  // The count ends when the test says (or 20 s after it began, ten times the bound), not on a timer racing the
  // answer: a probe answered while it still runs was answered within the bound, however loaded the machine.
  let release = (_n: number) => {};
  const counted = new Promise<number>((resolve) => {
    release = resolve;
  });
  let countDone = false;
  void counted.then(() => (countDone = true));
  const slow: AuditStore = Object.create(parts.audit);
  slow.count = () => {
    setTimeout(() => release(7), 20_000).unref();
    return counted;
  };
  const patient = await buildApp({ predictor: parts.predictor, audit: slow });
  try {
    // Each probe waits the first count's bound (HEALTH_AUDIT_WAIT_MS) for the same running count: the fastest of
    // up to three is bounded, so that a test process descheduled for a while cannot fail it, and the bound stays
    // tight (2.5 s: a wait of 4 s fails it).
    assert.equal(HEALTH_AUDIT_WAIT_MS, 2_000, 'the bound below is set for a 2 s wait');
    let fastest = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 3 && fastest >= 2_500; i++) {
      const t0 = performance.now();
      const a = await patient.inject('/api/v1/health');
      fastest = Math.min(fastest, performance.now() - t0);
      assert.equal(a.statusCode, 200);
      assert.equal(a.json().predictions, null);
      assert.equal(countDone, false, 'answered within the bound, not after the count');
    }
    assert.ok(fastest < 2_500, `answered after ${fastest.toFixed(0)} ms`);
    release(7);
    await counted;
    await new Promise((r) => setImmediate(r));
    const b = await patient.inject('/api/v1/health');
    assert.deepEqual([b.statusCode, b.json().predictions, b.json().audit], [200, 7, 'ok']);
    const metrics = await patient.inject('/metrics');
    assert.match(metrics.body, /^cxr_audit_available 1$/m);
  } finally {
    release(7);
    await patient.close();
  }
});
