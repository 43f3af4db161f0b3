// What a result card tells a night-shift clinician (the QA registrar's findings), in Chromium against a real
// server whose answers are moved to the case at hand (probability, verdict, warnings):
//  - a film analyzed with no age known carries a visible caution beside its finding, in the model's own age
//    range; a typed age is said as the age the answer used; a DICOM without a typed age whose answer has none
//    says its header gave none (web-card-s31-age.test.ts: the age each answer took);
//  - a heat map with no colour (a positive film at 18 %) or little colour says so while it is shown;
//  - the finding reads as the number against its threshold ("Above the pneumonia threshold (p ≥ 50.0 %)"), and
//    the near-threshold note says which probabilities count as close;
//  - a warning's figures ("gate score 31.5, limit 23.1") are out of its words and in a details element;
//  - a card's film opens large, in the page's one large-view dialog, with the heat map over it as on the card.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { DICOM_DIR, XRAY_JPEG } from './serve-fixtures';
import { finished, noChromium, pageSuite, recordAnnouncements, upload } from './browser-fixture';

/** An adult CR chest film whose header has no age and no birth date (the QA registrar's film). */
const ADULT_DICOM = path.join(DICOM_DIR, 'gdcm-CR-MONO1-10-chest.dcm');
const skip = noChromium || (fs.existsSync(ADULT_DICOM) && fs.existsSync(XRAY_JPEG) ? false : `needs ${ADULT_DICOM}`);
const suite = pageSuite('web-card-s31', skip, { rebuild: true });

type Body = Record<string, unknown> & { threshold: number; probability: number };

/** A tab whose server answers are passed through `change`, one per answer, in order. */
async function openWith(changes: ((b: Body) => void)[], viewport = { width: 1280, height: 800 }): Promise<Page> {
  const { page } = await suite.open({ viewport });
  let n = 0;
  await page.route('**/api/v1/predictions?*', async (route) => {
    if (route.request().method() !== 'POST') return route.fallback();
    const res = await route.fetch();
    const body = (await res.json()) as Body;
    changes[Math.min(n++, changes.length - 1)](body);
    await route.fulfill({ response: res, json: body });
  });
  return page;
}

/** An assessed answer at `p`, labelled as the server labels it, with `warnings`. */
const assessed =
  (p: number, warnings: string[] = []) =>
  (b: Body) => {
    b.probability = p;
    b.label = p >= b.threshold ? 'PNEUMONIA' : 'NORMAL';
    b.verdict = { status: 'assessed', reasons: [] };
    b.warnings = warnings;
  };

const card = '.result:first-child';
const text = async (page: Page, sel: string) =>
  (await page.isVisible(`${card} ${sel}`)) ? ((await page.textContent(`${card} ${sel}`)) ?? '') : null;

test('a finding with no age known carries a caution; a typed age is said; a DICOM without one says so', {
  skip,
  timeout: 180_000,
}, async () => {
  const page = await openWith([assessed(0.31)]);
  await page.setInputFiles('#file-input', [upload('no-age.jpeg', XRAY_JPEG)]);
  await finished(page, 1);
  const unknown = await text(page, '.age-used');
  assert.match(unknown ?? '', /^Age unknown: no age was typed.*validated only for children aged 1–5: type the/);
  assert.equal(await page.$eval(`${card} .age-used`, (e) => e.classList.contains('caution')), true);
  // Seen beside the finding, in the warning colours, not in the grey meta line alone.
  const colour = await page.$eval(`${card} .age-used`, (e) => getComputedStyle(e).backgroundColor);
  assert.notEqual(colour, 'rgba(0, 0, 0, 0)');

  await page.fill('#patient-age', '3');
  await page.setInputFiles('#file-input', [upload('typed.jpeg', XRAY_JPEG)]);
  await finished(page, 2);
  assert.equal(await text(page, '.age-used'), 'Age 3 years, as typed on this page.');
  assert.equal(await page.$eval(`${card} .age-used`, (e) => e.classList.contains('caution')), false);

  await page.fill('#patient-age', '');
  await page.setInputFiles('#file-input', [upload('adult.dcm', ADULT_DICOM)]);
  await finished(page, 3);
  assert.match(
    (await text(page, '.age-used')) ?? '',
    /^Age unknown: no age was typed, and the DICOM header gives none/,
  );
  await page.context().close();
});

test('a heat map with no colour or little colour says so; the finding reads against its threshold', {
  skip,
  timeout: 180_000,
}, async () => {
  const page = await openWith([assessed(0.181), assessed(0.31), assessed(0.62)]);
  const said = await recordAnnouncements(page);
  await page.setInputFiles('#file-input', [upload('weak.jpeg', XRAY_JPEG)]);
  await finished(page, 1);
  await page.waitForSelector(`${card} img.heatmap[src]`);
  assert.match((await text(page, '.heatmap-weak')) ?? '', /^No colour on this heat map: .*\(18\.1\u00a0%\)/);
  // The tiny model's threshold is 50 %: 18.1 % is below it, and the headline says the number's side of it.
  assert.equal(await text(page, '.label-badge'), 'Below the pneumonia threshold (p\u00a0<\u00a050.0\u00a0%)');
  // Off, the note goes with the overlay.
  await page.uncheck(`${card} .heatmap-on`);
  assert.equal(await text(page, '.heatmap-weak'), null);
  await page.check(`${card} .heatmap-on`);

  await page.setInputFiles('#file-input', [upload('faint.jpeg', XRAY_JPEG)]);
  await finished(page, 2);
  await page.waitForSelector(`${card} img.heatmap[src]`);
  assert.match((await text(page, '.heatmap-weak')) ?? '', /^Faint heat map: .*\(31\.0\u00a0%\)/);

  await page.setInputFiles('#file-input', [upload('strong.jpeg', XRAY_JPEG)]);
  await finished(page, 3);
  await page.waitForSelector(`${card} img.heatmap[src]`);
  assert.equal(await text(page, '.heatmap-weak'), null);
  assert.equal(await text(page, '.label-badge'), 'Above the pneumonia threshold (p\u00a0≥\u00a050.0\u00a0%)');
  // 62 % is outside "close" at 50 %: 40 % to 60 %, which the near note says where it shows.
  assert.equal(await text(page, '.near-note'), null);
  assert.match(
    (await said()).join('\n'),
    /strong\.jpeg: Above the pneumonia threshold: 62\.0\u00a0% probability of pneumonia, threshold 50/,
  );
  await page.context().close();
});

