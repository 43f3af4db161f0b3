// Refusals that say what is wrong: a history query whose 'since' is after its 'until' is a 400 naming both (it
// answered an empty page, read as "no predictions"), and a 401 says whether no token came, a header that is not a
// bearer token, or a token that is not accepted, with the same words for every refused token.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/serve/app';
import { auditRecord, serverParts } from './serve-fixtures';

const TOKEN = 'refusal-words-token';
let app: FastifyInstance;

serverParts('serve-refusal-words', {
  ready: async ({ predictor, audit }) => {
    // Rows at 00:01, 00:02 and 00:03 on 2026-01-01 (UTC).
    for (const n of [1, 2, 3]) await audit.insert(auditRecord(n), null);
    app = await buildApp({ predictor, audit, apiToken: TOKEN });
  },
  closing: () => app?.close(),
});

const bearer = { authorization: `Bearer ${TOKEN}` };

test("history: 'since' after 'until' is a 400 that names both, not an empty page", async () => {
  const res = await app.inject({
    url: '/api/v1/predictions?since=2026-01-01T00:03:00Z&until=2026-01-01T00:01:00Z',
    headers: bearer,
  });
  assert.equal(res.statusCode, 400, res.body);
  assert.equal(res.json().code, 'INVALID_REQUEST');
  assert.equal(
    res.json().detail,
    "query parameters 'since' (2026-01-01T00:03:00.000Z) and 'until' (2026-01-01T00:01:00.000Z) are the wrong " +
      "way round: 'since' is after 'until', so no time is in between; swap them",
  );
  // Compared as instants, whatever the offsets they were written with: 01:02+01:00 is 00:02Z, before 00:03Z.
  const offsets = await app.inject({
    url: '/api/v1/predictions?since=2026-01-01T01:02:00%2B01:00&until=2026-01-01T00:03:00Z',
    headers: bearer,
  });
  assert.deepEqual([offsets.statusCode, offsets.json().total], [200, 2]);
  // The same instant for both is a range of one moment, not the wrong way round.
  const one = await app.inject({
    url: '/api/v1/predictions?since=2026-01-01T00:02:00Z&until=2026-01-01T00:02:00Z',
    headers: bearer,
  });
  assert.deepEqual([one.statusCode, one.json().total], [200, 1]);
});

test('401: no token, a header that is not a bearer token, and a refused token are told apart', async () => {
  const refusal = async (headers: Record<string, string>) => {
    const res = await app.inject({ url: '/api/v1/model', headers });
    assert.equal(res.statusCode, 401);
    assert.equal(res.json().code, 'UNAUTHORIZED');
    return { detail: res.json().detail as string, challenge: String(res.headers['www-authenticate']) };
  };
  const none = await refusal({});
  assert.equal(none.detail, 'this server needs an API token: send "Authorization: Bearer <token>"');
  assert.equal(none.challenge, 'Bearer realm="cxr"');
  const basic = await refusal({ authorization: 'Basic dXNlcjpwYXNz' });
  assert.equal(basic.detail, 'the Authorization header is not a bearer token: send "Authorization: Bearer <token>"');
  const wrong = await refusal({ authorization: 'Bearer refusal-words-tokeN' });
  assert.equal(
    wrong.detail,
    'the API token sent is not accepted by this server: check it, or ask whoever runs the server for a valid one',
  );
  assert.equal(wrong.challenge, 'Bearer realm="cxr", error="invalid_token"');
  // Nothing about how near a token came: one character off and nothing alike read the same.
  assert.deepEqual(await refusal({ authorization: 'Bearer zzzzzzzzzzzzzzzzzzzzzzzzzzzzz' }), wrong);
  assert.equal((await app.inject({ url: '/api/v1/model', headers: bearer })).statusCode, 200);
});
