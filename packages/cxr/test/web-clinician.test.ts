// What a clinician found on the page, in Chromium against a real server:
//  - an old DICOM without preamble and without a .dcm name (a PACS export named IMG0001, or x.jpg) is shown as the
//    server read it: its thumbnail, not its raw bytes in an <img> (a broken image under the heat map), with the
//    age its answer took in the age note; a JPEG named x.dcm is shown as the JPEG it is; the file picker hides no file;
//  - a probability just under the threshold never reads as equal to it ("15.7 % ..., threshold 15.7 %"), and
//    a finding close to its threshold says so, on either side;
//  - the page opened while the API was unreachable builds its operating point choice once the model info comes
//    (the Model view's "Try again", or the first film analyzed), and the Model view says plainly what went wrong;
//  - History with "From" after "To" says so at the fields instead of "No predictions match.";
//  - "98.8 %" never breaks before its "%", and the heat map's legend says what the colours are not.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { DICOM_DIR, XRAY_JPEG } from './serve-fixtures';
import { finished, noChromium, openPage, pageSuite, ready, upload } from './browser-fixture';

const NOMETA_DICOM = path.join(DICOM_DIR, 'CR-MONO1-10-chest_nometa.dcm');
const skip = noChromium || (fs.existsSync(NOMETA_DICOM) ? false : `needs ${NOMETA_DICOM}`);

// The page as the sources stand: the page tests before this one may have left an older build.
const suite = pageSuite('web-clinician', skip, { rebuild: true });

/** The selector of the card of `name`: its id. */
async function cardOf(page: Page, name: string): Promise<string> {
  const ids = await page.$$eval('.result', (cs) => cs.map((c) => [c.id, c.querySelector('.file-name')?.textContent]));
  const id = ids.find(([, n]) => n === name)?.[0];
  assert.ok(id, `no card for ${name}`);
  return `#${id}`;
}

/** Until the card's original image has loaded; whether it decoded (a broken image has no natural width). */
async function imageShown(page: Page, card: string): Promise<boolean> {
  await page.waitForFunction((sel) => document.querySelector<HTMLImageElement>(`${sel} img.original`)?.complete, card);
  return page.$eval(`${card} img.original`, (img) => (img as HTMLImageElement).naturalWidth > 0);
}

