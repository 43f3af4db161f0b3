// What the Analyze page tells a clinician while films are analyzed, in Chromium against a real server:
//  - the status line: "Analyzing 1 of 3… 2 waiting.", never "Done" while a later batch is still at work,
//    then a true summary ("Done: 2 files assessed, 1 cannot be assessed, 1 not analyzed: see its card."), also
//    when the server cannot be reached;
//  - screen readers: one message per finished card ("<file>: Above the pneumonia threshold: 62.1 %
//    probability of pneumonia, threshold 50.0 % (balanced)."), every summary announced even when it repeats
//    the last one, and only the latest kept in the page; no live region over the whole results, no assertive
//    alert per card, neutral alt text, a named figure;
//  - "Try again" on a card the server could not be reached for;
//  - a new card below the fold (1280×720) is scrolled into view, focus on it after the file picker;
//  - a file over the server's upload limit is refused before it is sent, its size in MB (in bytes where the MB
//    would read as the limit); the limit is the server's as it is now, not as it was when the page asked first:
//    a refusal's own field (maxUploadBytes) gives it, whatever its words, else /health is asked again;
//  - upload progress on a slow link.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import { XRAY_JPEG, XRAY_JPEG_NORMAL } from './serve-fixtures';
import {
  finished,
  Gate,
  isPrediction,
  noChromium,
  openPage,
  pageSuite,
  ready,
  recordAnnouncements,
  upload,
} from './browser-fixture';

const skip = noChromium;
/** The server's upload limit here: the slow-link film (772 KB) fits, a padded 1.5 MB file does not. */
const LIMIT = 1024 * 1024;

const suite = pageSuite('web-feedback', skip, { server: { maxUploadBytes: LIMIT } });

/** Every text the status line takes, in order. */
async function recordStatus(page: Page): Promise<() => Promise<string[]>> {
  await page.evaluate(() => {
    const w = window as unknown as { statuses: string[] };
    w.statuses = [];
    const status = document.querySelector('#status')!;
    new MutationObserver(() => w.statuses.push(status.textContent ?? '')).observe(status, {
      childList: true,
      characterData: true,
      subtree: true,
    });
  });
  return () => page.evaluate(() => (window as unknown as { statuses: string[] }).statuses);
}

/** Until `n` cards are finished and the status line has its summary (said after the card's images). */
async function settled(page: Page, n: number): Promise<void> {
  await finished(page, n);
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.startsWith('Done'));
}

/** What the announcer holds now. */
const held = (page: Page) => page.$$eval('#announcer > *', (ps) => ps.map((p) => p.textContent ?? ''));
const status = async (page: Page) => (await page.textContent('#status')) ?? '';
const cardMessage = (name: string) =>
  new RegExp(
    `^${name.replace('.', '\\.')}: (Above|Below) the pneumonia threshold: ` +
      // Decimals enough to tell the probability from the threshold; a note when it is close to it.
      '(\\d+\\.\\d+|[<>]\u00a0\\d+\\.\\d+)\u00a0% probability of pneumonia, threshold 50\\.0+\u00a0% \\(balanced\\)' +
      '(: close to the threshold, a weak finding)?\\.$',
  );