test('the near-threshold note says which probabilities count as close', { skip, timeout: 120_000 }, async () => {
  const page = await openWith([assessed(0.55)]);
  await page.setInputFiles('#file-input', [upload('near.jpeg', XRAY_JPEG)]);
  await finished(page, 1);
  const near = (await text(page, '.near-note')) ?? '';
  assert.match(near, /^Close to the threshold \(above it\): a weak finding/);
  assert.match(near, /"Close" here is 40\.0\u00a0% to 60\.0\u00a0% \(within 1\.5 times the threshold's odds/);
  await page.context().close();
});

test("a warning's figures are kept out of its words, in a details element, and out of what is said", {
  skip,
  timeout: 120_000,
}, async () => {
  const ood =
    "does not look like a frontal chest X-ray to the model: the model's own features of the image are far from " +
    'those of the chest films it was trained on (gate score 31.5, limit 23.1)';
  const age = 'the age given with the image is over 5 years: older than the children (ages 1–5); not validated';
  const page = await openWith([
    (b) => {
      b.label = null;
      b.verdict = { status: 'cannot-assess', reasons: [{ code: 'OOD', message: ood }] };
      b.warnings = [ood, age];
    },
  ]);
  const said = await recordAnnouncements(page);
  await page.setInputFiles('#file-input', [upload('odd.jpeg', XRAY_JPEG)]);
  await finished(page, 1);
  const items = await page.$$eval(`${card} .warnings li`, (li) => li.map((e) => e.textContent));
  assert.deepEqual(items, [ood.replace(/ \(gate score.*$/, ''), age]);
  assert.equal(await page.isVisible(`${card} details.figures`), true);
  assert.equal(await page.isVisible(`${card} details.figures li`), false, 'closed until asked for');
  await page.click(`${card} details.figures summary`);
  assert.deepEqual(await page.$$eval(`${card} details.figures li`, (li) => li.map((e) => e.textContent)), [
    'gate score 31.5, limit 23.1',
  ]);
  assert.doesNotMatch((await said()).join('\n'), /gate score/);
  await page.context().close();
});

test("a card's film opens large, with its heat map over it as on the card, or bare when it is off", {
  skip,
  timeout: 120_000,
}, async () => {
  const page = await openWith([assessed(0.62)]);
  await page.setInputFiles('#file-input', [upload('film.jpeg', XRAY_JPEG)]);
  await finished(page, 1);
  await page.waitForFunction(
    (sel) => (document.querySelector<HTMLImageElement>(`${sel} img.original`)?.naturalWidth ?? 0) > 0,
    card,
  );
  const small = (await page.locator(`${card} img.original`).boundingBox())!.height;
  await page.getByRole('button', { name: 'Enlarge film.jpeg' }).click();
  await page.waitForSelector('#heatmap-dialog[open]');
  const film = await page.getAttribute(`${card} img.original`, 'src');
  assert.equal(await page.getAttribute('#heatmap-image', 'src'), film);
  assert.equal(await page.getAttribute('#large-overlay', 'src'), await page.getAttribute(`${card} img.heatmap`, 'src'));
  assert.equal(await page.isVisible('#large-overlay'), true);
  assert.equal(await page.isVisible('#heatmap-dialog .legend-bar'), true);
  assert.equal(await page.textContent('#heatmap-title'), 'film.jpeg');
  const large = (await page.locator('#heatmap-image').boundingBox())!.height;
  assert.ok(large > small * 1.2, `large view ${large} px high, the card's ${small}`);
  await page.click('#heatmap-dialog button');
  assert.equal(await page.isVisible('#heatmap-dialog'), false);

  // Off on the card, off in the large view: the film alone, no legend; a click on the image opens it too.
  await page.uncheck(`${card} .heatmap-on`);
  await page.click(`${card} .stack`);
  await page.waitForSelector('#heatmap-dialog[open]');
  assert.equal(await page.isVisible('#large-overlay'), false);
  assert.equal(await page.isVisible('#heatmap-dialog .legend-bar'), false);
  // The card's film is the dialog's to show, not to free: it still loads on the card after the dialog is reused.
  await page.click('#heatmap-dialog button');
  assert.equal(await page.$eval(`${card} img.original`, (i) => (i as HTMLImageElement).naturalWidth > 0), true);
  await page.context().close();
});

test('on a phone the drop zone asks to choose films, not to drop them', { skip, timeout: 60_000 }, async () => {
  const phone = await suite.open({ viewport: { width: 390, height: 800 }, isMobile: true, hasTouch: true });
  const shown = async (p: Page) => [await p.isVisible('#drop .drop-words'), await p.isVisible('#drop .touch-words')];
  assert.deepEqual(await shown(phone.page), [false, true]);
  assert.equal(await phone.page.textContent('#drop .touch-words'), 'Choose chest X-rays');
  await phone.page.context().close();
  const desk = await suite.open();
  assert.deepEqual(await shown(desk.page), [true, false]);
  await desk.page.context().close();
});
