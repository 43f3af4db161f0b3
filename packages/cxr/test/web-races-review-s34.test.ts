// Races between the page's asynchronous events (review s34), each made deterministic by holding a response:
// two requests refused 401 at once answered by one token (the second listener of the dialog got the input the
// first had emptied: "did not accept the API token entered" of a token just accepted); the browser model's load
// finishing after "Process on this computer" was turned off (the status line said images never leave the
// computer while they are sent); a History heat map answered after a later click or after "Forget token"; a
// proxy's 413 whose limit was still being asked as the token was forgotten (the film said to the next clinician).
import * as fs from 'node:fs';
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { XRAY_JPEG } from './serve-fixtures';
import { finished, Gate, noChromium, openPage, pageSuite, recordAnnouncements, upload } from './browser-fixture';

const skip = noChromium || (fs.existsSync(XRAY_JPEG) ? false : `needs ${XRAY_JPEG}`);
const TOKEN = 'races-review-token-for-tests';

const suite = pageSuite('web-races-review-s34', skip, {
  server: { tokens: [{ name: 'dr-races', token: TOKEN }] },
});

/** A tab signed in with the token, the page ready. */
async function signedIn(gate?: Gate): Promise<Page> {
  const { page } = await openPage(suite.browser);
  await gate?.install(page);
  await page.goto(suite.server.url);
  await page.waitForSelector('#token-dialog[open]');
  await page.fill('#token-input', TOKEN);
  await page.press('#token-input', 'Enter');
  await page.waitForSelector('body[data-ready="true"]');
  return page;
}

test('opened at History, one token entered serves both requests refused at the load', {
  skip,
  timeout: 120_000,
}, async () => {
  const { page } = await openPage(suite.browser);
  // Both the History page and the model info are refused before the token is typed: both wait on one dialog.
  let refused = 0;
  page.on('response', (r) => {
    if (r.status() === 401) refused += 1;
  });
  await page.goto(`${suite.server.url}/#/history`);
  await page.waitForSelector('#token-dialog[open]');
  const deadline = Date.now() + 30_000;
  while (refused < 2 && Date.now() < deadline) await page.waitForTimeout(20);
  assert.equal(refused, 2, 'the model info and the History page, both refused');
  await page.fill('#token-input', TOKEN);
  await page.press('#token-input', 'Enter');
  // Each answered as it is (the model info's refusal used to come in words as "did not accept the token entered").
  await page.waitForFunction(() => /^Page 1 of 1/.test(document.querySelector('#history-page')?.textContent ?? ''));
  await page.waitForTimeout(500);
  assert.equal(await page.textContent('#status'), '', 'no "could not be loaded" on the status line');
  await page.waitForSelector('body[data-ready="true"]', { timeout: 10_000 });
  assert.equal(await page.isVisible('#token-dialog[open]'), false, 'not asked again');
  await page.context().close();
});

test('the browser model loaded after "Process on this computer" was turned off: the line does not say it is on', {
  skip,
  timeout: 120_000,
}, async () => {
  const modelFiles = new Gate((url) => url.pathname.endsWith('/model.json'));
  const page = await signedIn(modelFiles);
  modelFiles.close();
  await page.check('#local-mode');
  await modelFiles.seen(1);
  await page.uncheck('#local-mode');
  assert.equal(await page.textContent('#status'), 'Images are sent to the server, analyzed and logged.');
  // The load goes on to its end (the model is kept for the next time the switch is on): its weights come last.
  const weights = page.waitForResponse((r) => new URL(r.url()).pathname.endsWith('.bin'));
  modelFiles.release();
  await weights;
  await page.waitForTimeout(1_000);
  assert.equal(await page.textContent('#status'), 'Images are sent to the server, analyzed and logged.');
  // On again: the model is had, and said.
  await page.check('#local-mode');
  await page.waitForFunction(() => /^Model loaded/.test(document.querySelector('#status')?.textContent ?? ''), null, {
    timeout: 60_000,
  });
  await page.context().close();
});

