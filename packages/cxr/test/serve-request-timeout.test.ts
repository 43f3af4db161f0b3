// A request whose body was still arriving when Node's request timeout cut it: the server answered 408 and closed
// the connection (app.ts clientErrorHandler), and the route saw a torn body, just as when a client hangs up. It
// used to be logged and counted as the client's doing (499 CLIENT_CLOSED_REQUEST); it is the server's 408.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import pino from 'pino';
import { buildApp } from '../src/serve/app';
import { metricValue, parseMetrics } from './prometheus-text';
import { idleJobs, serverParts } from './serve-fixtures';

const parts = serverParts('serve-request-timeout');

interface LogLine {
  msg?: string;
  req?: { method?: string; url?: string };
  res?: { statusCode?: number };
  code?: string;
}

async function cutByTimeout(route: string, contentType: string, opening: string, chunk: Buffer): Promise<void> {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const app = await buildApp({
    predictor: parts.predictor,
    audit: parts.audit,
    jobs: idleJobs(),
    logger,
    headersTimeoutMs: 800,
    requestTimeoutMs: 1_500,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as net.AddressInfo).port;
  const counted = async (status: string) =>
    metricValue(parseMetrics((await app.inject('/metrics')).body), 'cxr_http_requests_total', {
      method: 'POST',
      route,
      status,
    });
  let trickle: NodeJS.Timeout | undefined;
  try {
    const sock = net.connect({ port, host: '127.0.0.1' });
    sock.on('error', () => {});
    let answer = '';
    sock.on('data', (d) => {
      answer += d.toString('latin1');
    });
    const closed = new Promise((r) => sock.once('close', r));
    await new Promise((r) => sock.once('connect', r));
    // A body that keeps coming, a little at a time (well inside the body watch's idle and rate windows of 10 s),
    // but never all of it within the request timeout.
    sock.write(
      `POST ${route}?patientAge=4 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${contentType}\r\n` +
        `Content-Length: 400000\r\n\r\n${opening}`,
    );
    trickle = setInterval(() => sock.write(chunk), 100);
    await closed;
    clearInterval(trickle);
    assert.match(answer, /^HTTP\/1\.1 408 /, 'the client is told: 408, then the connection closed');
    const dropped = () => lines.filter((l) => /^request dropped/.test(l.msg ?? ''));
    const end = Date.now() + 10_000;
    while (dropped().length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const said = dropped();
    assert.equal(said.length, 1, JSON.stringify(lines));
    assert.equal(said[0].code, 'TIMEOUT');
    assert.equal(said[0].res?.statusCode, 408);
    assert.match(said[0].msg ?? '', /did not arrive whole within the server's request timeout \(1\.5 s\)/);
    assert.equal(said[0].req?.url, `${route}?patientAge=*****`, 'the URL as the request log writes it');
    assert.equal(await counted('408'), 1, "counted as the server's 408");
    assert.equal(await counted('499'), 0, "not as a client's hang-up");
  } finally {
    clearInterval(trickle);
    await app.close();
  }
}

test(
  "a film upload cut by the request timeout is logged and counted as the server's 408, not a client's 499",
  {
    timeout: 30_000,
  },
  () =>
    cutByTimeout(
      '/api/v1/predictions',
      'multipart/form-data; boundary=x-boundary',
      '--x-boundary\r\nContent-Disposition: form-data; name="image"; filename="film.png"\r\n' +
        'Content-Type: image/png\r\n\r\n',
      Buffer.alloc(2048, 7),
    ),
);

test("a JSON job request cut by the request timeout is the server's 408 too", { timeout: 30_000 }, () =>
  cutByTimeout('/api/v1/jobs', 'application/json', '{"orthanc": [', Buffer.from(' '.repeat(2048))),
);
