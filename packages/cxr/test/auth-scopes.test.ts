// Per-token scopes: `name[scope,...]:TOKEN` limits a token to some operations (least privilege: the PACS bridge
// queues jobs and reads no audit log, Prometheus reads /metrics only), a name without brackets keeps every scope
// (every file and variable written before scopes means what it meant), a limited token gets 403
// INSUFFICIENT_SCOPE naming the scope it lacks (not 401), a `predict` token reads back only the predictions it
// made, and a scope name that does not exist stops the server at start-up with the line named.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/serve/app';
import { loadTokens, parseTokenList } from '../src/serve/auth';
import { ROUTE_SCOPES } from '../src/serve/security';
import { CLI, envWithoutTokens, gradientFilm, multipartBody, serverParts } from './serve-fixtures';

let app: FastifyInstance;
let film: Buffer;

const TOKENS = {
  admin: 'admin-token-0001', // no brackets: every scope, as before scopes existed
  pacs: 'pacs-token-00002',
  ward: 'ward-token-00003',
  auditor: 'auditor-token-04',
  prom: 'prom-token-00005',
};

const parts = serverParts('auth-scopes', {
  ready: async ({ dir, predictor, audit }) => {
    film = await gradientFilm();
    // The tokens as a file gives them, through the parser `cxr serve` uses.
    const file = path.join(dir, 'tokens');
    fs.writeFileSync(
      file,
      [
        `admin:${TOKENS.admin}`,
        `pacs[jobs]:${TOKENS.pacs}`,
        `ward[predict]:${TOKENS.ward}`,
        `auditor[audit]:${TOKENS.auditor}`,
        `prom[metrics]:${TOKENS.prom}`,
      ].join('\n'),
      { mode: 0o600 },
    );
    app = await buildApp({ predictor, audit, tokens: loadTokens({}, file) });
  },
  closing: () => app?.close(),
});

const bearer = (who: keyof typeof TOKENS) => ({ authorization: `Bearer ${TOKENS[who]}` });

function predict(who: keyof typeof TOKENS) {
  const { body, headers } = multipartBody('image', 'film.png', film);
  return app.inject({
    method: 'POST',
    url: '/api/v1/predictions',
    payload: body,
    headers: { ...headers, ...bearer(who) },
  });
}

function get(who: keyof typeof TOKENS, url: string) {
  return app.inject({ method: 'GET', url, headers: bearer(who) });
}

/** A 403 that names the missing scope, as a problem document and in WWW-Authenticate (RFC 6750 3.1). */
function assertRefused(res: { statusCode: number; headers: Record<string, unknown>; body: string }, scope: string) {
  assert.equal(res.statusCode, 403, res.body);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const problem = JSON.parse(res.body) as { code: string; detail: string };
  assert.equal(problem.code, 'INSUFFICIENT_SCOPE');
  assert.match(problem.detail, new RegExp(`does not have the scope '${scope}'`));
  assert.equal(res.headers['www-authenticate'], `Bearer realm="cxr", error="insufficient_scope", scope="${scope}"`);
}

test('a limited token is refused outside its scopes (403 naming the scope) and served inside them', async () => {
  // The PACS bridge: jobs only (this server has no queue, so POST /jobs gets past the token to its 503 NO_QUEUE).
  assertRefused(await predict('pacs'), 'predict');
  assertRefused(await get('pacs', '/api/v1/predictions'), 'audit');
  assertRefused(await get('pacs', '/metrics'), 'metrics');
  const jobs = await app.inject({
    method: 'POST',
    url: '/api/v1/jobs',
    payload: { orthancInstances: ['0123abcd-0123abcd-0123abcd-0123abcd-0123abcd'] },
    headers: bearer('pacs'),
  });
  assert.equal(jobs.statusCode, 503, jobs.body);
  assert.equal(JSON.parse(jobs.body).code, 'NO_QUEUE');
  assert.equal((await get('pacs', '/api/v1/model')).statusCode, 200, 'the model is for any token');
  // HEAD is GET's: refused alike.
  const head = await app.inject({ method: 'HEAD', url: '/api/v1/predictions', headers: bearer('pacs') });
  assert.equal(head.statusCode, 403);

  // Prometheus: /metrics only.
  assert.equal((await get('prom', '/metrics')).statusCode, 200);
  assertRefused(await predict('prom'), 'predict');

  // A wrong token is still 401, not 403.
  const wrong = await app.inject({ url: '/api/v1/predictions', headers: { authorization: 'Bearer nobody-token-9' } });
  assert.equal(wrong.statusCode, 401);
});

