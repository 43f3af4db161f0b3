// The page's one token loop (web/client/api.ts withToken), in Chromium against a server that wants a token: a 401
// to a film's upload (sent by XMLHttpRequest, for its progress) is answered as one to any other request is. The
// token is asked for, stored for the tab, and the film sent again; a wrong token is asked for again; a cancelled
// dialog ends it: the card says the server's 401 and the film is not sent again.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { RunningServer } from '../src/serve/server';
import { makeTinyModel, tempDir, XRAY_JPEG } from './serve-fixtures';
import { finished, Gate, isPrediction, launchChromium, noChromium, openPage, startPageServer } from './browser-fixture';

const skip = noChromium;
const TOKEN = 'page-token-for-tests';

let dir: string;
let server: RunningServer;
let browser: Browser;

before(async () => {
  if (skip) return;
  dir = tempDir('web-token');
  const modelDir = await makeTinyModel(path.join(dir, 'model'), { inputSize: 64 });
  server = await startPageServer(dir, modelDir, false, { apiToken: TOKEN });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Waits for the token dialog and answers it: with `token`, or cancelled (Escape) when null. */
async function answerDialog(page: Page, token: string | null): Promise<void> {
  await page.waitForSelector('#token-dialog[open]');
  if (token === null) await page.keyboard.press('Escape');
  else {
    await page.fill('#token-input', token);
    await page.press('#token-input', 'Enter');
  }
}

const stored = (page: Page) => page.evaluate(() => sessionStorage.getItem('cxr.apiToken'));

test('a 401 to an upload asks for the token and sends the film again; a wrong one is asked for again', {
  skip,
  timeout: 120_000,
}, async () => {
  const { page } = await openPage(browser);
  const predictions = new Gate(isPrediction);
  await predictions.install(page);
  await page.goto(server.url);
  await answerDialog(page, TOKEN);
  await page.waitForSelector('body[data-ready="true"]');

  // The token the tab holds is no longer the server's (restarted with another one): the upload is refused.
  await page.evaluate(() => sessionStorage.setItem('cxr.apiToken', 'an-old-token'));
  await page.setInputFiles('#file-input', [XRAY_JPEG]);
  // Each answer is waited for as the film sent again: by then the dialog it closed is shut.
  await answerDialog(page, 'a-wrong-token');
  await predictions.seen(2);
  await answerDialog(page, TOKEN);
  await finished(page, 1);
  assert.equal(await page.getAttribute('.result', 'data-state'), 'done', (await page.textContent('.result')) ?? '');
  assert.equal(predictions.requests.length, 3, 'the old token, the wrong one, the right one');
  assert.equal(await stored(page), TOKEN);

  // Cancelled: the 401 is the answer at once, the film is not sent again and nobody is asked a second time.
  await page.evaluate(() => sessionStorage.setItem('cxr.apiToken', 'an-old-token'));
  await page.setInputFiles('#file-input', [XRAY_JPEG]);
  await answerDialog(page, null);
  await finished(page, 2);
  assert.equal(predictions.requests.length, 4, 'the old token only');
  assert.equal(
    await page.textContent('.result:first-child .warnings li.error'),
    'this server needs an API token: send "Authorization: Bearer <token>"',
  );
  assert.equal(await page.isVisible('#token-dialog[open]'), false, 'not asked again');
  await page.context().close();
});
