// The page in Debian's Chromium (playwright-core, no browser download): upload a real X-ray and
// a DICOM, see probability and heat map, then the same X-ray in "process on this computer" mode
// must give the server's probability within 1e-3. The model's weights are stored in half precision
// (as `cxr ensemble --float16` writes them), so the browser's own widening of them is checked too;
// e2e-clinic.test.ts covers float32 weights in the page. The page must run under the server's CSP
// (any violation shows up as a console error and fails the test).
// CXR_UPDATE_SCREENSHOT=1 also writes docs/screenshot.png.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { auditRecord, DICOM_FILE, makeTinyModel, XRAY_JPEG } from './serve-fixtures';
import { axeProblems, noChromium, pageSuite } from './browser-fixture';
import sharp from 'sharp';

const REPO = path.resolve(__dirname, '..', '..', '..', '..');
const skip = noChromium;

const suite = pageSuite('e2e', skip, {
  // CXR_E2E_MODEL: run against a trained model (e.g. for the screenshot) instead of random weights.
  model: async (dir) =>
    process.env.CXR_E2E_MODEL ??
    (await makeTinyModel(path.join(dir, 'model'), {
      inputSize: 64,
      tta: ['identity', 'zoom-in', 'shift-left'],
      storage: 'float16',
    })),
  started: openSharedTab,
});
let page: Page;
const consoleErrors: string[] = [];

/** The one tab the tests share, its console errors collected, nothing loaded from elsewhere. */
async function openSharedTab(): Promise<void> {
  page = await suite.browser.newPage({ viewport: { width: 1280, height: 1000 } });
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  // Everything the page loads must come from this server (no CDN).
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(suite.server.url) || url.startsWith('blob:') || url.startsWith('data:')) return route.continue();
    consoleErrors.push(`request outside the server: ${url}`);
    return route.abort();
  });
}

async function cards(): Promise<{ state: string; source: string; probability: number; name: string }[]> {
  return page.$$eval('.result', (els) =>
    els.map((e) => ({
      state: (e as HTMLElement).dataset.state ?? '',
      source: (e as HTMLElement).dataset.source ?? '',
      probability: Number((e as HTMLElement).dataset.probability),
      name: e.querySelector('.file-name')?.textContent ?? '',
    })),
  );
}

test('upload on the page, heat map, then the same probability in the browser', {
  skip,
  timeout: 180_000,
}, async (t) => {
  if (!process.env.CXR_E2E_MODEL) {
    const manifest = JSON.parse(fs.readFileSync(path.join(suite.modelDir, 'model.json'), 'utf8')).weightsManifest;
    const kinds = new Set(manifest[0].weights.map((w: { quantization?: { dtype: string } }) => w.quantization?.dtype));
    assert.deepEqual([...kinds], ['float16'], 'the page is given half-precision weights');
  }
  await page.goto(suite.server.url);
  await page.waitForSelector('body[data-ready="true"]');

  await page.setInputFiles('#file-input', [XRAY_JPEG, DICOM_FILE]);
  await page.waitForFunction(
    () => document.querySelectorAll('.result[data-state="done"], .result[data-state="error"]').length === 2,
    undefined,
    { timeout: 60_000 },
  );
  const [jpegCard, dicomCard] = await cards(); // newest first, in upload order
  assert.equal(jpegCard.state, 'done');
  assert.equal(jpegCard.source, 'server');
  assert.ok(jpegCard.probability >= 0 && jpegCard.probability <= 1);
  const shown = await page.textContent('.result[data-source="server"] .prob-value');
  assert.match(shown ?? '', /^(\d+\.\d+|[<>]\u00a0(99\.9+|0\.0*1))\u00a0%$/);
  await page.waitForFunction(
    () => {
      const img = document.querySelector<HTMLImageElement>('.result[data-source="server"] img.heatmap');
      return img !== null && img.complete && img.naturalWidth > 0;
    },
    undefined,
    { timeout: 20_000 },
  );
  assert.equal(dicomCard.state, 'done', 'the DICOM is analyzed on the server');
  assert.equal(dicomCard.source, 'server');
  assert.ok(dicomCard.probability >= 0 && dicomCard.probability <= 1);

  assert.deepEqual(await axeProblems(page), [], 'Analyze view with results');

  // The operating point switch asks the server again: the card shows the new answer, logged under its id.
  const label = await page.getAttribute('.result[data-source="server"]', 'data-label');
  const firstId = await page.getAttribute('.result[data-source="server"]', 'data-prediction-id');
  await page.check('.result[data-source="server"] input[value="screening"]');
  await page.waitForSelector('.result[data-source="server"][data-state="done"][data-operating-point="screening"]');
  const newId = (await page.getAttribute('.result[data-source="server"]', 'data-prediction-id')) ?? '';
  assert.notEqual(newId, firstId);
  assert.equal((await suite.server.audit.get(newId))?.operatingPoint, 'screening');
  assert.ok(label === 'NORMAL' || label === 'PNEUMONIA');

  await page.check('#local-mode');
  await page.waitForFunction(
    () => /Model loaded/.test(document.querySelector('#status')?.textContent ?? ''),
    undefined,
    { timeout: 60_000 },
  );
  await page.setInputFiles('#file-input', [XRAY_JPEG, DICOM_FILE]);
  await page.waitForFunction(
    () => document.querySelectorAll('.result[data-state="done"], .result[data-state="error"]').length === 4,
    undefined,
    { timeout: 60_000 },
  );
  const [local, localDicom] = await cards();
  assert.equal(local.source, 'local', JSON.stringify(local));
  assert.equal(local.state, 'done');
  t.diagnostic(`in-browser ${local.probability} vs server ${jpegCard.probability}`);
  assert.ok(
    Math.abs(local.probability - jpegCard.probability) < 1e-3,
    `in-browser ${local.probability} vs server ${jpegCard.probability}`,
  );
  assert.equal(localDicom.state, 'error');
  assert.match((await page.textContent('.result .warnings li.error')) ?? '', /DICOM is processed on the server only/);

  if (process.env.CXR_UPDATE_SCREENSHOT) {
    await page.uncheck('#local-mode');
    await page.evaluate(() => {
      for (const c of Array.from(document.querySelectorAll('.result')).slice(0, 2)) c.remove();
    });
    await page.screenshot({
      path: process.env.CXR_SCREENSHOT_PATH ?? path.join(REPO, 'docs', 'screenshot.png'),
      fullPage: false,
    });
  }

  await page.goto(`${suite.server.url}/#/history`);
  await page.waitForSelector('#history-table tbody tr td time');
  const rows = await page.$$eval('#history-table tbody tr', (r) => r.length);
  assert.ok(rows >= 1);
  assert.deepEqual(await axeProblems(page), [], 'History view');
  await page.goto(`${suite.server.url}/#/model`);
  await page.waitForSelector('#model-facts dd');
  assert.deepEqual(await axeProblems(page), [], 'Model view');

  assert.deepEqual(consoleErrors, []);
});

