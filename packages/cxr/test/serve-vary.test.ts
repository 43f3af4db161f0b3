// Vary: Accept on every /api/v1 answer. The API chooses its answer by the Accept header (406 for a client that
// takes none of an operation's types, serve/accept.ts), so a shared cache in front of it (a hospital proxy) must
// key what it keeps by Accept too: without Vary it could hand a client the 406 chosen for another's Accept.
// Checked over a real connection, as a proxy sees it, and merged with a Vary set by another part (CORS' Origin,
// compression's Accept-Encoding) rather than replacing it.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import Fastify, { type FastifyInstance } from 'fastify';
import { honourAccept } from '../src/serve/accept';
import { buildApp } from '../src/serve/app';
import { gradientFilm, serverParts } from './serve-fixtures';

const TOKEN = 'vary-test-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };

let app: FastifyInstance | undefined;
let url = '';

serverParts('serve-vary', {
  ready: async ({ predictor, audit }) => {
    app = await buildApp({ predictor, audit, apiToken: TOKEN, requestLog: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  },
  closing: () => app?.close(),
});

/** The status and Vary of a request over the socket; the body read, so that the connection is reused. */
async function vary(method: string, p: string, headers: Record<string, string> = {}, body?: FormData) {
  const res = await fetch(`${url}${p}`, { method, headers, body });
  await res.arrayBuffer();
  return { status: res.status, vary: res.headers.get('vary') };
}

test('every /api/v1 answer says Vary: Accept, errors, HEAD, 404 and 405 included, over a real connection', async () => {
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(await gradientFilm())]), 'film.png');
  const posted = await fetch(`${url}/api/v1/predictions`, { method: 'POST', headers: AUTH, body: form });
  assert.equal(posted.status, 200);
  assert.equal(posted.headers.get('vary'), 'Accept');
  const { id } = (await posted.json()) as { id: string };
  const cases: [string, string, Record<string, string>, number][] = [
    ['GET', '/api/v1/model', AUTH, 200],
    ['HEAD', '/api/v1/model', AUTH, 200],
    // The same URL and token, answered otherwise for another Accept: what a cache must not mix up.
    ['GET', '/api/v1/model', { ...AUTH, accept: 'text/csv' }, 406],
    ['GET', '/api/v1/health', {}, 200],
    ['GET', `/api/v1/predictions/${id}`, AUTH, 200],
    ['GET', `/api/v1/predictions/${id}/thumbnail.png`, { ...AUTH, accept: 'image/png' }, 200],
    ['GET', `/api/v1/predictions/${id}/thumbnail.png`, { ...AUTH, accept: 'application/json' }, 406],
    ['GET', '/api/v1/predictions/00000000-0000-4000-8000-000000000000', AUTH, 404],
    ['GET', '/api/v1/predictions?colour=red', AUTH, 400],
    ['GET', '/api/v1/model', {}, 401],
    // Answered by the router, outside the routes' scope: a cache meets these URLs too.
    ['GET', '/api/v1/nothing', AUTH, 404],
    ['GET', '/api/v1/predictions/x/y/z', {}, 404],
    ['DELETE', '/api/v1/predictions', AUTH, 405],
    ['PUT', '/api/v1/health', {}, 405],
  ];
  for (const [method, p, headers, status] of cases) {
    const r = await vary(method, p, headers);
    assert.equal(r.status, status, `${method} ${p} ${JSON.stringify(headers)}`);
    assert.equal(r.vary, 'Accept', `${method} ${p} ${JSON.stringify(headers)}: Vary`);
  }
});

test('Vary: Accept joins a Vary another part set, once, and leaves Vary: * alone', async () => {
  const server = Fastify();
  await server.register(async (scope) => {
    honourAccept(scope);
    // What CORS or compression would have set before the answer goes out.
    scope.get('/origin', async (_req, reply) => reply.header('Vary', 'Origin, Accept-Encoding').send({}));
    scope.get('/listed', async (_req, reply) => reply.header('Vary', 'origin, accept').send({}));
    scope.get('/any', async (_req, reply) => reply.header('Vary', '*').send({}));
  });
  try {
    const varyOf = async (p: string) => (await server.inject({ url: p })).headers.vary;
    assert.equal(await varyOf('/origin'), 'Origin, Accept-Encoding, Accept');
    assert.equal(await varyOf('/listed'), 'origin, accept', 'Accept already listed (case-insensitive): not twice');
    assert.equal(await varyOf('/any'), '*');
  } finally {
    await server.close();
  }
});
