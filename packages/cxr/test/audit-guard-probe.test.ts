// The write check of a server in a write outage (serve/audit_guard.ts writesRefused): /health answers 503 while the
// audit log refuses rows, and learns from a write of its own (AuditStore.probeWrite) that it takes them again. A
// probe that fails for a reason other than an outage (a role granted nothing on audit_probe) says nothing about the
// log: kept as "refused", /health would answer 503 for ever, and a load balancer would send no prediction to end it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Logger } from '../src/log';
import { AuditGuard } from '../src/serve/audit_guard';
import { type AuditStore, AuditUnavailableError } from '../src/serve/audit_store';

function guardOver(probeError: () => Error) {
  const errors: string[] = [];
  const log = { warn: () => {}, info: () => {}, error: (_o: unknown, msg: string) => errors.push(msg) };
  const raw = {
    kind: 'postgres',
    location: 'pg',
    insert: async () => {
      throw new AuditUnavailableError('pg', 'refuses the request: could not extend file (SQLSTATE 53100)');
    },
    ping: async () => {},
    probeWrite: async () => {
      throw probeError();
    },
  } as unknown as AuditStore;
  return { guard: new AuditGuard(raw, log as unknown as Logger, 200), errors };
}

test('a probe refused for want of rights drops the write flag and names the grant', async () => {
  const { guard, errors } = guardOver(() =>
    Object.assign(new Error('permission denied for table audit_probe'), {
      code: '42501',
    }),
  );
  await assert.rejects(guard.store.insert({} as never, null), AuditUnavailableError);
  assert.equal(await guard.writesRefused(), false, '/health would answer 503 until a row it never gets');
  assert.match(errors.join('\n'), /audit_probe/);
});

test('a probe refused by the outage itself keeps the log refusing writes', async () => {
  const { guard, errors } = guardOver(() => new AuditUnavailableError('pg', 'still full (SQLSTATE 53100)'));
  await assert.rejects(guard.store.insert({} as never, null), AuditUnavailableError);
  assert.equal(await guard.writesRefused(), true);
  assert.deepEqual(errors, []);
});