test("an age typed on the page: an adult's JPEG is outside the intended population, on the server and in the browser", {
  skip,
  timeout: 120_000,
}, async () => {
  await page.goto(suite.server.url);
  await page.waitForSelector('body[data-ready="true"]');
  const verdicts = () => page.$$eval('.result', (els) => els.map((e) => (e as HTMLElement).dataset.verdict ?? ''));
  const upload = async (n: number) => {
    await page.setInputFiles('#file-input', [XRAY_JPEG]);
    await page.waitForFunction((k) => document.querySelectorAll('.result[data-state="done"]').length === k, n, {
      timeout: 60_000,
    });
  };
  await page.uncheck('#local-mode');
  await page.fill('#patient-age', '40');
  await upload(1);
  assert.equal((await verdicts())[0], 'outside-population');
  assert.match((await page.textContent('.result .label-badge')) ?? '', /Outside the intended population/);
  assert.match(
    (await page.textContent('.result .warnings')) ?? '',
    /age given with the image is a patient age over 10/,
  );

  await page.check('#local-mode');
  await page.waitForFunction(
    () => /Model loaded/.test(document.querySelector('#status')?.textContent ?? ''),
    undefined,
    {
      timeout: 60_000,
    },
  );
  await upload(2);
  assert.equal((await verdicts())[0], 'outside-population', 'the browser applies the typed age as the server does');

  // A child's age, or none: the same film is assessed (this model has no gate, and the film passes the checks).
  await page.fill('#patient-age', '3');
  await upload(3);
  await page.uncheck('#local-mode');
  await page.fill('#patient-age', '');
  await upload(4);
  assert.deepEqual((await verdicts()).slice(0, 2), ['assessed', 'assessed']);
  // An age out of range is said, not dropped: the card is an error and nothing is sent.
  await page.fill('#patient-age', '200');
  await page.setInputFiles('#file-input', [XRAY_JPEG]);
  await page.waitForSelector('.result[data-state="error"]', { timeout: 30_000 });
  assert.match((await page.textContent('.result .warnings li.error')) ?? '', /Patient age must be a number of years/);
  await page.fill('#patient-age', '');
  assert.deepEqual(await axeProblems(page), [], 'Analyze view with the age field');
  assert.deepEqual(consoleErrors, []);
});

test('with CXR_API_TOKEN the page asks for the token once and keeps it for the tab', {
  skip,
  timeout: 120_000,
}, async () => {
  const secured = await suite.serve('secured', suite.modelDir, false, { apiToken: 'e2e-token' });
  const context = await suite.browser.newContext();
  const tab = await context.newPage();
  try {
    await tab.goto(secured.url);
    await tab.waitForSelector('#token-dialog[open]');
    await tab.fill('#token-input', 'e2e-token');
    await tab.press('#token-input', 'Enter');
    await tab.waitForSelector('body[data-ready="true"]');
    assert.equal(await tab.evaluate(() => sessionStorage.getItem('cxr.apiToken')), 'e2e-token');
    await tab.setInputFiles('#file-input', [XRAY_JPEG]);
    await tab.waitForSelector('.result[data-state="done"]', { timeout: 60_000 });
    await tab.waitForFunction(
      () => (document.querySelector<HTMLImageElement>('.result img.heatmap')?.naturalWidth ?? 0) > 0,
    );
    assert.equal(await tab.isVisible('#token-dialog[open]'), false, 'asked only once');
  } finally {
    await context.close();
    await secured.close();
  }
});