test('the status line sums up every batch truly, and screen readers hear one message per card and per summary', {
  skip,
  timeout: 180_000,
}, async () => {
  const gate = new Gate(isPrediction);
  const { page, errors } = await suite.open({ gate });
  const statuses = await recordStatus(page);
  const announced = await recordAnnouncements(page);
  // A grey page: the server answers it, but cannot assess it (no finding, counted apart).
  const blank = await sharp({ create: { width: 256, height: 256, channels: 3, background: '#808080' } })
    .png()
    .toBuffer();

  // A first batch held at the server; a second dropped meanwhile, one of its files not an image.
  gate.close();
  await page.setInputFiles('#file-input', [upload('a.jpeg', XRAY_JPEG)]);
  await gate.seen(1);
  await page.setInputFiles('#file-input', [
    upload('b.jpeg', XRAY_JPEG),
    upload('notes.png', Buffer.from('notes')),
    upload('blank.png', blank),
  ]);
  assert.equal(await status(page), 'Analyzing 1 of 4… 3 waiting.');
  gate.release();
  await settled(page, 4);
  const summary = 'Done: 2 files assessed, 1 cannot be assessed, 1 not analyzed: see its card.';
  const seen = await statuses();
  assert.deepEqual(
    seen.filter((s) => s.startsWith('Done')),
    [summary],
    `no "Done" before the last file: ${seen.join(' | ')}`,
  );
  assert.equal(seen.at(-1), summary);
  assert.ok(seen.includes('Analyzing 4 of 4…'), seen.join(' | '));

  let said = await announced();
  assert.deepEqual(said.slice(0, 2), ['Analyzing 1 file.', 'Analyzing 3 files.']);
  assert.match(said[2], cardMessage('a.jpeg'));
  assert.match(said[3], cardMessage('b.jpeg'));
  assert.match(said[4], /^notes\.png: not analyzed: .*not a JPEG, PNG or DICOM image/);
  assert.match(said[5], /^blank\.png: cannot assess: /);
  assert.equal(said[6], summary);
  // Only the latest stay in the page, between the status line and the results: a reader going line by line
  // hears the last card's and the summary, not every message since the page was opened.
  await page.waitForFunction(() => document.querySelector('#announcer')!.childElementCount <= 2, null, {
    timeout: 5_000,
  });
  assert.deepEqual(await held(page), said.slice(-2));
  // A file the server refuses as such gets no "Try again": trying again would change nothing.
  assert.equal(await page.isVisible('.result:has(.file-name:text-is("notes.png")) .retry'), false);

  // The same film twice, one batch after the other: the second summary, the same words, is said again.
  for (const n of [5, 6]) {
    await page.setInputFiles('#file-input', [upload('a.jpeg', XRAY_JPEG)]);
    await settled(page, n);
  }
  said = await announced();
  assert.deepEqual(said.slice(-6, -3), said.slice(-3), said.join(' | '));
  assert.equal(said.at(-1), 'Done: 1 file assessed.');
  assert.match(said.at(-2) ?? '', cardMessage('a.jpeg'));

  // Not a live region over the whole results (read piecemeal), nor an assertive alert in every card.
  assert.equal(await page.getAttribute('#results', 'aria-live'), null);
  assert.equal(await page.$$eval('#results [role="alert"], #results [aria-live]', (e) => e.length), 0);
  const first = '.result:first-child';
  await page.waitForFunction(
    (sel) => (document.querySelector<HTMLImageElement>(`${sel} img.original`)?.naturalWidth ?? 0) > 0,
    first,
  );
  // Neutral words for whatever was uploaded, and the figure named for what it holds, not by its slider.
  assert.equal(await page.getAttribute(`${first} img.original`, 'alt'), 'Uploaded image a.jpeg');
  assert.equal(await page.getAttribute(`${first} figure`, 'aria-label'), 'a.jpeg: image with heat map');

  // The server cannot be reached: the summary says so, and "Try again" on the card analyzes it.
  await page.route('**/api/v1/predictions?*', (r) => r.abort('connectionrefused'));
  await page.setInputFiles('#file-input', [upload('c.jpeg', XRAY_JPEG)]);
  await settled(page, 7);
  assert.match(
    await status(page),
    /^Done: 1 file not analyzed\. The server could not be reached for 1 file: check that it is running/,
  );
  assert.match((await announced()).at(-2) ?? '', /^c\.jpeg: not analyzed: Cannot reach the cxr server\./);
  await page.unroute('**/api/v1/predictions?*');
  await page.click(`${first} .retry`);
  await page.waitForSelector(`${first}[data-state="done"]`, { timeout: 60_000 });
  await page.waitForFunction(() => document.querySelector('#status')?.textContent === 'Done: 1 file assessed.');
  assert.equal(await page.evaluate(() => document.activeElement?.matches('.result:first-child')), true);
  assert.deepEqual(
    errors.filter((e) => !/ERR_CONNECTION_REFUSED|Failed to load resource/.test(e)),
    [],
  );
  await page.context().close();
});

