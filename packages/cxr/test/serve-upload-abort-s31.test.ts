// A client that hangs up while its upload's body is still arriving (the web page's Cancel, a closed tab): the
// request has no answer to give, so it is logged once as dropped (499, nginx's code for the client's doing) with
// its method, url and the bytes read, counted as 499 in cxr_http_requests_total, and every byte it held of the
// upload budget is given back. Its route's reading used to be left waiting on a body that never ended: nothing
// logged but "incoming request", nothing counted, its bytes held until the request timeout.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import pino from 'pino';
import { buildApp } from '../src/serve/app';
import { metricValue, parseMetrics } from './prometheus-text';
import { idleJobs, serverParts } from './serve-fixtures';

const KiB = 1024;

const parts = serverParts('serve-upload-abort');
let queued = 0;

const jobs = idleJobs({
  submitUpload: async () => {
    queued++;
    return { id: 'job-upload', status: 'queued' };
  },
});

interface LogLine {
  msg?: string;
  reqId?: string;
  req?: { method?: string; url?: string };
  res?: { statusCode?: number };
  code?: string;
  bytesRead?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const route of ['/api/v1/predictions', '/api/v1/jobs']) {
  test(`a client that hangs up mid-body on POST ${route}: logged once and counted as 499, its bytes released`, {
    timeout: 30_000,
  }, async () => {
    const lines: LogLine[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const app = await buildApp({
      predictor: parts.predictor,
      audit: parts.audit,
      jobs,
      logger,
      maxUploadBytes: 1024 * KiB,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as net.AddressInfo).port;
    const metrics = async () => parseMetrics((await app.inject('/metrics')).body);
    const held = async () => metricValue(await metrics(), 'cxr_upload_bytes_held');
    const dropped = async () =>
      metricValue(await metrics(), 'cxr_http_requests_total', { method: 'POST', route, status: '499' });
    try {
      const before = await held();
      // A typed age in the query, as the page sends it: the log keeps no age (request_log.ts), dropped or not.
      const url = `${route}?patientAge=4`;
      const sock = net.connect({ port, host: '127.0.0.1' });
      sock.on('error', () => {});
      await new Promise((r) => sock.once('connect', r));
      const sent = 300 * KiB;
      sock.write(
        `POST ${url} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=AB\r\n` +
          `Content-Length: ${900 * KiB}\r\n\r\n` +
          '--AB\r\nContent-Disposition: form-data; name="image"; filename="f.png"\r\nContent-Type: image/png\r\n\r\n',
      );
      sock.write(Buffer.alloc(sent, 7));
      // The bytes are read (and held) before the client hangs up: the abort comes while the file is being read.
      for (const end = Date.now() + 10_000; (await held()) < before + 200 * KiB; await sleep(20))
        assert.ok(Date.now() < end, `the upload was not read (${await held()} bytes held)`);
      sock.destroy();
      for (const end = Date.now() + 10_000; (await dropped()) !== 1 || (await held()) !== before; await sleep(20))
        assert.ok(Date.now() < end, `not counted as 499 (${await dropped()}) or bytes still held (${await held()})`);
      const drops = lines.filter((l) => /request dropped/.test(l.msg ?? ''));
      assert.equal(drops.length, 1, JSON.stringify(lines));
      const [line] = drops;
      assert.equal(line.res?.statusCode, 499);
      assert.equal(line.code, 'CLIENT_CLOSED_REQUEST');
      assert.match(line.msg ?? '', /closed the connection/);
      assert.equal(line.req?.method, 'POST');
      assert.equal(line.req?.url, `${route}?patientAge=*****`);
      assert.ok(!JSON.stringify(lines).includes('patientAge=4'), 'the typed age is in the log');
      assert.ok(
        typeof line.bytesRead === 'number' && line.bytesRead >= 200 * KiB && line.bytesRead <= sent + KiB,
        `bytesRead ${line.bytesRead}`,
      );
      // Nothing else said about it: no answer was written, so no "request completed" line.
      const same = lines.filter((l) => l.reqId === line.reqId && l.msg !== 'incoming request');
      assert.equal(same.length, 1, JSON.stringify(same));
      assert.equal(queued, 0, 'nothing queued');
      assert.equal(await dropped(), 1, 'counted once');
    } finally {
      await app.close();
    }
  });
}