test('a film that cannot be assessed gets no heat map, on its card or in the history', {
  skip,
  timeout: 120_000,
}, async () => {
  // A blank film: the image checks make it 'cannot-assess', and the server makes no heat map for it.
  const blank = path.join(suite.dir, 'blank.png');
  fs.writeFileSync(
    blank,
    await sharp({ create: { width: 256, height: 256, channels: 3, background: '#808080' } })
      .png()
      .toBuffer(),
  );
  await page.goto(suite.server.url);
  await page.waitForSelector('body[data-ready="true"]');
  await page.uncheck('#local-mode');
  await page.fill('#patient-age', '');
  await page.setInputFiles('#file-input', [blank]);
  const card = '.result[data-verdict="cannot-assess"]';
  await page.waitForSelector(`${card}[data-state="done"]`, { timeout: 60_000 });
  const id = (await page.getAttribute(card, 'data-prediction-id')) ?? '';
  assert.equal((await suite.server.audit.get(id))?.hasHeatmap, false, 'no heat map made for it');
  // "Cannot assess", and no label: the API gives none, and the card shows none whatever the threshold.
  assert.equal(await page.textContent(`${card} .label-badge`), 'Cannot assess this image');
  assert.equal(await page.getAttribute(card, 'data-label'), '');
  // A row logged before the server stopped making them (a heat map stored with a cannot-assess verdict):
  // the history still offers no link to it.
  const old = auditRecord(7, {
    label: 'PNEUMONIA',
    verdict: { status: 'cannot-assess', reasons: [{ code: 'BLANK', message: 'image is blank' }] },
    hasHeatmap: true,
    createdAt: new Date().toISOString(),
  });
  await suite.server.audit.insert(old, { heatmapPng: await sharp(blank).toBuffer() });
  await page.waitForFunction(
    (sel) => (document.querySelector<HTMLImageElement>(`${sel} img.original`)?.naturalWidth ?? 0) > 0,
    card,
  );
  assert.equal(await page.isVisible(`${card} img.heatmap`), false);
  assert.equal(await page.getAttribute(`${card} img.heatmap`, 'src'), null);
  assert.equal(await page.isVisible(`${card} .legend`), false);
  assert.equal(await page.isVisible(`${card} .opacity`), false);
  // Nor are the colours described to a screen reader.
  assert.equal(await page.$eval(`${card} .legend-words`, (e) => (e as HTMLElement).hidden), true);
  // A strip no film is shaped like (cannot-assess): its card fits the window (such a card once ran 430,000 px).
  const strip = path.join(suite.dir, 'strip.png');
  fs.writeFileSync(
    strip,
    await sharp({ create: { width: 64, height: 8000, channels: 3, background: '#707070' } })
      .png()
      .toBuffer(),
  );
  await page.setInputFiles('#file-input', [strip]);
  const named = '.result[data-verdict="cannot-assess"][data-state="done"]';
  await page.waitForSelector(`${named} >> text=strip.png`, { timeout: 60_000 });
  const stripId = await page.$$eval(
    named,
    (cards) => cards.find((c) => c.querySelector('.file-name')?.textContent === 'strip.png')?.id ?? '',
  );
  assert.ok(stripId, 'the strip has its card');
  const stripCard = `#${stripId}`;
  await page.waitForFunction(
    (sel) => (document.querySelector<HTMLImageElement>(`${sel} img.original`)?.naturalWidth ?? 0) > 0,
    stripCard,
  );
  const box = await page.$eval(`${stripCard} img.original`, (e) => e.getBoundingClientRect().height);
  const viewport = await page.evaluate(() => window.innerHeight);
  assert.ok(box <= viewport * 0.7 + 1, `the strip's image is ${box} px tall in a ${viewport} px window`);

  await page.goto(`${suite.server.url}/#/history`);
  await page.selectOption('#history-filters select[name="verdict"]', 'cannot-assess');
  await page.click('#history-filters button[type="submit"]');
  for (const row of [`#prediction-${id}`, `#prediction-${old.id}`]) {
    await page.waitForSelector(row);
    assert.equal((await page.textContent(`${row} .finding`)) ?? '', 'Cannot assess');
    assert.equal(await page.$$eval(`${row} a`, (links) => links.length), 0, 'no heat map link');
  }
  // Only rows that cannot be assessed are listed.
  assert.deepEqual(
    [...new Set(await page.$$eval('#history-table tbody .finding', (c) => c.map((e) => e.textContent)))],
    ['Cannot assess'],
  );
  assert.deepEqual(consoleErrors, []);
});