test('a DICOM without preamble or .dcm name is shown as the server read it; a JPEG named .dcm as a JPEG', {
  skip,
  timeout: 120_000,
}, async () => {
  const { page, errors } = await suite.open();
  // No accept list: it hid PACS exports without an extension in the file chooser.
  assert.equal(await page.getAttribute('#file-input', 'accept'), null);
  await page.fill('#patient-age', '3');
  await page.setInputFiles('#file-input', [
    upload('IMG0001', NOMETA_DICOM),
    upload('nometa-as.jpg', NOMETA_DICOM),
    upload('film.dcm', XRAY_JPEG),
  ]);
  await finished(page, 3);
  for (const name of ['IMG0001', 'nometa-as.jpg']) {
    const card = await cardOf(page, name);
    assert.equal(await page.getAttribute(card, 'data-state'), 'done', (await page.textContent(card)) ?? '');
    const meta = (await page.textContent(`${card} .meta`)) ?? '';
    assert.match(meta, /^DICOM /, name);
    // The age the answer took: the typed one, as this header gives none (no age, no birth date).
    assert.match(meta, /age used 3 years, as typed on this page ·/, name);
    assert.equal(await imageShown(page, card), true, `${name}: the film is shown, not a broken image`);
  }
  const jpeg = await cardOf(page, 'film.dcm');
  const meta = (await page.textContent(`${jpeg} .meta`)) ?? '';
  assert.match(meta, /^JPEG /);
  assert.match(meta, /age used 3 years, as typed on this page ·/, 'the typed age, whatever its name');
  assert.equal(await imageShown(page, jpeg), true);
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('a probability near its threshold reads as on its side of it, with decimals enough, and says it is close', {
  skip,
  timeout: 120_000,
}, async () => {
  const { page } = await openPage(suite.browser);
  // The server's own answer, its probability moved: just below, well above, and a little above the threshold.
  const moves = [(t: number) => t - 0.00003, () => 0.62, () => 0.55];
  let n = 0;
  await page.route('**/api/v1/predictions?*', async (route) => {
    if (route.request().method() !== 'POST') return route.fallback();
    const res = await route.fetch();
    const body = await res.json();
    body.probability = moves[n++](body.threshold);
    body.label = body.probability >= body.threshold ? 'PNEUMONIA' : 'NORMAL';
    body.verdict = { status: 'assessed', reasons: [] };
    body.warnings = [];
    await route.fulfill({ response: res, json: body });
  });
  await ready(page, suite.server.url);
  const card = '.result:first-child';
  const shown = async () => ({
    probability: await page.textContent(`${card} .prob-value`),
    threshold: ((await page.textContent(`${card} .threshold`)) ?? '').replace(/ \(.*$/, ''),
    near: (await page.isVisible(`${card} .near-note`)) ? await page.textContent(`${card} .near-note`) : null,
    said: await page.$$eval('#announcer > *', (ps) =>
      ps.map((p) => p.textContent ?? '').find((t) => /threshold/.test(t)),
    ),
  });

  await page.setInputFiles('#file-input', [upload('below.jpeg', XRAY_JPEG)]);
  await finished(page, 1);
  const below = await shown();
  assert.equal(below.probability, '49.997\u00a0%');
  assert.equal(below.threshold, 'Threshold 50.000\u00a0%');
  assert.match(below.near ?? '', /^Close to the threshold \(below it\): a weak finding/);
  assert.match(
    below.said ?? '',
    /Below the pneumonia threshold: 49\.997\u00a0% probability of \w+, threshold 50\.000\u00a0% \(balanced\): close/,
  );

  await page.setInputFiles('#file-input', [upload('far.jpeg', XRAY_JPEG)]);
  await finished(page, 2);
  const far = await shown();
  assert.deepEqual([far.probability, far.threshold, far.near], ['62.0\u00a0%', 'Threshold 50.0\u00a0%', null]);

  // Within a factor of 1.5 of the threshold on the odds scale: close, on the other side too.
  await page.setInputFiles('#file-input', [upload('above.jpeg', XRAY_JPEG)]);
  await finished(page, 3);
  const above = await shown();
  assert.deepEqual([above.probability, above.threshold], ['55.0\u00a0%', 'Threshold 50.0\u00a0%']);
  assert.match(above.near ?? '', /^Close to the threshold \(above it\): a weak finding/);
  await page.context().close();
});

test('opened while the API is unreachable: a plain message with Try again, then the operating point choice', {
  skip,
  timeout: 120_000,
}, async () => {
  const { page } = await openPage(suite.browser);
  const down = '**/api/v1/**';
  await page.route(down, (r) => r.abort('connectionrefused'));
  await page.goto(`${suite.server.url}/#/model`);
  await page.waitForSelector('#model-error:not([hidden])');
  const message = (await page.textContent('#model-error p')) ?? '';
  assert.match(message, /^The model's information could not be loaded\. Cannot reach the cxr server\./);
  assert.doesNotMatch(message, /Error:/);
  assert.equal(await page.textContent('#model-error button'), 'Try again');
  await page.unroute(down);
  await page.click('#model-error button');
  await page.waitForSelector('#model-facts dd');
  assert.equal(await page.isVisible('#model-error'), false);
  await page.click('nav a[data-nav="analyze"]');
  assert.deepEqual(await page.$$eval('#op-global input', (is) => is.map((i) => (i as HTMLInputElement).value)), [
    'screening',
    'balanced',
  ]);

  // The same with the first film analyzed once the API is back.
  await page.route(down, (r) => r.abort('connectionrefused'));
  await page.reload();
  await page.waitForFunction(() => /could not be loaded/.test(document.querySelector('#status')?.textContent ?? ''));
  assert.equal(await page.$$eval('#op-global input', (is) => is.length), 1, 'the placeholder only');
  await page.unroute(down);
  await page.setInputFiles('#file-input', [upload('later.jpeg', XRAY_JPEG)]);
  await finished(page, 1);
  assert.deepEqual(await page.$$eval('#op-global input', (is) => is.map((i) => (i as HTMLInputElement).value)), [
    'screening',
    'balanced',
  ]);
  assert.equal(await page.getAttribute('body', 'data-ready'), 'true');
  await page.context().close();
});

test('History with "From" after "To" says so at the fields and asks nothing', { skip, timeout: 60_000 }, async () => {
  const { page } = await suite.open({}, '/#/history');
  await page.waitForSelector('#history-table tbody tr');
  const asked: string[] = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/api/v1/predictions') asked.push(r.url());
  });
  await page.fill('input[name="since"]', '2026-03-02');
  await page.fill('input[name="until"]', '2026-03-01');
  await page.click('#history-filters button[type=submit]');
  await page.waitForSelector('#history-dates-error:not([hidden])');
  // In the locale's format, as the fields show the dates, not the fields' yyyy-mm-dd.
  const day = (d: string) => page.evaluate((x) => new Date(`${x}T00:00:00`).toLocaleDateString(), d);
  assert.equal(
    await page.textContent('#history-dates-error'),
    `"From" (${await day('2026-03-02')}) is after "To" (${await day('2026-03-01')}): swap the two dates.`,
  );
  assert.doesNotMatch((await page.textContent('#history-dates-error')) ?? '', /2026-03/);
  assert.equal(await page.$$eval('#history-filters [aria-invalid="true"]', (e) => e.length), 2);
  assert.deepEqual(asked, [], 'not sent');
  // Put right: the error goes and the history is asked for.
  await page.fill('input[name="until"]', '2026-03-02');
  await page.click('#history-filters button[type=submit]');
  await page.waitForFunction(() => /^Page 1 of/.test(document.querySelector('#history-page')?.textContent ?? ''));
  assert.equal(await page.isVisible('#history-dates-error'), false);
  assert.equal(await page.$$eval('#history-filters [aria-invalid="true"]', (e) => e.length), 0);
  assert.equal(asked.length, 1);
  await page.context().close();
});

test('no "%" on a line of its own, and a heat map legend that says what the colours are not', {
  skip,
  timeout: 120_000,
}, async () => {
  const { page } = await suite.open({ viewport: { width: 375, height: 740 } });
  await page.setInputFiles('#file-input', [upload('film.jpeg', XRAY_JPEG)]);
  await finished(page, 1);
  const card = '.result:first-child';
  await page.waitForSelector(`${card} img.heatmap[src^="blob:"]`);
  const texts = [
    await page.textContent(`${card} .verdict`),
    await page.textContent('#op-global'),
    await page.textContent('#announcer'),
  ].join('\n');
  assert.match(texts, /\d\u00a0%/);
  assert.doesNotMatch(texts, /\d %/, 'an ordinary space before "%" lets a narrow screen break there');
  const legend = (await page.textContent(`${card} .legend-note`)) ?? '';
  assert.ok(await page.isVisible(`${card} .legend-note`));
  assert.match(legend, /where the model's result drew from: it can be a side marker, a border or text rather than/);
  assert.match(legend, /A bright spot outside the lungs is a reason for more caution, not less\./);
  assert.doesNotMatch((await page.getAttribute(`${card} img.heatmap`, 'alt')) ?? '', /drove the result/);
  await page.goto(`${suite.server.url}/#/model`);
  await page.waitForSelector('#model-ops tbody td');
  assert.doesNotMatch((await page.textContent('#view-model')) ?? '', /\d %/);
  await page.context().close();
});