test('at 1280×720 a new card below the fold is brought into view; after the file picker, focus is on it', {
  skip,
  timeout: 120_000,
}, async () => {
  const { page, errors } = await suite.open({ viewport: { width: 1280, height: 720 }, reducedMotion: 'reduce' });
  const place = () =>
    page.evaluate(() => {
      const card = document.querySelector('.result')!.getBoundingClientRect();
      const maxScroll = document.documentElement.scrollHeight - window.innerHeight;
      return { top: card.top, scrollY: window.scrollY, maxScroll, height: window.innerHeight };
    });
  // Brought up to the window's upper half, where the page leaves it (reveal.ts: room for its answer below; a
  // card that grows there is not moved again), or as far up as the page scrolls (a short page cannot put it
  // higher), its headline in view either way. (Asking for the very top failed under load: the card reached the
  // upper half while the page was still shorter, and grew there.)
  const inView = (at: Awaited<ReturnType<typeof place>>) =>
    at.top >= 0 && at.top < at.height - 150 && (at.top <= at.height / 2 || at.scrollY >= at.maxScroll - 1);
  await page.setInputFiles('#file-input', [upload('drop.jpeg', XRAY_JPEG)]);
  await finished(page, 1);
  let at = await place();
  assert.ok(at.scrollY > 0, `the page scrolled: ${JSON.stringify(at)}`);
  assert.ok(inView(at), `the card starts in view: ${JSON.stringify(at)}`);

  await page.evaluate(() => window.scrollTo(0, 0));
  await page.focus('#file-input');
  await page.setInputFiles('#file-input', [upload('picked.jpeg', XRAY_JPEG)]);
  at = await place();
  // Just picked, the card still pending (the page follows it as it grows): its headline is in view.
  assert.ok(at.top >= 0 && at.top < at.height - 150, JSON.stringify(at));
  assert.equal(await page.evaluate(() => document.activeElement?.matches('.result:first-child')), true);
  await finished(page, 2);
  assert.deepEqual(errors, []);
  await page.context().close();
});

test("a file over the server's upload limit is not sent, and says its size in MB; uploads show their progress", {
  skip,
  timeout: 120_000,
}, async () => {
  // The page learns the limit from /health (maxUploadBytes), where the server it talks to says it.
  const predictions = new Gate(isPrediction);
  const { page, errors } = await suite.open({ gate: predictions });
  const film = fs.readFileSync(XRAY_JPEG);
  const big = Buffer.concat([film, Buffer.alloc(LIMIT + LIMIT / 2 - film.length)]);
  await page.setInputFiles('#file-input', [upload('big.jpeg', big)]);
  await finished(page, 1);
  assert.equal(predictions.requests.length, 0, 'nothing is sent');
  assert.equal(
    await page.textContent('.result .warnings li.error'),
    "big.jpeg is 1.5 MB, over this server's 1 MB limit: it was not sent. " +
      'Export a smaller copy of the image (e.g. a JPEG of the film) and analyze that.',
  );
  // A byte over: in MB it would read as the limit ("1.0 MB, over this server's 1 MB limit").
  await page.setInputFiles('#file-input', [upload('byte.jpeg', big.subarray(0, LIMIT + 1))]);
  await finished(page, 2);
  assert.match(
    (await page.textContent('.result:first-child .warnings li.error')) ?? '',
    /^byte\.jpeg is 1,048,577 bytes, over this server's 1 MB limit \(1,048,576 bytes\): it was not sent\./,
  );

  // A slow link: the bar and the bytes sent, and the file still waiting counted on the status line.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 50,
    downloadThroughput: 2_000_000,
    uploadThroughput: 250 * 1024,
  });
  await page.setInputFiles('#file-input', [upload('slow.jpeg', XRAY_JPEG_NORMAL), upload('next.jpeg', XRAY_JPEG)]);
  assert.equal(await page.textContent('#status'), 'Analyzing 1 of 2… 1 waiting.');
  const sending = await page.waitForFunction(
    () => {
      const bar = document.querySelector<HTMLProgressElement>('.result:first-child progress.upload');
      const text = document.querySelector('.result:first-child .progress-text')?.textContent ?? '';
      return bar && !bar.hidden && bar.value > 0 && bar.value < bar.max ? text : null;
    },
    undefined,
    { timeout: 30_000, polling: 50 },
  );
  assert.match(String(await sending.jsonValue()), /^Sending \d+(\.\d)? (KB|MB) of 0\.7 MB \(\d+\u00a0%\)$/);
  await finished(page, 4);
  assert.equal(await page.isVisible('.result:first-child .progress'), false, 'the progress line goes with the answer');
  assert.deepEqual(errors, []);
  await page.context().close();
});

/** /health's first answer gives `bytes` as the limit: the server's before a restart with another --max-upload-mb. */
async function limitWas(page: Page, bytes: number): Promise<void> {
  await page.route(
    '**/api/v1/health',
    async (route) => {
      const res = await route.fetch();
      await route.fulfill({ response: res, json: { ...(await res.json()), maxUploadBytes: bytes } });
    },
    { times: 1 },
  );
}

