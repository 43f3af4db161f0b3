// "Forget token" with work still on its way for the previous clinician, in Chromium against a server with named
// tokens: a re-check at another operating point answered after the token was forgotten is neither drawn nor said,
// the announcer keeps none of their messages, the large view keeps none of their films, a History page answered
// afterwards is not drawn over "Cleared with the token", and the server's polling stops with the films that
// waited for it. Also: a link dropped on the page does not take the tab away from the cards.
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { XRAY_JPEG } from './serve-fixtures';
import { finished, noChromium, openPage, pageSuite, recordAnnouncements, upload } from './browser-fixture';
import { until } from './wait-until';

const skip = noChromium;
const TOKEN = 'night-shift-token-for-tests';
const FORGOTTEN = /^Token forgotten, and the results on this page cleared/;

/** Two operating points with distinct thresholds: a card offers a re-check at the other one. */
function twoPoints(modelDir: string): void {
  const metaFile = path.join(modelDir, 'cxr.json');
  const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
  meta.operatingPoints = {
    screening: { threshold: 0.2, sensitivity: 0.99, specificity: 0.9, rule: 'sensitivity>=0.99' },
    balanced: { threshold: 0.7, sensitivity: 0.95, specificity: 0.97, rule: 'youden' },
  };
  fs.writeFileSync(metaFile, JSON.stringify(meta));
}

const suite = pageSuite('web-page-s31-forget', skip, {
  server: { tokens: [{ name: 'dr-night', token: TOKEN }] },
  prepare: twoPoints,
});

/**
 * A tab signed in with the token; once hold() is called, requests matching `matches` are held until release().
 */
async function signedIn(
  matches: (url: URL, method: string) => boolean,
): Promise<{ page: Page; hold: () => void; release: () => void }> {
  const { page } = await openPage(suite.browser);
  let gate: { held: Promise<void>; open: () => void } | null = null;
  await page.route('**/api/v1/**', async (route) => {
    const url = new URL(route.request().url());
    if (gate && matches(url, route.request().method())) await gate.held;
    // The page may have given the request up meanwhile (aborted with the forgotten token).
    await route.fallback().catch(() => undefined);
  });
  await page.goto(suite.server.url);
  await page.waitForSelector('#token-dialog[open]');
  await page.fill('#token-input', TOKEN);
  await page.press('#token-input', 'Enter');
  await page.waitForSelector('body[data-ready="true"]');
  return {
    page,
    hold: () => {
      let open = () => {};
      const held = new Promise<void>((r) => {
        open = r;
      });
      gate = { held, open };
    },
    release: () => gate?.open(),
  };
}

