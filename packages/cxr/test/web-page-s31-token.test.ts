// Who is reading, in Chromium against a server with named tokens: the header says a token is in use (its name as
// soon as the server has said it) with "Forget token", which removes it from the tab so that the next clinician is
// asked for their own; History says who asked for each answer; the Analyze page says, in its default mode, that
// answers are recorded in the audit log.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { XRAY_JPEG } from './serve-fixtures';
import { axeProblems, finished, noChromium, openPage, pageSuite } from './browser-fixture';

const skip = noChromium;
const TOKEN = 'night-shift-token-for-tests';
const suite = pageSuite('web-page-s31-token', skip, { server: { tokens: [{ name: 'dr-night', token: TOKEN }] } });

const stored = (page: import('playwright-core').Page) => page.evaluate(() => sessionStorage.getItem('cxr.apiToken'));

test('the token in use is shown and can be forgotten; History says who asked; the log is said', {
  skip,
  timeout: 120_000,
}, async () => {
  const { page } = await openPage(suite.browser);
  await page.goto(suite.server.url);
  await page.waitForSelector('#token-dialog[open]');
  assert.equal(await page.isVisible('#token-state'), false, 'no token yet');
  await page.fill('#token-input', TOKEN);
  await page.press('#token-input', 'Enter');
  await page.waitForSelector('body[data-ready="true"]');
  // Named at once (GET /token; web-page-s31-whoami.test.ts), before any answer.
  await page.waitForFunction(() => document.querySelector('#token-who')?.textContent?.includes('"dr-night"'));
  assert.equal(await page.textContent('#token-forget'), 'Forget token');
  assert.match((await page.textContent('#mode-note')) ?? '', /recorded in its audit log .*name of the token in use/);

  await page.setInputFiles('#file-input', [XRAY_JPEG]);
  await finished(page, 1);
  assert.equal(await page.getAttribute('.result', 'data-state'), 'done');
  assert.equal(await page.textContent('#token-who'), 'Signed in with the token "dr-night"');
  assert.deepEqual(await axeProblems(page), []);

  await page.goto(`${suite.server.url}/#/history`);
  await page.waitForSelector('#history-table tbody td.asked-by');
  const head = await page.$$eval('#history-table thead th', (ths) => ths.map((t) => t.textContent));
  assert.equal(head[2], 'Asked by');
  assert.equal(await page.textContent('#history-table tbody td.asked-by'), 'dr-night');
  assert.equal(
    await page.$$eval('#history-table tbody tr:first-child td', (tds) => tds.length),
    head.length,
    'a cell per column',
  );

  // Forgotten: gone from the tab and the header; the next film asks for a token.
  await page.click('#token-forget');
  assert.equal(await stored(page), null);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('cxr.apiTokenName')), null);
  assert.equal(await page.isVisible('#token-state'), false);
  await page.goto(`${suite.server.url}/#/analyze`);
  await page.setInputFiles('#file-input', [XRAY_JPEG]);
  await page.waitForSelector('#token-dialog[open]');
  await page.fill('#token-input', TOKEN);
  await page.press('#token-input', 'Enter');
  // The first card went with the token it was analyzed under: the new one is the only card.
  await finished(page, 1);
  assert.equal(await page.textContent('#token-who'), 'Signed in with the token "dr-night"');
  await page.context().close();
});
