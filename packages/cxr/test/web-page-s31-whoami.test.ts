// Whose token the page holds, said at once (GET /api/v1/token), in Chromium against a server with named tokens:
// the header names the token as soon as it is entered, and on load for one the tab kept, before any film is sent;
// a kept token the server refuses is asked for again; a server without the route (an older one: 404) names it
// once an answer has (requestedBy), as before.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { XRAY_JPEG } from './serve-fixtures';
import { finished, noChromium, openPage, pageSuite } from './browser-fixture';

const skip = noChromium;
const TOKEN = 'night-shift-token-for-whoami';
const suite = pageSuite('web-page-s31-whoami', skip, { server: { tokens: [{ name: 'dr-night', token: TOKEN }] } });

const NAMED = 'Signed in with the token "dr-night"';
const who = (page: Page) => page.textContent('#token-who');
/** Until the header names the token: `timeout` ms, then a failure that says what it showed. */
async function named(page: Page, timeout = 15_000): Promise<void> {
  await page
    .waitForFunction((t) => document.querySelector('#token-who')?.textContent === t, NAMED, { timeout })
    .catch(async () => assert.fail(`the header says ${JSON.stringify(await who(page))}, not ${NAMED}`));
}

/** Predictions the tab has sent. */
function countPredictions(page: Page): () => number {
  let n = 0;
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === '/api/v1/predictions') n++;
  });
  return () => n;
}

test('the token is named as soon as it is entered, and on load for one kept, before any film', {
  skip,
  timeout: 120_000,
}, async () => {
  const { page } = await openPage(suite.browser);
  const sent = countPredictions(page);
  await page.goto(suite.server.url);
  await page.waitForSelector('#token-dialog[open]');
  await page.fill('#token-input', TOKEN);
  await page.press('#token-input', 'Enter');
  await page.waitForSelector('body[data-ready="true"]');
  await named(page);

  // A token the tab kept, its name not: a reload names it again, with no dialog.
  await page.evaluate(() => sessionStorage.removeItem('cxr.apiTokenName'));
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  await named(page);
  assert.equal(await page.isVisible('#token-dialog'), false);
  assert.equal(sent(), 0, 'no film was sent to learn the name');
  await page.context().close();
});

test('a kept token the server refuses is asked for again; the right one is named', {
  skip,
  timeout: 120_000,
}, async () => {
  const { page } = await openPage(suite.browser);
  await page.goto(suite.server.url);
  await page.waitForSelector('#token-dialog[open]');
  await page.evaluate(() => sessionStorage.setItem('cxr.apiToken', 'not-the-token'));
  await page.reload();
  await page.waitForSelector('#token-dialog[open]');
  assert.equal(await page.isVisible('#token-error'), true, 'said to be refused');
  assert.equal(await who(page), 'Signed in with a token', 'a refused token has no name');
  await page.fill('#token-input', TOKEN);
  await page.press('#token-input', 'Enter');
  await named(page);
  await page.context().close();
});

test('a server without GET /token: the name comes with the first answer, as before', {
  skip,
  timeout: 120_000,
}, async () => {
  const { page } = await openPage(suite.browser);
  const asked: string[] = [];
  await page.route('**/api/v1/token', async (route) => {
    asked.push(route.request().url());
    await route.fulfill({ status: 404, json: { code: 'NOT_FOUND', detail: 'no such route' } });
  });
  await page.goto(suite.server.url);
  await page.waitForSelector('#token-dialog[open]');
  await page.fill('#token-input', TOKEN);
  await page.press('#token-input', 'Enter');
  await page.waitForSelector('body[data-ready="true"]');
  assert.equal(await who(page), 'Signed in with a token');
  assert.equal(await page.isVisible('#token-dialog'), false, 'a 404 asks for no token');
  assert.ok(asked.length > 0, 'the page asked whose token it is');
  await page.setInputFiles('#file-input', [XRAY_JPEG]);
  await finished(page, 1);
  await named(page);
  await page.context().close();
});
