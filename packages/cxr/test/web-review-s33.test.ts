// The page's review (session 33), in Chromium against a real server:
//  - an error answer that is no problem document (a TLS proxy's own HTML page in front of cxr) is said in words:
//    a 413 as too large, with what to do (it read "413 Request Entity Too Large"); a 502 as the server not
//    answering, with "Try again", which works once the server answers again (it read "502 Bad Gateway"); a 200
//    that is no JSON (a proxy's sign-in page) likewise (it read "Cannot read properties of null");
//  - History asked for a page past its last (fewer rows than when the page was turned) shows the last page, not
//    "No predictions match." over predictions that do; "Forget token" starts the next token's History at page 1;
//  - "Forget token" in the moment a film's answer is read: the answer is not said to the next reader;
//  - the Model view gives a validation proportion of exactly 1 or 0 in percent, as the others (it read "1").
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { XRAY_JPEG } from './serve-fixtures';
import { finished, noChromium, pageSuite, recordAnnouncements, upload } from './browser-fixture';

const skip = noChromium;
const suite = pageSuite('web-review-s33', skip, {
  rebuild: true,
  // Validation figures at the ends of the scale (a small validation set: every pneumonia found).
  prepare: (modelDir) => {
    const file = path.join(modelDir, 'cxr.json');
    const meta = JSON.parse(fs.readFileSync(file, 'utf8'));
    meta.validation = { ...meta.validation, n: 40, sensitivity: 1, specificity: 0, accuracy: 0.975 };
    fs.writeFileSync(file, JSON.stringify(meta));
  },
});

/** A proxy's error page for every film sent, until `stop` is called. */
async function proxyAnswers(page: Page, status: number, title: string): Promise<() => Promise<void>> {
  const match = '**/api/v1/predictions?*';
  await page.route(match, (route) =>
    route.request().method() === 'POST'
      ? route.fulfill({
          status,
          contentType: 'text/html',
          body: `<html><head><title>${title}</title></head><body><h1>${title}</h1><hr>nginx</body></html>`,
        })
      : route.fallback(),
  );
  return () => page.unroute(match);
}

const errorText = (page: Page) => page.textContent('.result:first-child .warnings li.error');

test("a proxy's 413 (its own body limit) is said as too large, with what to do", {
  skip,
  timeout: 90_000,
}, async () => {
  const { page } = await suite.open();
  await proxyAnswers(page, 413, '413 Request Entity Too Large');
  await page.setInputFiles('#file-input', [upload('film.jpg', XRAY_JPEG)]);
  await finished(page, 1);
  const said = (await errorText(page)) ?? '';
  assert.match(said, /film\.jpg .*refused as too large/, said);
  assert.match(said, /Export a smaller copy/, said);
  // Trying the same file again cannot help.
  assert.equal(await page.isVisible('.result:first-child .retry'), false);
  await page.context().close();
});

test('a proxy\'s 502 (cxr restarting behind it) is said in words, and "Try again" works once it answers', {
  skip,
  timeout: 90_000,
}, async () => {
  const { page } = await suite.open();
  const stop = await proxyAnswers(page, 502, '502 Bad Gateway');
  await page.setInputFiles('#file-input', [upload('film.jpg', XRAY_JPEG)]);
  await finished(page, 1);
  const said = (await errorText(page)) ?? '';
  assert.match(said, /did not answer/, said);
  assert.match(said, /[Tt]ry again/, said);
  await stop();
  await page.click('.result:first-child .retry');
  await page.waitForSelector('.result:first-child[data-state="done"]', { timeout: 60_000 });
  await page.context().close();
});

test('a 200 that is no JSON (a proxy\'s sign-in page) is said in words, and "Try again" works', {
  skip,
  timeout: 90_000,
}, async () => {
  const { page } = await suite.open();
  const stop = await proxyAnswers(page, 200, 'Sign in');
  await page.setInputFiles('#file-input', [upload('film.jpg', XRAY_JPEG)]);
  await finished(page, 1);
  const said = (await errorText(page)) ?? '';
  assert.match(said, /could not be read/, said);
  assert.doesNotMatch(said, /Cannot read properties/, said);
  await stop();
  await page.click('.result:first-child .retry');
  await page.waitForSelector('.result:first-child[data-state="done"]', { timeout: 60_000 });
  await page.context().close();
});

/**
 * History's answers with `state.total` rows (each page of 25 the one real row, so that rows draw), so that a test can
 * make the log shorter under an open page.
 */
async function fakeHistory(page: Page, state: { total: number }): Promise<void> {
  await page.route('**/api/v1/predictions?*', async (route) => {
    if (route.request().method() !== 'GET') return route.fallback();
    const url = new URL(route.request().url());
    const res = await route.fetch();
    const real = await res.json();
    const asked = Number(url.searchParams.get('page'));
    const limit = Number(url.searchParams.get('limit'));
    const last = Math.max(1, Math.ceil(state.total / limit));
    const items = asked <= last && state.total > 0 ? real.items.slice(0, 1) : [];
    await route.fulfill({ response: res, json: { ...real, items, total: state.total, page: asked, limit } });
  });
}

const pageLine = (page: Page, re: RegExp) =>
  page.waitForFunction(
    (s) => new RegExp(s).test(document.querySelector('#history-page')?.textContent ?? ''),
    re.source,
  );

