// A slow film can be cancelled, in Chromium against a real server on a slow link (the QA registrar's 23 MB
// DICOM at 1.5 MB/s held every film dropped after it):
//  - on its way, the card's "Cancel" stops the upload: the card says "Cancelled" with "Try again", the next film
//    starts at once, the server sees the upload cut short (a 499) and makes no prediction and no audit row of it,
//    and the summary counts it as cancelled, not as a film that failed;
//  - waiting for its turn, it is cancelled at once, never sent, out of the line's count, and "Try again" sends it;
//  - the summary is worded for a person ("1 file not analyzed: see its card", no "0 assessed").
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import type { CDPSession, Page } from 'playwright-core';
import * as path from 'node:path';
import { createLogger } from '../src/log';
import { type RunningServer, startServer } from '../src/serve/server';
import { STATIC_DIR } from '../src/web/build';
import { loadPredictor, XRAY_JPEG, XRAY_JPEG_NORMAL } from './serve-fixtures';
import { finished, Gate, isPrediction, noChromium, openPage, pageSuite, ready, upload } from './browser-fixture';
import { metricValue, parseMetrics } from './prometheus-text';

const skip = noChromium;
const suite = pageSuite('web-page-s31-cancel', skip);

/** A film of about 3 MB (XRAY_JPEG's bytes, padded): a minute to send at 50 KB/s. */
const SLOW = Buffer.concat([fs.readFileSync(XRAY_JPEG), Buffer.alloc(3_000_000)]);
/** A film of about 20 MB: more than the sockets on both sides hold, so that the link's pace shows. */
const LARGE = Buffer.concat([fs.readFileSync(XRAY_JPEG), Buffer.alloc(20_000_000)]);

/**
 * A slow link in front of the server: what the browser sends goes on at `rate.bytesPerSecond` (0: at once), its
 * answers at once. Chromium's own throttling holds a request in the browser, so that the server never sees one
 * cancelled: here it gets part of the body, as over a slow network, and then the connection closes.
 */
async function slowLink(target: string, rate: { bytesPerSecond: number }): Promise<{ url: string; close(): void }> {
  const to = new URL(target);
  const proxy = net.createServer((client) => {
    const server = net.connect(Number(to.port), to.hostname);
    server.pipe(client);
    client.on('data', (chunk: Buffer) => {
      if (rate.bytesPerSecond <= 0) return void server.write(chunk);
      client.pause();
      const step = Math.max(1, Math.floor(rate.bytesPerSecond / 20));
      const send = (at: number) => {
        if (client.destroyed || server.destroyed) return;
        if (at >= chunk.length) return void client.resume();
        server.write(chunk.subarray(at, at + step));
        setTimeout(send, rate.bytesPerSecond <= 0 ? 0 : 50, at + step);
      };
      send(0);
    });
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
    client.on('error', () => server.destroy());
    server.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const port = (proxy.address() as net.AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, close: () => proxy.close() };
}

/** The tab's uploads at `bytesPerSecond` (-1: as fast as the machine). */
async function uploadAt(cdp: CDPSession, bytesPerSecond: number): Promise<void> {
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: bytesPerSecond < 0 ? 0 : 20,
    downloadThroughput: -1,
    uploadThroughput: bytesPerSecond,
  });
}

/** The card of the `n`th file of the batch (a fresh tab's only batch: its cards are in the files' order). */
const nth = (n: number) => `.result:nth-child(${n})`;

/** Until the upload of `card`'s film has started (its bar moved). */
async function sending(page: Page, card: string): Promise<void> {
  await page.waitForFunction(
    (sel) => {
      const bar = document.querySelector<HTMLProgressElement>(`${sel} progress.upload`);
      return bar !== null && !bar.hidden && bar.value > 0 && bar.value < bar.max;
    },
    card,
    { timeout: 30_000, polling: 50 },
  );
}

/** The audit log's answers on `server`, as the API lists them. */
async function logged(server: RunningServer): Promise<number> {
  const res = await fetch(`${server.url}/api/v1/predictions`);
  return ((await res.json()) as { total: number }).total;
}

