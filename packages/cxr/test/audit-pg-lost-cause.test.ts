// PostgreSQL stopped under a server: a connection is told why (57P01 terminating connection due to administrator
// command) on its 'error' event, and a query on it later fails only with the driver's "Client has encountered a
// connection error and is not queryable". The audit log's outage reason names the cause seen first
// (audit_pg.ts LostConnections), with the driver's real errors from the real PostgreSQL of scripts/stack.sh.
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Client } from 'pg';
import { LostConnections, pgOutage } from '../src/serve/audit_pg';
import { postgresUnavailable, type Stack, startStack, stopStack } from './stack-fixture';

let stack: Stack | undefined;
let pgSkip: string | false = postgresUnavailable() ?? false;
if (!pgSkip) {
  try {
    stack = startStack('audit-pg-lost-cause', ['postgresql']);
  } catch (e) {
    pgSkip = `PostgreSQL did not start: ${(e as Error).message.slice(0, 2000)}`;
  }
}
const url = stack?.env.CXR_DB ?? '';

after(() => stopStack(stack));

test('a query on a connection lost to 57P01: the outage reason names 57P01, not only "not queryable"', {
  skip: pgSkip,
  timeout: 120_000,
}, async () => {
  const victim = new Client({ connectionString: url, application_name: 'cxr-victim' });
  const lost = new LostConnections();
  const heard = new Promise<unknown>((resolve) => victim.once('error', resolve));
  victim.on('error', (e) => lost.saw(e));
  await victim.connect();
  const admin = new Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'cxr-victim'");
    const first = (await heard) as { code?: string };
    assert.equal(first.code, '57P01');
    const vague = await victim.query('SELECT 1').then(
      () => assert.fail('a lost connection answered'),
      (e: unknown) => e,
    );
    assert.match((vague as Error).message, /^Client has encountered a connection error and is not queryable/);
    const why = pgOutage(vague);
    assert.ok(why);
    const said = lost.explain(vague, why);
    assert.match(said, /^does not answer: Client has encountered a connection error and is not queryable \(/);
    assert.match(said, /the connection was lost first: terminating connection .*administrator .*\(SQLSTATE 57P01\)\)$/);
    // The cause itself, or an error with its own words, is said as it is.
    assert.equal(lost.explain(first, pgOutage(first)!), pgOutage(first));
    assert.equal(new LostConnections().explain(vague, why), why, 'no cause seen: the driver words alone');
  } finally {
    await admin.end();
    await victim.end().catch(() => {});
  }
});