async function onePrediction(): Promise<void> {
  const form = new FormData();
  form.append('image', new Blob([fs.readFileSync(XRAY_JPEG)], { type: 'image/jpeg' }), 'x.jpg');
  const res = await fetch(`${suite.server.url}/api/v1/predictions?heatmap=false`, { method: 'POST', body: form });
  assert.equal(res.status, 200);
}

test('History past its last page shows the last page, not "No predictions match."', {
  skip,
  timeout: 90_000,
}, async () => {
  await onePrediction();
  const { page } = await suite.open();
  const state = { total: 30 };
  await fakeHistory(page, state);
  await page.evaluate(() => {
    location.hash = '#/history';
  });
  await pageLine(page, /^Page 1 of 2 · 30 predictions/);
  await page.click('#history-next');
  await pageLine(page, /^Page 2 of 2/);
  // Rows go (retention, or the other filters asked for): the view is visited again at its page 2.
  state.total = 10;
  await page.evaluate(() => {
    location.hash = '#/analyze';
  });
  await page.evaluate(() => {
    location.hash = '#/history';
  });
  await pageLine(page, /^Page \d+ of 1/);
  assert.match((await page.textContent('#history-page')) ?? '', /^Page 1 of 1 · 10 predictions/);
  assert.doesNotMatch((await page.textContent('#history-table tbody')) ?? '', /No predictions match/);
  assert.equal(await page.$$eval('#history-table tbody tr time', (t) => t.length), 1);
  await page.context().close();
});

test('"Forget token" starts the next token\'s History at its first page', { skip, timeout: 90_000 }, async () => {
  await onePrediction();
  const page = await tokenHeld();
  await fakeHistory(page, { total: 60 });
  await page.evaluate(() => {
    location.hash = '#/history';
  });
  await pageLine(page, /^Page 1 of 3/);
  await page.click('#history-next');
  await pageLine(page, /^Page 2 of 3/);
  await page.click('#token-forget');
  await page.evaluate(() => {
    location.hash = '#/analyze';
  });
  await page.evaluate(() => {
    location.hash = '#/history';
  });
  await pageLine(page, /^Page \d+ of 3/);
  assert.match((await page.textContent('#history-page')) ?? '', /^Page 1 of 3/);
  await page.context().close();
});

test('the Model view gives a sensitivity of 1 and a specificity of 0 in percent, as the other proportions', {
  skip,
  timeout: 60_000,
}, async () => {
  const { page } = await suite.open({}, '/#/model');
  await page.waitForSelector('#model-validation tbody tr th');
  const rows = Object.fromEntries(
    await page.$$eval('#model-validation tbody tr', (trs) =>
      trs.map((tr) => [tr.querySelector('th')?.textContent ?? '', tr.querySelector('td')?.textContent ?? '']),
    ),
  );
  assert.equal(rows.sensitivity, '100.0\u00a0%');
  assert.equal(rows.specificity, '0.0\u00a0%');
  assert.equal(rows.accuracy, '97.5\u00a0%');
  assert.equal(rows.films, '40', 'a count stays a count');
  await page.context().close();
});

/** A tab holding a token (this server asks for none), so that the header offers "Forget token". */
async function tokenHeld(): Promise<Page> {
  const { page } = await suite.open();
  await page.evaluate(() => sessionStorage.setItem('cxr.apiToken', 'previous-clinician'));
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  await page.waitForSelector('#token-forget', { state: 'visible' });
  return page;
}

test('"Forget token" while a film\'s answer is read: the answer is not said to the next reader', {
  skip,
  timeout: 90_000,
}, async () => {
  const page = await tokenHeld();
  // The upload's answer (a Response the page builds from its XMLHttpRequest, so without a URL) is held as it is
  // read: the moment between the film's answer arriving and the card being drawn, made long enough to click in.
  await page.evaluate(() => {
    const w = window as unknown as { release: () => void; held: number; read: number };
    const hold = new Promise<void>((r) => {
      w.release = r;
    });
    w.held = 0;
    w.read = 0;
    const json = Response.prototype.json;
    Response.prototype.json = async function (this: Response) {
      if (this.url !== '') return json.call(this);
      w.held += 1;
      await hold;
      try {
        return await json.call(this);
      } finally {
        w.read += 1;
      }
    };
  });
  const said = await recordAnnouncements(page);
  await page.setInputFiles('#file-input', [upload('previous-patient.jpg', XRAY_JPEG)]);
  await page.waitForFunction(() => (window as unknown as { held: number }).held === 1, null, { timeout: 60_000 });
  await page.click('#token-forget');
  await page.evaluate(() => (window as unknown as { release: () => void }).release());
  await page.waitForFunction(() => (window as unknown as { read: number }).read === 1);
  await page.waitForTimeout(500);
  const messages = await said();
  const forgot = messages.findIndex((m) => m.startsWith('Token forgotten'));
  assert.ok(forgot >= 0, JSON.stringify(messages));
  assert.deepEqual(
    messages.slice(forgot + 1).filter((m) => m.includes('previous-patient')),
    [],
    JSON.stringify(messages),
  );
  assert.equal(
    await page.$$eval('#announcer > *', (ps) => ps.some((p) => /previous-patient/.test(p.textContent ?? ''))),
    false,
  );
  assert.equal(await page.$$eval('.result', (cards) => cards.length), 0);
  await page.context().close();
});
