// The page as a keyboard-only clinician with a screen reader meets it (session 35 review), in Chromium against a
// real server:
//  - a card's operating point switch, dimmed while the server re-checks the film, keeps its words' contrast at
//    4.5:1 (its legend fell to 4.09:1 in the light scheme, and the switch still takes a choice meanwhile);
//  - History's pager keeps focus: "Older" to the last page (or "Newer" to the first) is switched off under the
//    focus, and focus fell to the page's start (the next Tab went to "Skip to content");
//  - a History row's finding, written out in its title, is worded as the card's headline ("Below the pneumonia
//    threshold (p < 50.0 %)"), not as the "No signs of pneumonia detected" the card stopped saying;
//  - the Model view's operating point table scrolls sideways on a phone: a named region that Tab reaches;
//  - a button that goes once it has done its work keeps focus near: "Enter token" beside the status line, in
//    History's error row and on the Model view each fell to the page's start once the token was taken.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { Page } from 'playwright-core';
import { gradientFilm, XRAY_JPEG } from './serve-fixtures';
import { axeProblems, finished, Gate, isPrediction, noChromium, openPage, pageSuite, upload } from './browser-fixture';

const skip = noChromium || (fs.existsSync(XRAY_JPEG) ? false : `needs ${XRAY_JPEG}`);
const suite = pageSuite('page-a11y-review-s35', skip, { rebuild: true });

/** What has focus, as "tag#id" or "tag:text". */
function focused(page: Page): Promise<string> {
  return page.evaluate(() => {
    const e = document.activeElement as HTMLElement;
    const tag = e.tagName.toLowerCase();
    return e.id ? `${tag}#${e.id}` : `${tag}:${(e.textContent ?? '').trim().slice(0, 30)}`;
  });
}

const onPage = (page: Page, n: number) =>
  page.waitForFunction((k) => document.querySelector('#history-page')?.textContent?.startsWith(`Page ${k} `), n);

test("a re-check's dimmed switch keeps its contrast; History's pager keeps focus; a row's words are its card's", {
  skip,
  timeout: 120_000,
}, async () => {
  const predictions = new Gate(isPrediction);
  const { page } = await suite.open({ viewport: { width: 1280, height: 900 }, gate: predictions });
  // One page and one row more (25 a page): a film the tiny model assesses, and films it cannot.
  const gradient = await gradientFilm();
  const films = [upload('film.jpeg', XRAY_JPEG)];
  for (let i = 0; i < 25; i++) films.push(upload(`g${i}.png`, gradient));
  await page.setInputFiles('#file-input', films);
  await finished(page, films.length);
  const card = page.locator('.result[data-verdict="assessed"]');
  const headline = ((await card.locator('.label-badge').textContent()) ?? '').trim();
  const id = (await card.getAttribute('data-prediction-id')) ?? '';
  assert.match(headline, /^(Below|Above) the pneumonia threshold/);
  // Re-checked at the other point, its answer held: the switch is dimmed meanwhile (aria-busy).
  predictions.close();
  await card.locator('.segmented input:not(:checked)').check();
  await page.waitForSelector('.result[data-state="rechecking"] .segmented[aria-busy="true"]');
  assert.deepEqual(await axeProblems(page), []);
  predictions.release();
  await page.waitForSelector('.result[data-state="rechecking"]', { state: 'detached' });

  await page.goto(`${suite.server.url}/#/history`);
  await onPage(page, 1);
  // Newest first: the film is the oldest row, on the second page.
  await page.focus('#history-next');
  await page.keyboard.press('Enter');
  await onPage(page, 2);
  assert.equal(await page.isDisabled('#history-next'), true);
  assert.equal(await focused(page), 'button#history-prev', 'focus after "Older" to the last page');
  assert.equal(await page.getAttribute(`#prediction-${id} .finding .tag`, 'title'), headline);
  await page.keyboard.press('Enter');
  await onPage(page, 1);
  assert.equal(await focused(page), 'button#history-next', 'focus after "Newer" to the first page');
  await page.context().close();
});

test("on a phone the Model view's operating point table is a named region that Tab reaches", {
  skip,
  timeout: 60_000,
}, async () => {
  const { page } = await suite.open({ viewport: { width: 390, height: 844 } }, '#/model');
  await page.waitForSelector('#model-ops tbody tr');
  const wrap = page.locator('.table-wrap:has(#model-ops)');
  // It is wider than the screen (the Specificity column is out of sight)...
  assert.ok(await wrap.evaluate((e) => e.scrollWidth > e.clientWidth), 'the table fits: nothing to test');
  // ...so the keyboard must reach it to scroll it, and a screen reader hear what it is.
  assert.equal(await wrap.getAttribute('tabindex'), '0');
  assert.equal(await wrap.getAttribute('role'), 'region');
  assert.match(await wrap.evaluate((e) => e.getAttribute('aria-labelledby') ?? ''), /\S/);
  const name = await wrap.evaluate((e) => document.getElementById(e.getAttribute('aria-labelledby')!)?.textContent);
  assert.equal(name, 'Operating points');
  assert.deepEqual(await axeProblems(page), []);
  await page.context().close();
});

test('"Enter token" on the status line, in History and on the Model view leaves focus near it', {
  skip,
  timeout: 90_000,
}, async () => {
  const TOKEN = 'page-a11y-review-token';
  const server = await suite.serve('token', suite.modelDir, false, { apiToken: TOKEN });
  const { page } = await openPage(suite.browser);
  // Asked at the start and cancelled: History, and the status line, offer "Enter token".
  await page.goto(`${server.url}/#/history`);
  await page.waitForSelector('#token-dialog[open]');
  await page.keyboard.press('Escape');
  const again = page.locator('#history-table .load-error-cell button');
  await again.waitFor();
  await again.focus();
  await page.keyboard.press('Enter');
  await page.waitForSelector('#token-dialog[open]');
  await page.fill('#token-input', TOKEN);
  await page.press('#token-input', 'Enter');
  await page.waitForSelector('#history-table tbody tr:not(:has(.load-error-cell))');
  assert.equal(await focused(page), 'table#history-table', 'focus after History\'s "Enter token"');
  // The token is held now: the status line's button loads the model at once, and goes.
  await page.goto(`${server.url}/#/analyze`);
  await page.waitForSelector('#status-action:not([hidden])');
  await page.focus('#status-action');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#status-action[hidden]', { state: 'attached' });
  assert.equal(await focused(page), 'input#file-input', 'focus after the status line\'s "Enter token"');
  await page.context().close();

  // The Model view's own "Enter token".
  const model = (await openPage(suite.browser)).page;
  await model.goto(`${server.url}/#/model`);
  await model.waitForSelector('#token-dialog[open]');
  await model.keyboard.press('Escape');
  await model.waitForSelector('#model-error:not([hidden])');
  await model.focus('#model-error button');
  await model.keyboard.press('Enter');
  await model.waitForSelector('#token-dialog[open]');
  await model.fill('#token-input', TOKEN);
  await model.press('#token-input', 'Enter');
  await model.waitForSelector('#model-error', { state: 'hidden' });
  assert.equal(await focused(model), 'main#main', 'focus after the Model view\'s "Enter token"');
  await model.context().close();
});
