// GET /api/v1/token: a token learns its own name and scopes before any answer names it (the page on a shared
// workstation says whose token it holds), whatever its scopes; a server without tokens answers a null name and
// every scope; no token, or a wrong one, is 401; the token's value is never sent back, and no cache keeps the
// answer. The answers are the ones the OpenAPI document lists.
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type AuditStore, openAuditStore } from '../src/serve/audit';
import { buildApp } from '../src/serve/app';
import { parseTokenList, SCOPES } from '../src/serve/auth';
import { ROUTE_SCOPES } from '../src/serve/security';
import { ask, contractSetUp, ctx, TOKEN } from './openapi-contract-fixtures';

contractSetUp('token-whoami-s31');

const TOKENS = { pacs: 'pacs-token-s31-0001', prom: 'prom-token-s31-0002', ward: 'ward-token-s31-0003' };
let scoped: FastifyInstance | undefined;
let scopedAudit: AuditStore | undefined;

after(async () => {
  await scoped?.close();
  await scopedAudit?.close();
});

test('the token sent: its name and scopes, as documented, never its value, never cached', async () => {
  assert.deepEqual(await ask('GET', '/api/v1/token', 200), { name: 'default', scopes: [...SCOPES] });
  const res = await ctx.app.inject({ url: '/api/v1/token', headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.ok(!res.body.includes(TOKEN), 'the token is never echoed');
  await ask('GET', '/api/v1/token', 401, { auth: false });
  await ask('GET', '/api/v1/token', 401, { headers: { authorization: 'Bearer not-the-token-0' } });
});

test('a server that needs no token: no name, every scope', async () => {
  assert.deepEqual(await ask('GET', '/api/v1/token', 200, { on: ctx.bare }), { name: null, scopes: [...SCOPES] });
});

test('any scope may ask: each limited token learns its own name and scopes', async () => {
  assert.equal(ROUTE_SCOPES['GET /api/v1/token'], 'any');
  // Opened here, not in a hook: the shared set-up's predictor is ready once the tests run.
  scopedAudit = await openAuditStore(path.join(ctx.dir, 'scoped.db'));
  const tokens = parseTokenList(
    `pacs[jobs]:${TOKENS.pacs}\nprom[metrics]:${TOKENS.prom}\nward[predict,audit]:${TOKENS.ward}`,
    'tokens',
  );
  const app = await buildApp({ predictor: ctx.predictor, audit: scopedAudit, tokens, webDir: null });
  scoped = app;
  const who = async (token: string) => {
    const res = await app.inject({ url: '/api/v1/token', headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.statusCode, 200, res.body);
    assert.ok(!res.body.includes(token));
    return res.json();
  };
  assert.deepEqual(await who(TOKENS.pacs), { name: 'pacs', scopes: ['jobs'] });
  assert.deepEqual(await who(TOKENS.prom), { name: 'prom', scopes: ['metrics'] });
  assert.deepEqual(await who(TOKENS.ward), { name: 'ward', scopes: ['predict', 'audit'] });
  // HEAD as GET, without the body.
  const head = await app.inject({
    method: 'HEAD',
    url: '/api/v1/token',
    headers: { authorization: `Bearer ${TOKENS.pacs}` },
  });
  assert.equal(head.statusCode, 200);
  assert.equal(head.body, '');
});

test('the document lists the operation with its id', () => {
  assert.equal(ctx.doc.paths['/api/v1/token']?.get?.operationId, 'getToken');
});
