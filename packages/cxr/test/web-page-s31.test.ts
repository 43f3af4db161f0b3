// A night shift's films are kept, in Chromium against a real server:
//  - a file dropped anywhere on the page is never opened by the browser in the tab (which replaced the page and
//    every result): on the Analyze view it is analyzed as on the zone, which says so; on History nothing is taken;
//  - the server away under a batch: the status line offers "Try all again" for every film it could not be reached
//    for, asks /health every few seconds while one waits, says when the server answers again, and stops asking.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { Page } from 'playwright-core';
import { XRAY_JPEG, XRAY_JPEG_NORMAL } from './serve-fixtures';
import { finished, noChromium, pageSuite, upload } from './browser-fixture';

const skip = noChromium;
const suite = pageSuite('web-page-s31', skip);

/**
 * Drags `name` (XRAY_JPEG's bytes) over the element `selector` and drops it there, as the browser's own events;
 * whether the page cancelled each (the browser opens a file whose drop nobody cancelled).
 */
function dropOn(page: Page, selector: string, name: string): Promise<{ over: boolean; drop: boolean }> {
  const bytes = fs.readFileSync(XRAY_JPEG).toString('base64');
  return page.evaluate(
    ({ selector, name, bytes }) => {
      const data = Uint8Array.from(atob(bytes), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([data], name, { type: 'image/jpeg' }));
      const target = document.querySelector(selector);
      if (!target) throw new Error(`no ${selector}`);
      const fire = (type: string) =>
        !target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: transfer }));
      return { over: fire('dragover'), drop: fire('drop') };
    },
    { selector, name, bytes },
  );
}

test('a file dropped beside the zone is analyzed as on it; on History it is not opened either', {
  skip,
  timeout: 120_000,
}, async () => {
  const { page } = await suite.open();
  assert.match((await page.textContent('#drop')) ?? '', /dropped anywhere on this page/);
  // The intended-use box, well away from the zone.
  assert.deepEqual(await dropOn(page, '.intended-use', 'beside.jpeg'), { over: true, drop: true });
  await finished(page, 1);
  assert.equal(await page.textContent('.result h3'), 'beside.jpeg');
  assert.equal(await page.getAttribute('.result', 'data-state'), 'done');
  assert.equal(await page.evaluate(() => document.querySelector('#drop')?.classList.contains('over')), false);
  // The same through Chromium's own drag and drop (a file from the desktop), on the header.
  // Where the header's title is now, not a fixed point: the finished card took the focus and the page may have
  // scrolled (CI once dropped at a fixed (100, 30) and no card came).
  await page.evaluate(() => window.scrollTo(0, 0));
  const box = (await page.locator('header.top').boundingBox())!;
  const at = { x: Math.round(box.x + Math.min(100, box.width / 2)), y: Math.round(box.y + box.height / 2) };
  const cdp = await page.context().newCDPSession(page);
  const data = { items: [], files: [XRAY_JPEG], dragOperationsMask: 1 };
  // Chromium sometimes loses a drag sent through CDP on a busy machine (CI at load 4+: no drop event reached the
  // page in 90 s). The drag is sent again only while no second card has come; a late first drop would then make a
  // third card, which the count on Analyze below refuses.
  const cards = () => page.$$eval('.result', (r) => r.length);
  for (let attempt = 0; attempt < 3 && (await cards()) < 2; attempt++) {
    for (const type of ['dragEnter', 'dragOver', 'drop'] as const)
      await cdp.send('Input.dispatchDragEvent', { type, ...at, data });
    await page
      .waitForFunction(() => document.querySelectorAll('.result').length >= 2, null, { timeout: 15_000 })
      .catch(() => undefined);
  }
  await finished(page, 2);
  assert.equal(new URL(page.url()).origin, suite.server.url.replace(/\/$/, ''));

  // On History the drop is cancelled too (the page stays), and nothing is analyzed behind the reader's back.
  await page.goto(`${suite.server.url}/#/history`);
  await page.waitForSelector('#history-table tbody tr');
  assert.deepEqual(await dropOn(page, '#history-table', 'history.jpeg'), { over: true, drop: true });
  assert.equal(new URL(page.url()).hash, '#/history');
  await page.goto(`${suite.server.url}/#/analyze`);
  assert.equal(await page.$$eval('.result', (r) => r.length), 2, 'the films dropped on Analyze only');
  await page.context().close();
});

test('the server away: "Try all again" for every film it could not be reached for, and its return is said', {
  skip,
  timeout: 120_000,
}, async () => {
  const { page, errors } = await suite.open();
  let down = true;
  let asked = 0;
  await page.route('**/api/v1/**', (route) => {
    const url = new URL(route.request().url());
    if (url.pathname === '/api/v1/health') asked += 1;
    const away = down && (url.pathname === '/api/v1/health' || url.pathname === '/api/v1/predictions');
    return away ? route.abort('connectionrefused') : route.fallback();
  });
  await page.setInputFiles('#file-input', [upload('a.jpeg', XRAY_JPEG), upload('b.jpeg', XRAY_JPEG_NORMAL)]);
  await finished(page, 2);
  assert.equal(
    await page.textContent('#status'),
    'Done: 2 files not analyzed. The server could not be reached for 2 files: check that it is running, then ' +
      'use "Try all again".',
  );
  assert.equal(await page.textContent('#status-action'), 'Try all again');
  assert.equal(await page.isVisible('#status-action'), true);

  // Back: the page notices by itself, within a few seconds.
  const before = asked;
  down = false;
  await page.waitForFunction(
    () => document.querySelector('#status')?.textContent?.startsWith('The server answers'),
    null,
    {
      timeout: 20_000,
    },
  );
  assert.ok(asked > before, 'it asked /health');
  assert.equal(
    await page.textContent('#status'),
    'The server answers again. Use "Try all again" to analyze the 2 files it could not be reached for.',
  );
  await page.click('#status-action');
  await page.waitForFunction(() => document.querySelectorAll('.result[data-state="done"]').length === 2, null, {
    timeout: 60_000,
  });
  await page.waitForFunction(() => document.querySelector('#status')?.textContent === 'Done: 2 files assessed.');
  assert.equal(await page.isVisible('#status-action'), false);
  // Nothing waits for the server any more: it is not asked again. (The server is back here, which stops the asking
  // by itself: web-page-s31-forget.test.ts shows it stops with the server still away once no film waits.)
  const after = asked;
  await page.waitForTimeout(6_000);
  assert.equal(asked, after, '/health asked with no film waiting');
  assert.deepEqual(
    errors.filter((e) => !/ERR_CONNECTION_REFUSED|Failed to load resource/.test(e)),
    [],
  );
  await page.context().close();
});