/** The predictions `server` made (any answer), by its metrics. */
async function predictions(server: RunningServer): Promise<number> {
  return metricValue(parseMetrics(await (await fetch(`${server.url}/metrics`)).text()), 'cxr_predictions_total');
}

/** The ids of the requests to /api/v1/predictions with `method` in a server's log, in order, each once. */
function requestIds(lines: Record<string, unknown>[], method: string): string[] {
  // Several lines may name one request (its incoming line, its dropped line): ids, not lines, are requests.
  const ids = lines.flatMap((l) => {
    const req = l.req as { method?: string; url?: string } | undefined;
    return req?.method === method && req.url?.startsWith('/api/v1/predictions') ? [String(l.reqId)] : [];
  });
  return [...new Set(ids)];
}

/** The status a server's log says request `id` was answered with, or null. */
function answered(lines: Record<string, unknown>[], id: string): number | null {
  const done = lines.find((l) => l.reqId === id && l.res !== undefined);
  return done ? ((done.res as { statusCode: number }).statusCode ?? null) : null;
}

/** The page's server as startPageServer starts it, its log lines kept in `lines` (one JSON object each). */
function loggingServer(lines: Record<string, unknown>[]): Promise<RunningServer> {
  const dir = path.join(suite.dir, 'logged');
  fs.mkdirSync(dir, { recursive: true });
  const write = (text: string) => {
    for (const line of text.split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
  };
  return startServer({
    host: '127.0.0.1',
    port: 0,
    dbPath: path.join(dir, 'audit.db'),
    webDir: process.env.CXR_TEST_WEB_DIR ?? STATIC_DIR,
    loadPredictor: () => loadPredictor(suite.modelDir),
    log: createLogger({ level: 'info', destination: { write } }),
  });
}

test('a film on its way is cancelled: nothing recorded, the next film starts at once, counted as cancelled', {
  skip,
  timeout: 180_000,
}, async () => {
  const lines: Record<string, unknown>[] = [];
  const server = await loggingServer(lines);
  const rate = { bytesPerSecond: 256 * 1024 };
  const link = await slowLink(server.url, rate);
  const { page, errors } = await openPage(suite.browser);
  await ready(page, link.url);
  await page.setInputFiles('#file-input', [upload('slow.jpeg', LARGE), upload('next.jpeg', XRAY_JPEG_NORMAL)]);
  const [slow, next] = [nth(1), nth(2)];
  await sending(page, slow);
  const cancel = page.getByRole('button', { name: 'Cancel slow.jpeg' });
  assert.equal(await cancel.isVisible(), true, 'a Cancel on the film being sent');
  await cancel.click({ timeout: 5_000 });
  await page.waitForSelector(`${slow}[data-state="cancelled"]`, { timeout: 5_000 });
  // The next film is on its way at once, not after the slow one's minute.
  await page.waitForSelector(`${next} .progress:not([hidden])`, { timeout: 3_000 });
  rate.bytesPerSecond = 0;
  assert.equal(await page.textContent(`${slow} .label-badge`), 'Cancelled');
  // Not "nothing was recorded": a Cancel just after the server had the whole body may still be analyzed and logged.
  assert.equal(
    await page.textContent(`${slow} .warnings`),
    'Cancelled while it was being sent: if the server had already received it, it may still appear in History.',
  );
  assert.equal(await page.isVisible(`${slow} .cancel`), false);
  assert.equal(await page.textContent(`${slow} .retry`), 'Try again');
  // Focus goes from the Cancel that went to the card's "Try again".
  assert.equal(await page.evaluate(() => document.activeElement?.className), 'retry');
  await page.waitForSelector(`${next}[data-state="done"]`, { timeout: 60_000 });
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.startsWith('Done'));
  assert.equal(await page.textContent('#status'), 'Done: 1 file assessed, 1 cancelled.');
  assert.equal(await page.isVisible(`${next} .cancel`), false, 'none once answered');
  // The server recorded the film it was sent whole, and nothing for the one cut short.
  await page.waitForTimeout(1_000);
  assert.equal(await logged(server), 1);
  assert.equal(await predictions(server), 1);
  // Its log: the cancelled POST came in (part of its body arrived) and was not answered, the next one was.
  const posts = requestIds(lines, 'POST');
  assert.equal(posts.length, 2);
  assert.deepEqual(
    posts.map((id) => answered(lines, id) === 200),
    [false, true],
  );
  // ...and the cut one is logged as the client's doing (499), once.
  const dropped = lines.filter((l) => l.reqId === posts[0] && /^request dropped/.test(String(l.msg)));
  assert.equal(dropped.length, 1, JSON.stringify(lines.filter((l) => l.reqId === posts[0])));

  // "Try again" sends it, now at the machine's speed: analyzed and recorded.
  await page.click(`${slow} .retry`);
  await page.waitForSelector(`${slow}[data-state="done"]`, { timeout: 60_000 });
  assert.equal(await logged(server), 2);
  assert.deepEqual(errors, []);
  await page.context().close();
  link.close();
  await server.close();
});

