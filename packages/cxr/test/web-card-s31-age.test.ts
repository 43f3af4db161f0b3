// The age an answer took, on its card, in Chromium against a real server (docs/api.md "The age an answer took"):
// the answer says the age its verdict was judged at and where it came from (the DICOM header, the film's birth and
// study dates, or the age typed), and the card says it in the units people use (months under 2 years); a DICOM
// whose answer has no age says the header gave none (no longer "the answer does not say"); an answer computed on
// this computer says the typed age as the server's would. Some answers are moved to the case at hand (a header's
// age, dates) as web-card-s31.test.ts moves them.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { DICOM_DIR, XRAY_JPEG } from './serve-fixtures';
import { finished, noChromium, pageSuite, upload } from './browser-fixture';

/** An adult CR chest film whose header has no age and no birth date. */
const ADULT_DICOM = path.join(DICOM_DIR, 'gdcm-CR-MONO1-10-chest.dcm');
const skip = noChromium || (fs.existsSync(ADULT_DICOM) && fs.existsSync(XRAY_JPEG) ? false : `needs ${ADULT_DICOM}`);
const suite = pageSuite('web-card-s31-age', skip, { rebuild: true });

type Body = Record<string, unknown> & { threshold: number; probability: number };

/** A tab whose server answers are assessed at 31 %, then passed through `change`, one per answer, in order. */
async function openWith(changes: ((b: Body) => void)[]): Promise<Page> {
  const { page } = await suite.open();
  let n = 0;
  await page.route('**/api/v1/predictions?*', async (route) => {
    if (route.request().method() !== 'POST') return route.fallback();
    const res = await route.fetch();
    const body = (await res.json()) as Body;
    body.probability = 0.31;
    body.label = 'NORMAL';
    body.verdict = { status: 'assessed', reasons: [] };
    body.warnings = [];
    changes[Math.min(n++, changes.length - 1)](body);
    await route.fulfill({ response: res, json: body });
  });
  return page;
}

const card = '.result:first-child';
const ageLine = async (page: Page) =>
  (await page.isVisible(`${card} .age-used`)) ? ((await page.textContent(`${card} .age-used`)) ?? '') : null;
const caution = (page: Page) => page.$eval(`${card} .age-used`, (e) => e.classList.contains('caution'));
const asServerSaid = () => undefined;

test("each card says the age its answer took and where from: typed, the DICOM header, the film's dates", {
  skip,
  timeout: 180_000,
}, async () => {
  const page = await openWith([
    asServerSaid,
    asServerSaid,
    (b) => {
      b.age = { years: 3, untilYears: 4, source: 'header' };
    },
    (b) => {
      // 052W: just under a year, up to just over one (assessed): said as the header says it, not "11 months".
      b.age = { years: 52 / 52.18, untilYears: 53 / 52.18, source: 'header' };
    },
    (b) => {
      b.age = { years: 4.42, source: 'dates' };
    },
  ]);
  // Typed 1.5 years: the server's answer says it took the typed age; under 2 years it is said in months.
  await page.fill('#patient-age', '1,5');
  await page.setInputFiles('#file-input', [upload('typed.jpeg', XRAY_JPEG)]);
  await finished(page, 1);
  assert.equal(await ageLine(page), 'Age 18 months, as typed on this page.');
  assert.equal(await caution(page), false);

  // A DICOM whose header has no age, none typed: the answer says so (age null), and the caution stays.
  await page.fill('#patient-age', '');
  await page.setInputFiles('#file-input', [upload('adult.dcm', ADULT_DICOM)]);
  await finished(page, 2);
  const none = (await ageLine(page)) ?? '';
  assert.match(none, /^Age unknown: no age was typed, and the DICOM header gives none .*children aged 1–5: check/);
  assert.doesNotMatch(none, /does not say/);
  assert.equal(await caution(page), true);

  await page.setInputFiles('#file-input', [upload('header.dcm', ADULT_DICOM)]);
  await finished(page, 3);
  assert.equal(await ageLine(page), 'Age 3 years, from the DICOM header.');
  assert.equal(await caution(page), false);

  await page.setInputFiles('#file-input', [upload('weeks.dcm', ADULT_DICOM)]);
  await finished(page, 4);
  assert.equal(await ageLine(page), 'Age 52 weeks, from the DICOM header.');

  await page.setInputFiles('#file-input', [upload('dates.dcm', ADULT_DICOM)]);
  await finished(page, 5);
  assert.equal(await ageLine(page), "Age 4 years, from the film's birth and study dates.");
  await page.context().close();
});

test('an answer outside the population says the age that put it there', { skip, timeout: 120_000 }, async () => {
  const reason = 'the age given with the image is over 10 years: not validated for this patient';
  const page = await openWith([
    (b) => {
      b.verdict = { status: 'outside-population', reasons: [{ code: 'AGE', message: reason }] };
      b.warnings = [reason];
      b.age = { years: 40, untilYears: 41, source: 'header' };
    },
  ]);
  await page.setInputFiles('#file-input', [upload('adult.dcm', ADULT_DICOM)]);
  await finished(page, 1);
  // With why there is no finding, and what to do (page-s36.test.ts has more of these).
  const line = (await ageLine(page)) ?? '';
  assert.ok(line.startsWith('Age 40 years, from the DICOM header: over 10 years'), line);
  assert.ok(line.includes("have the patient's details corrected in the PACS"), line);
  await page.context().close();
});

test('a film analyzed on this computer says the typed age as the server would', {
  skip,
  timeout: 180_000,
}, async () => {
  const { page } = await suite.open();
  await page.check('#local-mode');
  await page.waitForFunction(() => /Model loaded/.test(document.querySelector('#status')?.textContent ?? ''), null, {
    timeout: 60_000,
  });
  await page.fill('#patient-age', '1.5');
  await page.setInputFiles('#file-input', [upload('local.jpeg', XRAY_JPEG)]);
  await finished(page, 1);
  assert.equal(await page.getAttribute(card, 'data-source'), 'local');
  assert.equal(await ageLine(page), 'Age 18 months, as typed on this page.');
  await page.context().close();
});