// Each test has a tab of its own (its own context, token and films): they run side by side, so the waits of one
// (the server's 5 s polling) pass while the others work.
describe('forget token with work on its way', { concurrency: true }, () => {
  test('a re-check answered after the token is forgotten is neither drawn nor said; nothing of theirs stays', {
    skip,
    timeout: 150_000,
  }, async () => {
    const recheck = (url: URL, method: string) => method === 'POST' && url.pathname === '/api/v1/predictions';
    const { page, hold, release } = await signedIn(recheck);
    await page.setInputFiles('#file-input', [upload('film.jpeg', XRAY_JPEG)]);
    await finished(page, 1);
    // The film seen large, then the dialog closed.
    await page.click('.result .enlarge');
    await page.waitForSelector('#heatmap-dialog[open]');
    assert.equal(await page.textContent('#heatmap-title'), 'film.jpeg');
    await page.keyboard.press('Escape');
    await page.waitForSelector('#heatmap-dialog:not([open])', { state: 'attached' });
    assert.match((await page.textContent('#announcer')) ?? '', /film\.jpeg/);

    hold();
    await page.check('.result input[value="screening"]');
    await page.waitForSelector('.result[data-state="rechecking"]');
    const said = await recordAnnouncements(page);
    await page.click('#token-forget');
    release(); // the server's answer comes after the forgetting
    await page.waitForTimeout(2_500);
    assert.deepEqual(
      (await said()).filter((m) => !FORGOTTEN.test(m)),
      [],
      'nothing said of the previous clinician after "Token forgotten"',
    );
    assert.deepEqual(
      await page.$$eval('#announcer > *', (ps) => ps.map((p) => p.textContent)).then((t) => t.length),
      1,
      "the announcer holds only the forgetting, none of the last clinician's messages",
    );
    assert.match((await page.textContent('#announcer')) ?? '', FORGOTTEN);
    assert.equal(await page.$$eval('#results .result', (r) => r.length), 0);
    // The closed large view keeps neither the film's name nor its image.
    assert.equal(await page.textContent('#heatmap-title'), '');
    assert.equal(await page.getAttribute('#heatmap-image', 'src'), null);
    await page.context().close();
  });

  test('a History page answered after the token is forgotten is not drawn over "Cleared with the token"', {
    skip,
    timeout: 120_000,
  }, async () => {
    const list = (url: URL, method: string) => method === 'GET' && url.pathname === '/api/v1/predictions';
    const { page, hold, release } = await signedIn(list);
    // A row to show (this file's first test may have been left out).
    await page.setInputFiles('#file-input', [upload('row.jpeg', XRAY_JPEG)]);
    await finished(page, 1);
    hold();
    const asked = page.waitForRequest((r) => list(new URL(r.url()), r.method()));
    await page.goto(`${suite.server.url}/#/history`);
    await asked;
    await page.click('#token-forget');
    release();
    await page.waitForTimeout(2_000);
    assert.equal(await page.$$eval('#history-table tbody td.asked-by', (c) => c.length), 0, "the old clinician's rows");
    assert.match((await page.textContent('#history-table tbody')) ?? '', /Cleared with the token/);
    await page.context().close();
  });

  test('the server is asked whether it is back while a film waits for it, and no more once the view is cleared', {
    skip,
    timeout: 120_000,
  }, async () => {
    const { page } = await signedIn(() => false);
    let polls = 0;
    await page.route('**/api/v1/**', (route) => {
      const url = new URL(route.request().url());
      if (url.pathname === '/api/v1/health') polls += 1;
      const away = url.pathname === '/api/v1/health' || url.pathname === '/api/v1/predictions';
      return away ? route.abort('connectionrefused') : route.fallback();
    });
    await page.setInputFiles('#file-input', [upload('a.jpeg', XRAY_JPEG), upload('b.jpeg', XRAY_JPEG)]);
    await finished(page, 2);
    // Sent again while the server is still away: both wait again, said in one go, and the polling goes on.
    const said = await recordAnnouncements(page);
    await page.click('#status-action');
    await page.waitForFunction(() => document.querySelector('#status')?.textContent?.startsWith('Done: 2 files not'));
    assert.deepEqual(
      (await said()).filter((m) => m.startsWith('Analyzing')),
      ['Analyzing 2 files.'],
    );
    const before = polls;
    // Two more polls (every 5 s): waited for, not slept through.
    await until(async () => polls >= before + 2, 30_000, '/health asked again').catch(() => undefined);
    assert.ok(polls >= before + 2, `/health asked again while the server is away (${polls - before})`);
    // The server still away, and nothing waits any more: it is asked no more.
    await page.click('#token-forget');
    const after = polls;
    await page.waitForTimeout(6_500);
    assert.equal(polls, after, '/health asked after the view was cleared');
    await page.context().close();
  });

  test("a link dropped outside a text field is refused (the tab stays); text dropped into a field is the browser's", {
    skip,
    timeout: 60_000,
  }, async () => {
    const { page } = await signedIn(() => false);
    const drop = (selector: string, type: string) =>
      page.evaluate(
        ({ selector, type }) => {
          const transfer = new DataTransfer();
          transfer.setData(type, 'https://example.org/elsewhere');
          const target = document.querySelector(selector)!;
          const fire = (name: string) =>
            !target.dispatchEvent(new DragEvent(name, { bubbles: true, cancelable: true, dataTransfer: transfer }));
          return { over: fire('dragover'), drop: fire('drop') };
        },
        { selector, type },
      );
    assert.deepEqual(await drop('#results', 'text/uri-list'), { over: true, drop: true });
    assert.deepEqual(await drop('.intended-use', 'text/plain'), { over: true, drop: true });
    assert.deepEqual(await drop('#patient-age', 'text/plain'), { over: false, drop: false });
    await page.context().close();
  });
});