test('a film waiting for its turn is cancelled at once and never sent; "Try again" sends it', {
  skip,
  timeout: 180_000,
}, async () => {
  const predictions = new Gate(isPrediction);
  const { page } = await suite.open({ gate: predictions });
  const cdp = await page.context().newCDPSession(page);
  await uploadAt(cdp, 50 * 1024);
  await page.setInputFiles('#file-input', [
    upload('slow.jpeg', SLOW),
    upload('waiting.jpeg', XRAY_JPEG_NORMAL),
    upload('last.jpeg', XRAY_JPEG),
  ]);
  const [slow, waiting, last] = [nth(1), nth(2), nth(3)];
  await sending(page, slow);
  assert.equal(await page.textContent('#status'), 'Analyzing 1 of 3… 2 waiting.');
  await page.getByRole('button', { name: 'Cancel waiting.jpeg' }).click({ timeout: 5_000 });
  // At once, while the slow film is still on its way; the line counts what is left to do.
  assert.equal(await page.getAttribute(waiting, 'data-state'), 'cancelled');
  assert.match((await page.textContent(`${waiting} .warnings`)) ?? '', /^Cancelled before it was sent/);
  assert.equal(await page.textContent('#status'), 'Analyzing 1 of 2… 1 waiting.');
  assert.equal(await page.getAttribute(slow, 'data-state'), 'pending');
  await uploadAt(cdp, -1);
  await page.waitForSelector(`${last}[data-state="done"]`, { timeout: 90_000 });
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.startsWith('Done'));
  const sent = predictions.requests.length;
  assert.equal(sent, 2, 'the cancelled film was never sent');
  assert.equal(await page.getAttribute(waiting, 'data-state'), 'cancelled', 'skipped at its turn');
  assert.equal(await page.textContent('#status'), 'Done: 2 files assessed, 1 cancelled.');

  await page.click(`${waiting} .retry`);
  await page.waitForSelector(`${waiting}[data-state="done"]`, { timeout: 60_000 });
  assert.equal(predictions.requests.length, sent + 1);
  assert.equal(await page.textContent('#status'), 'Done: 1 file assessed.');
  await page.context().close();
});

test('a summary says what happened, not "0 assessed"', { skip, timeout: 90_000 }, async () => {
  const { page } = await suite.open();
  await page.setInputFiles('#file-input', [upload('notes.jpeg', Buffer.from('not an image at all'))]);
  await finished(page, 1);
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.startsWith('Done'));
  assert.equal(await page.textContent('#status'), 'Done: 1 file not analyzed: see its card.');
  await page.setInputFiles('#file-input', [upload('a.jpeg', XRAY_JPEG), upload('b.txt', Buffer.from('nope'))]);
  await finished(page, 3);
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.startsWith('Done'));
  assert.equal(await page.textContent('#status'), 'Done: 1 file assessed, 1 not analyzed: see its card.');
  await page.context().close();
});
