// Requests Node's HTTP server used to refuse itself, before fastify, with a bare status and no body: an
// HTTP/1.1 request without Host (400) and an Expect other than 100-continue (417). Both are answered as
// problems, as every other error (docs/api.md), over a raw socket since fastify.inject cannot send them.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/serve/app';
import { serverParts } from './serve-fixtures';

let app: FastifyInstance;
let port: number;

serverParts('serve-bare', {
  ready: async ({ predictor, audit }) => {
    app = await buildApp({ predictor, audit });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as net.AddressInfo).port;
  },
  closing: () => app?.close(),
});

/** Sends `request` as written; the status and body of what comes back before the server closes. */
function raw(request: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1' }, () => sock.write(request));
    const got: Buffer[] = [];
    sock.on('data', (b: Buffer) => got.push(b));
    sock.on('error', reject);
    sock.on('close', () => {
      const text = Buffer.concat(got).toString();
      const [head, body = ''] = text.split('\r\n\r\n');
      const type = /^content-type: *(.*)$/im.exec(head)?.[1] ?? '';
      resolve({ status: Number(head.split(' ')[1]), type, body });
    });
  });
}

test('an HTTP/1.1 request without Host is a 400 problem; HTTP/1.0 may still leave it out', async () => {
  const res = await raw('GET /api/v1/health HTTP/1.1\r\nConnection: close\r\n\r\n');
  assert.equal(res.status, 400);
  assert.match(res.type, /^application\/problem\+json/);
  assert.equal(JSON.parse(res.body).code, 'INVALID_REQUEST');
  assert.match(JSON.parse(res.body).detail, /needs a Host header/);
  const old = await raw('GET /api/v1/health HTTP/1.0\r\n\r\n');
  assert.equal(old.status, 200, old.body);
});

test('an Expect other than 100-continue is a 417 problem; 100-continue still works', async () => {
  const res = await raw(
    'POST /api/v1/predictions HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 999-foo\r\nConnection: close\r\n' +
      'Content-Type: multipart/form-data; boundary=B\r\nContent-Length: 10\r\n\r\n0123456789',
  );
  assert.equal(res.status, 417);
  assert.match(res.type, /^application\/problem\+json/);
  assert.deepEqual(JSON.parse(res.body), {
    type: 'urn:cxr:problem:expectation-failed',
    title: 'Expectation Failed',
    status: 417,
    detail: 'cannot meet "Expect: 999-foo"; only 100-continue is supported (or send no Expect)',
    code: 'EXPECTATION_FAILED',
  });
  const cont = await raw(
    'GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n',
  );
  assert.equal(cont.status, 100);
});
