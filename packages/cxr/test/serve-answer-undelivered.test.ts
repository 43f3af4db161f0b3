// An answer made for a client that has left meanwhile: its whole request arrived, then the client hung up while
// the server worked (a queue or an audit log that hung), and the server's answer, a 503, went to a closed socket.
// fastify writes nothing then, so no "request completed" line and no count followed: the failure was invisible.
// Now it is logged once as dropped, with the answer it was given, and counted under that status.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import pino from 'pino';
import { buildApp } from '../src/serve/app';
import { HttpError } from '../src/serve/http_error';
import { metricValue, parseMetrics } from './prometheus-text';
import { idleJobs, multipartBody, serverParts, XRAY_JPEG } from './serve-fixtures';

const parts = serverParts('serve-undelivered');
// Whether the route has asked the queue; `answer` lets the queue answer, once the client has hung up: too late,
// that it is away.
let asked = false;
let answer: () => void = () => {};

const jobs = idleJobs({
  submitUpload: async () => {
    asked = true;
    await new Promise<void>((r) => {
      answer = r;
    });
    throw new HttpError(503, 'QUEUE_UNAVAILABLE', 'the job queue (Redis) does not answer');
  },
});

interface LogLine {
  msg?: string;
  req?: { method?: string; url?: string };
  res?: { statusCode?: number };
  code?: string;
}

test('a 503 made after its client hung up is logged once as dropped, with its code, and counted as 503', {
  timeout: 30_000,
}, async () => {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const app = await buildApp({ predictor: parts.predictor, audit: parts.audit, jobs, logger });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as net.AddressInfo).port;
  const route = '/api/v1/jobs';
  const counted = async (status: string) =>
    metricValue(parseMetrics((await app.inject('/metrics')).body), 'cxr_http_requests_total', {
      method: 'POST',
      route,
      status,
    });
  try {
    const { body, headers } = multipartBody('image', 'film.jpeg', fs.readFileSync(XRAY_JPEG), 'image/jpeg');
    const sock = net.connect({ port, host: '127.0.0.1' });
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    // The whole request, ?patientAge included (never logged), then the client leaves while the queue is asked.
    sock.write(
      `POST ${route}?patientAge=4 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${headers['content-type']}\r\n` +
        `Content-Length: ${body.length}\r\n\r\n`,
    );
    sock.write(body);
    const sent = Date.now();
    while (!asked) {
      if (Date.now() - sent > 10_000) throw new Error(`the queue was never asked: ${JSON.stringify(lines)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    // The client leaves; the queue answers once the server has seen it go (no connection open any more).
    sock.destroy();
    const connections = () => new Promise<number>((r) => app.server.getConnections((_e, n) => r(n)));
    while ((await connections()) > 0) {
      if (Date.now() - sent > 10_000) throw new Error('the server never saw the client go');
      await new Promise((r) => setTimeout(r, 20));
    }
    answer();
    const dropped = async () => lines.filter((l) => /^request dropped/.test(l.msg ?? ''));
    const end = Date.now() + 10_000;
    while ((await dropped()).length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const said = await dropped();
    assert.equal(said.length, 1, JSON.stringify(lines));
    assert.equal(said[0].code, 'QUEUE_UNAVAILABLE');
    assert.equal(said[0].res?.statusCode, 503);
    assert.match(said[0].msg ?? '', /closed the connection before its answer \(503 QUEUE_UNAVAILABLE\), which was not/);
    assert.equal(said[0].req?.method, 'POST');
    assert.equal(said[0].req?.url, `${route}?patientAge=*****`, 'the URL as the request log writes it');
    assert.equal(await counted('503'), 1, 'counted under the status it was answered with');
    assert.equal(await counted('499'), 0);
    assert.ok(!lines.some((l) => l.msg === 'request completed' && l.req?.url?.startsWith(route)));
  } finally {
    await app.close();
  }
});