test("History's heat map: an older click's answer does not replace a later one's, nor open after the forgetting", {
  skip,
  timeout: 150_000,
}, async () => {
  const held = new Set<string>();
  let open = () => {};
  const gate = new Promise<void>((r) => {
    open = r;
  });
  const { page } = await openPage(suite.browser);
  await page.route('**/api/v1/**', async (route) => {
    if (held.has(new URL(route.request().url()).pathname)) await gate;
    await route.fallback().catch(() => undefined);
  });
  await page.goto(suite.server.url);
  await page.waitForSelector('#token-dialog[open]');
  await page.fill('#token-input', TOKEN);
  await page.press('#token-input', 'Enter');
  await page.waitForSelector('body[data-ready="true"]');
  await page.setInputFiles('#file-input', [upload('a.jpeg', XRAY_JPEG), upload('b.jpeg', XRAY_JPEG)]);
  await finished(page, 2);
  await page.goto(`${suite.server.url}/#/history`);
  await page.waitForSelector('#history-table tbody a[href*="heatmap"]');
  const links = await page.$$eval('#history-table tbody a[href*="heatmap"]', (as) =>
    as.map((a) => ({ href: a.getAttribute('href') ?? '', label: a.getAttribute('aria-label') ?? '' })),
  );
  assert.ok(links.length >= 2);
  const [first, second] = links;
  const idOf = (label: string) => label.replace('Heat map of prediction ', '');
  // The first link's heat map held; the second clicked meanwhile comes at once.
  held.add(new URL(first.href, suite.server.url).pathname);
  const asked = page.waitForRequest((r) => r.url().endsWith(first.href));
  await page.click(`#history-table tbody a[aria-label="${first.label}"]`);
  await asked;
  await page.click(`#history-table tbody a[aria-label="${second.label}"]`);
  await page.waitForSelector('#heatmap-dialog[open]');
  assert.equal(await page.textContent('#heatmap-title'), `Heat map · ${idOf(second.label)}`);
  const answered = page.waitForResponse((r) => r.url().endsWith(first.href));
  open();
  await answered;
  await page.waitForTimeout(500);
  assert.equal(await page.textContent('#heatmap-title'), `Heat map · ${idOf(second.label)}`, 'the later click shown');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#heatmap-dialog:not([open])', { state: 'attached' });

  // Asked, then the token forgotten before it comes: not shown to the next clinician.
  let release = () => {};
  const later = new Promise<void>((r) => {
    release = r;
  });
  await page.unroute('**/api/v1/**');
  await page.route('**/api/v1/**', async (route) => {
    if (new URL(route.request().url()).pathname === new URL(second.href, suite.server.url).pathname) await later;
    await route.fallback().catch(() => undefined);
  });
  const again = page.waitForRequest((r) => r.url().endsWith(second.href));
  await page.click(`#history-table tbody a[aria-label="${second.label}"]`);
  await again;
  await page.click('#token-forget');
  const came = page.waitForResponse((r) => r.url().endsWith(second.href));
  release();
  await came;
  await page.waitForTimeout(500);
  assert.equal(await page.isVisible('#heatmap-dialog[open]'), false, "the previous clinician's heat map not opened");
  assert.equal(await page.textContent('#heatmap-title'), '');
  assert.match((await page.textContent('#history-table tbody')) ?? '', /Cleared with the token/);
  await page.context().close();
});

test("a proxy's 413 whose limit is asked of /health as the token is forgotten: the film is not said to the next", {
  skip,
  timeout: 120_000,
}, async () => {
  let healths = 0;
  let release = () => {};
  const held = new Promise<void>((r) => {
    release = r;
  });
  const page = await signedIn();
  await page.route('**/api/v1/**', async (route) => {
    const url = new URL(route.request().url());
    if (route.request().method() === 'POST' && url.pathname === '/api/v1/predictions')
      return route.fulfill({ status: 413, contentType: 'text/html', body: '<h1>413 Request Entity Too Large</h1>' });
    // The page's first look at the limit passes; the one after the refusal is held.
    if (url.pathname === '/api/v1/health' && ++healths > 1) await held;
    await route.fallback().catch(() => undefined);
  });
  await page.setInputFiles('#file-input', [upload('previous-patient.jpeg', XRAY_JPEG)]);
  const deadline = Date.now() + 30_000;
  while (healths < 2 && Date.now() < deadline) await page.waitForTimeout(20);
  assert.equal(healths, 2, 'the limit asked again after the refusal');
  await page.click('#token-forget');
  const said = await recordAnnouncements(page);
  release();
  await page.waitForTimeout(1_500);
  assert.deepEqual(
    (await said()).filter((m) => m.includes('previous-patient')),
    [],
    'nothing said of the previous clinician after "Token forgotten"',
  );
  assert.equal(await page.$$eval('#results .result', (r) => r.length), 0);
  await page.context().close();
});