test("the upload limit the page goes by is the server's as it is now, not as it was when the page first asked", {
  skip,
  timeout: 120_000,
}, async () => {
  const film = fs.readFileSync(XRAY_JPEG);
  const big = Buffer.concat([film, Buffer.alloc(LIMIT + LIMIT / 2 - film.length)]);
  // The limit was 32 MB: the server refuses the 1.5 MB film, and the card gives the limit it has now.
  let { page } = await openPage(suite.browser);
  let predictions = new Gate(isPrediction);
  await predictions.install(page);
  await limitWas(page, 32 * LIMIT);
  await ready(page, suite.server.url);
  await page.setInputFiles('#file-input', [upload('stale.jpeg', big)]);
  await finished(page, 1);
  assert.equal(predictions.requests.length, 1);
  assert.equal(
    await page.textContent('.result .warnings li.error'),
    "stale.jpeg is 1.5 MB, over this server's 1 MB limit: the server refused it. " +
      'Export a smaller copy of the image (e.g. a JPEG of the film) and analyze that.',
  );
  // The next one is not sent: the page now goes by the limit the server gave.
  await page.setInputFiles('#file-input', [upload('next.jpeg', big)]);
  await finished(page, 2);
  assert.equal(predictions.requests.length, 1, 'sent again, over the limit the server gave');
  assert.match((await page.textContent('.result:first-child .warnings li.error')) ?? '', /1 MB limit: it was not sent/);
  await page.context().close();

  // The limit was 256 KB: a 772 KB film is asked about again, and sent.
  ({ page } = await openPage(suite.browser));
  predictions = new Gate(isPrediction);
  await predictions.install(page);
  await limitWas(page, LIMIT / 4);
  await ready(page, suite.server.url);
  await page.setInputFiles('#file-input', [upload('fits.jpeg', XRAY_JPEG_NORMAL)]);
  await finished(page, 1);
  assert.equal(await page.getAttribute('.result', 'data-state'), 'done', (await page.textContent('.result')) ?? '');
  assert.equal(predictions.requests.length, 1);
  await page.context().close();
});

/** The server's refusals of uploads as too large, changed by `change` on their way to the page. */
async function refusalsChanged(page: Page, change: (problem: Record<string, unknown>) => unknown): Promise<void> {
  await page.route(
    (url) => url.pathname === '/api/v1/predictions',
    async (route) => {
      const res = await route.fetch();
      if (res.status() !== 413) return route.fulfill({ response: res });
      await route.fulfill({ response: res, json: change(await res.json()) });
    },
  );
}

test("a refusal as too large gives the page the server's limit in its maxUploadBytes, not in its words", {
  skip,
  timeout: 120_000,
}, async () => {
  const film = fs.readFileSync(XRAY_JPEG);
  const big = Buffer.concat([film, Buffer.alloc(LIMIT + LIMIT / 2 - film.length)]);
  const refused = (name: string) =>
    `${name} is 1.5 MB, over this server's 1 MB limit: the server refused it. ` +
    'Export a smaller copy of the image (e.g. a JPEG of the film) and analyze that.';
  // /health cannot be reached, and the refusal is worded otherwise: only its field gives the limit.
  let { page } = await openPage(suite.browser);
  await page.route('**/api/v1/health', (route) => route.abort());
  await refusalsChanged(page, (p) => ({ ...p, detail: 'Die Datei ist zu groß.' }));
  let predictions = new Gate(isPrediction);
  await predictions.install(page);
  await ready(page, suite.server.url);
  await page.setInputFiles('#file-input', [upload('worded.jpeg', big)]);
  await finished(page, 1);
  assert.equal(predictions.requests.length, 1);
  assert.equal(await page.textContent('.result .warnings li.error'), refused('worded.jpeg'));
  await page.context().close();

  // A refusal without the field (an older server): the page asks /health again, which says the limit now.
  ({ page } = await openPage(suite.browser));
  await limitWas(page, 32 * LIMIT);
  await refusalsChanged(page, ({ maxUploadBytes, ...rest }) => rest);
  predictions = new Gate(isPrediction);
  await predictions.install(page);
  await ready(page, suite.server.url);
  await page.setInputFiles('#file-input', [upload('older.jpeg', big)]);
  await finished(page, 1);
  assert.equal(predictions.requests.length, 1);
  assert.equal(await page.textContent('.result .warnings li.error'), refused('older.jpeg'));
  await page.context().close();
});
