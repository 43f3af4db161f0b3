// The clinician's page, in Chromium against a real server (review s37, second round):
//  - an age in months or with its unit ("18 months", "18 mo", "2y", "2 years") was refused with a message, though a
//    child's age is often said in months: it is taken, sent in years, and the grey line says it in the words typed
//    and in years; anything else is still refused;
//  - History at 1280 px scrolled sideways (Heat map and Model partly out of sight), and its scroll area could not be
//    reached by keyboard, unlike the Model view's tables;
//  - a DICOM film's card showed the server's 160 px thumbnail stretched to the card's 420 px (soft, and blurry when
//    enlarged): the server makes a DICOM's thumbnail at the heat map's 512 px.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { finished, Gate, isPrediction, noChromium, pageSuite, upload } from './browser-fixture';
import { DICOM_FILE, XRAY_JPEG_NORMAL } from './serve-fixtures';

const skip = noChromium;
const suite = pageSuite('page2-s37', skip, { rebuild: true });

/** Types `text` into the age field key by key, as a person does, and leaves it. */
async function typeAge(page: Page, text: string): Promise<void> {
  await page.fill('#patient-age', '');
  await page.locator('#patient-age').pressSequentially(text);
  await page.press('#patient-age', 'Tab');
}

test('an age typed in months or with its unit is taken, sent in years and said as typed and in years', {
  skip,
  timeout: 240_000,
}, async () => {
  const gate = new Gate(isPrediction);
  const { page, errors } = await suite.open({ gate, viewport: { width: 1280, height: 900 } });
  await page.uncheck('#local-mode');
  const cases = [
    ['18 months', '1.5', 'age used 18 months (1.5 years), as typed on this page', 'Age 18 months, as typed'],
    ['18 mo', '1.5', 'age used 18 months (1.5 years), as typed on this page', 'Age 18 months, as typed'],
    // Sent as 1.083333 years: it came back as 12.999996 months, which the card would have called "12 months".
    ['13 Months', '1.083333', 'age used 13 months (1.08 years), as typed on this page', 'Age 13 months, as typed'],
    ['2y', '2', 'age used 2 years, as typed on this page', 'Age 2 years, as typed'],
    ['2 years', '2', 'age used 2 years, as typed on this page', 'Age 2 years, as typed'],
    ['3', '3', 'age used 3 years, as typed on this page', 'Age 3 years, as typed'],
  ] as const;
  for (const [n, [typed, sent, meta, line]] of cases.entries()) {
    await typeAge(page, typed);
    assert.equal(await page.getAttribute('#patient-age', 'aria-invalid'), null, `"${typed}" refused`);
    assert.equal(await page.isVisible('#patient-age-error'), false, typed);
    // The field is wide enough to show what was typed.
    const cut = await page.$eval('#patient-age', (e) => e.scrollWidth > e.clientWidth);
    assert.equal(cut, false, `"${typed}" does not fit its field`);
    await page.setInputFiles('#file-input', [upload(`film-${n}.jpeg`, XRAY_JPEG_NORMAL)]);
    await finished(page, n + 1);
    assert.equal(gate.requests[n].searchParams.get('patientAge'), sent, typed);
    const said = (await page.textContent('.result:first-child .meta')) ?? '';
    assert.ok(said.includes(meta), `"${typed}": ${said}`);
    const age = (await page.textContent('.result:first-child .age-used')) ?? '';
    assert.ok(age.startsWith(line), `"${typed}": ${age}`);
  }
  // Anything else is still refused, said at the field, and nothing is sent; the limits hold in months too.
  for (const [typed, why] of [
    ['18 m', '"18 m" is not one'],
    ['18 weeks', '"18 weeks" is not one'],
    ['2 y 6 mo', '"2 y 6 mo" is not one'],
    ['1561 months', '1561 months (130.1 years) is out of that range'],
    ['131 years', '131 years is out of that range'],
    ['05 months', 'starts with a zero: type 5 months'],
  ] as const) {
    await typeAge(page, typed);
    assert.equal(await page.getAttribute('#patient-age', 'aria-invalid'), 'true', `"${typed}" taken`);
    const error = (await page.textContent('#patient-age-error')) ?? '';
    assert.ok(error.startsWith('Patient age must be a number of years from 0 to 130'), error);
    assert.ok(error.includes('18 months'), `the rule does not say months are taken: ${error}`);
    assert.ok(error.includes(why), `"${typed}": ${error}`);
  }
  assert.equal(gate.requests.length, cases.length, 'nothing sent for an age the page cannot read');

  // On this computer: the same words.
  await typeAge(page, '18 months');
  await page.check('#local-mode');
  await page.waitForFunction(() => /Model loaded/.test(document.querySelector('#status')?.textContent ?? ''), null, {
    timeout: 90_000,
  });
  await page.setInputFiles('#file-input', [upload('local.jpeg', XRAY_JPEG_NORMAL)]);
  await finished(page, cases.length + 1);
  const local = (await page.textContent('.result:first-child .meta')) ?? '';
  assert.ok(local.includes('age used 18 months (1.5 years), as typed on this page'), local);
  assert.deepEqual(errors, []);
  await page.context().close();
});

test("a DICOM's card shows a thumbnail at least as large as the card shows it, and History fits 1280 px", {
  skip,
  timeout: 180_000,
}, async () => {
  const { page, errors } = await suite.open({ viewport: { width: 1280, height: 900 } });
  await page.uncheck('#local-mode');
  await page.fill('#patient-age', '3');
  await page.setInputFiles('#file-input', [upload('film.dcm', DICOM_FILE), upload('film.jpeg', XRAY_JPEG_NORMAL)]);
  await finished(page, 2);
  await page.waitForFunction(() => (document.querySelector('.result img.original') as HTMLImageElement)?.complete);
  const film = await page.$eval('.result:first-child img.original', (e) => {
    const img = e as HTMLImageElement;
    return { natural: img.naturalWidth, naturalHeight: img.naturalHeight, shown: img.getBoundingClientRect().width };
  });
  assert.ok(film.shown >= 400, `the card shows the film at ${film.shown} px`);
  assert.ok(film.natural >= film.shown, `a ${film.natural} px thumbnail stretched to ${film.shown} px`);
  assert.ok(Math.max(film.natural, film.naturalHeight) <= 512, `an unbounded thumbnail: ${JSON.stringify(film)}`);

  await page.goto(`${suite.server.url}#/history`);
  await page.waitForSelector('#history-table tbody tr td img[src^="blob:"]');
  const wrap = await page.$eval('#view-history .table-wrap', (e) => ({
    scrolls: e.scrollWidth - e.clientWidth,
    tabIndex: (e as HTMLElement).tabIndex,
    role: e.getAttribute('role'),
    name: document.getElementById(e.getAttribute('aria-labelledby') ?? '')?.textContent ?? e.getAttribute('aria-label'),
  }));
  assert.ok(wrap.scrolls <= 0, `History scrolls sideways by ${wrap.scrolls} px at 1280 px`);
  // Reached by Tab, and named, as the Model view's tables: on a narrower window it still scrolls.
  assert.equal(wrap.tabIndex, 0, 'the scroll area is not reached by Tab');
  assert.equal(wrap.role, 'region');
  assert.ok(wrap.name && wrap.name.trim().length > 0, 'the scroll area has no name');
  // Every column in sight, the last (Model) included.
  const right = await page.$eval('#history-table thead th:last-child', (e) => e.getBoundingClientRect().right);
  assert.ok(right <= 1280, `the Model column ends at ${right} px`);
  assert.deepEqual(errors, []);
  await page.context().close();
});