test('a predict token reads back its own predictions only; audit reads them all; names are logged', async () => {
  const mine = await predict('ward');
  assert.equal(mine.statusCode, 200, mine.body);
  const { id, thumbnailUrl } = JSON.parse(mine.body) as { id: string; thumbnailUrl: string | null };
  const theirs = await predict('admin');
  assert.equal(theirs.statusCode, 200, theirs.body);
  const otherId = (JSON.parse(theirs.body) as { id: string }).id;
  assert.equal((await parts.audit.get(id))?.requestedBy, 'ward', 'the token name is recorded, without its scopes');

  assert.equal((await get('ward', `/api/v1/predictions/${id}`)).statusCode, 200);
  assert.ok(thumbnailUrl, 'a thumbnail was kept');
  assert.equal((await get('ward', thumbnailUrl)).statusCode, 200, 'the thumbnail of its own answer');
  const list = JSON.parse((await get('ward', '/api/v1/predictions')).body) as {
    items: { id: string }[];
    total: number;
  };
  assert.deepEqual(
    list.items.map((r) => r.id),
    [id],
  );
  assert.equal(list.total, 1);
  // Another token's prediction is not there for it, as if it did not exist.
  for (const url of [`/api/v1/predictions/${otherId}`, `/api/v1/predictions/${otherId}/thumbnail.png`]) {
    const res = await get('ward', url);
    assert.equal(res.statusCode, 404, `${url}: ${res.body}`);
    assert.match(JSON.parse(res.body).detail, /^no prediction with id /);
  }
  assertRefused(
    await app.inject({
      method: 'POST',
      url: '/api/v1/jobs',
      payload: { orthancInstances: [] },
      headers: bearer('ward'),
    }),
    'jobs',
  );

  // The auditor reads everything, and predicts nothing.
  const all = JSON.parse((await get('auditor', '/api/v1/predictions')).body) as { total: number };
  assert.equal(all.total, 2);
  assert.equal((await get('auditor', `/api/v1/predictions/${otherId}/thumbnail.png`)).statusCode, 200);
  assertRefused(await predict('auditor'), 'predict');
  // A token written without scopes, as every token before them, reads everything too.
  assert.equal((JSON.parse((await get('admin', '/api/v1/predictions')).body) as { total: number }).total, 2);
  assert.equal((await get('admin', '/metrics')).statusCode, 200);
});

test('every operation needing a token has its scope listed (a new route is not open to limited tokens)', async () => {
  const doc = JSON.parse((await app.inject({ url: '/api/v1/openapi.json' })).body) as {
    paths: Record<string, Record<string, { security?: unknown[] }>>;
  };
  let seen = 0;
  for (const [p, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      if (Array.isArray(op.security) && op.security.length === 0) continue; // public: health, this document
      const route = p.replace('{path}', '*').replace(/\{(\w+)\}/g, ':$1');
      assert.ok(`${method.toUpperCase()} ${route}` in ROUTE_SCOPES, `${method.toUpperCase()} ${route} has no scope`);
      seen++;
    }
  }
  assert.ok(seen >= 8, `only ${seen} operations in the document`);
});

test('token lists: scopes in brackets after the name; old lines keep every scope; bad scopes are refused', () => {
  assert.deepEqual(parseTokenList('alice:alice-token-1\n', 'f'), [{ name: 'alice', token: 'alice-token-1' }]);
  assert.deepEqual(parseTokenList('pacs[jobs,predict]:pacs,token[1]\n', 'f'), [
    { name: 'pacs', token: 'pacs,token[1]', scopes: ['jobs', 'predict'] },
  ]);
  // A variable: the comma between brackets belongs to the name, the others separate entries, as before.
  assert.deepEqual(parseTokenList('pacs[jobs,audit]:pacs-token-1, ops:ops-token-22,x:x[a]b-token', 'V', 'variable'), [
    { name: 'pacs', token: 'pacs-token-1', scopes: ['jobs', 'audit'] },
    { name: 'ops', token: 'ops-token-22' },
    { name: 'x', token: 'x[a]b-token' },
  ]);
  // A list as often written, a space after each comma: the same scopes, in a file and in a variable (it was
  // "a token has no spaces" from the file, "an entry without ':'" from the variable). Spaces elsewhere still
  // separate entries.
  const spaced = { name: 'pacs', token: 'pacs-token-1', scopes: ['jobs', 'audit'] };
  assert.deepEqual(parseTokenList('pacs[jobs, audit]:pacs-token-1\n', 'f'), [spaced]);
  assert.deepEqual(parseTokenList('pacs[ jobs ,\taudit ]:pacs-token-1 ops:ops-token-22', 'V', 'variable'), [
    spaced,
    { name: 'ops', token: 'ops-token-22' },
  ]);
  assert.deepEqual(loadTokens({ CXR_API_TOKENS: 'pacs[jobs, audit]:pacs-token-1' }), [spaced]);
  assert.throws(() => parseTokenList('pacs[jobs]:pacs-token-1 ops:ops-token-22', 'f'), /f:1: one name:token per line/);
  assert.throws(
    () => parseTokenList('alice:alice-token-1\npacs[jobz]:pacs-token-1\n', 'tokens.txt'),
    /^ApiTokenError: tokens\.txt:2: 'pacs': unknown scope 'jobz' \(scopes: predict, jobs, audit, metrics\)$/,
  );
  assert.throws(() => parseTokenList('pacs[]:pacs-token-1', 'tokens.txt'), /tokens\.txt:1: 'pacs': no scopes/);
  assert.throws(() => loadTokens({ CXR_API_TOKENS: 'pacs[admin]:pacs-token-1' }), /CXR_API_TOKENS: 'pacs': unknown/);
});

test('cxr serve refuses a tokens file naming a scope that does not exist, before it listens', () => {
  const file = path.join(parts.dir, 'bad-tokens');
  fs.writeFileSync(file, `admin:${TOKENS.admin}\npacs[jobs,audits]:${TOKENS.pacs}\n`, { mode: 0o600 });
  const r = spawnSync(
    process.execPath,
    [
      CLI,
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--model',
      path.join(parts.dir, 'model'),
      '--db',
      path.join(parts.dir, 'x.db'),
      '--tokens-file',
      file,
    ],
    { env: envWithoutTokens(), encoding: 'utf8', timeout: 120_000 },
  );
  assert.notEqual(r.status, 0, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: 'pacs': unknown scope 'audits'`),
  );
  assert.doesNotMatch(r.stderr, /listening on/);
  assert.ok(!r.stderr.includes(TOKENS.pacs), 'the token was printed');
});
