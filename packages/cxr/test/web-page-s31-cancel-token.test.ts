// "Forget token" on a shared workstation, in Chromium against a server with named tokens: the previous clinician's
// results go with their token. The Analyze cards (a film on its way cancelled, never recorded), the status line,
// the age typed and History's rows are cleared without a question, and it is said through an announcer that is
// outside the views (heard on History too). The page's static markup is in index.html and style.css.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { XRAY_JPEG } from './serve-fixtures';
import { finished, noChromium, openPage, pageSuite, recordAnnouncements, upload } from './browser-fixture';

const skip = noChromium;
const TOKEN = 'night-shift-token-for-tests';
const suite = pageSuite('web-page-s31-cancel-token', skip, {
  server: { tokens: [{ name: 'dr-night', token: TOKEN }] },
});

/** The audit log's answers, as the API lists them to the token. */
async function logged(): Promise<number> {
  const res = await fetch(`${suite.server.url}/api/v1/predictions`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  return ((await res.json()) as { total: number }).total;
}

test("forgetting the token clears the previous clinician's results, cancels a film on its way, and says so", {
  skip,
  timeout: 150_000,
}, async () => {
  const { page, errors } = await openPage(suite.browser);
  const questions: string[] = [];
  page.on('dialog', (d) => {
    questions.push(d.message());
    void d.dismiss();
  });
  await page.goto(suite.server.url);
  await page.waitForSelector('#token-dialog[open]');
  await page.fill('#token-input', TOKEN);
  await page.press('#token-input', 'Enter');
  await page.waitForSelector('body[data-ready="true"]');
  await page.fill('#patient-age', '3');
  await page.setInputFiles('#file-input', [upload('first.jpeg', XRAY_JPEG)]);
  await finished(page, 1);
  await page.goto(`${suite.server.url}/#/history`);
  await page.waitForSelector('#history-table tbody td.asked-by');

  // A slow film on its way (Chromium holds the upload), then the token forgotten from History.
  await page.goto(`${suite.server.url}/#/analyze`);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 20,
    downloadThroughput: -1,
    uploadThroughput: 50 * 1024,
  });
  const slow = Buffer.concat([fs.readFileSync(XRAY_JPEG), Buffer.alloc(3_000_000)]);
  await page.setInputFiles('#file-input', [upload('slow.jpeg', slow), upload('waiting.jpeg', XRAY_JPEG)]);
  await page.waitForFunction(
    () => (document.querySelector<HTMLProgressElement>('.result:first-child progress.upload')?.value ?? 0) > 0,
    null,
    { timeout: 30_000, polling: 50 },
  );
  await page.goto(`${suite.server.url}/#/history`);
  await page.waitForSelector('#history-table tbody td.asked-by');
  const said = await recordAnnouncements(page);
  await page.click('#token-forget');
  // Said on History: the announcer is in no view.
  assert.equal(await page.$eval('#announcer', (a) => a.closest('[hidden]') === null), true);
  assert.match((await said()).join('\n'), /^Token forgotten, and the results on this page cleared/m);
  assert.equal(await page.$$eval('#history-table tbody td.asked-by', (c) => c.length), 0, "History's rows");
  assert.match((await page.textContent('#history-table tbody')) ?? '', /Cleared with the token/);
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: -1,
  });

  await page.goto(`${suite.server.url}/#/analyze`);
  assert.equal(await page.$$eval('#results .result', (r) => r.length), 0, 'no card left');
  assert.equal(await page.textContent('#status'), '');
  assert.equal(await page.inputValue('#patient-age'), '');
  assert.deepEqual(questions, [], 'no question asked');
  // Neither the film on its way nor the one waiting reached the audit log, nor any dialog asked for a token.
  await page.waitForTimeout(2_000);
  assert.equal(await logged(), 1);
  assert.equal(await page.isVisible('#token-dialog'), false);
  assert.deepEqual(
    errors.filter((e) => !/401|Failed to load resource/.test(e)),
    [],
  );
  await page.context().close();
});

test('the static markup is in the page: History\'s "Asked by", the drop line, the header\'s token box', {
  skip,
  timeout: 60_000,
}, async () => {
  const html = await (await fetch(`${suite.server.url}/`)).text();
  assert.match(html, /<th scope="col">ID<\/th><th scope="col">Asked by<\/th>/);
  assert.match(html, /<p class="hint">Files dropped anywhere on this page are taken too\.<\/p>/);
  assert.match(html, /<div id="token-state" class="token-state" hidden>/);
  const css = await (await fetch(`${suite.server.url}/style.css`)).text();
  assert.match(css, /\.token-state \{ display: flex; align-items: center; gap: \.5rem; \}/);
  // Once each on the page (the code adds none of them again).
  const { page } = await openPage(suite.browser);
  await page.goto(suite.server.url);
  await page.waitForSelector('#token-dialog[open]');
  await page.fill('#token-input', TOKEN);
  await page.press('#token-input', 'Enter');
  await page.waitForSelector('body[data-ready="true"]');
  const heads = await page.$$eval('#history-table thead th', (t) => t.map((h) => h.textContent));
  assert.equal(heads.filter((h) => h === 'Asked by').length, 1);
  assert.equal(await page.$$eval('#drop p.hint', (p) => p.length), 1);
  assert.equal(await page.$$eval('#token-state', (b) => b.length), 1);
  await page.setInputFiles('#file-input', [upload('one.jpeg', XRAY_JPEG)]);
  await finished(page, 1);
  assert.equal(await page.$eval('#token-state', (b) => getComputedStyle(b).display), 'flex');
  await page.context().close();
});
