// The clinician's page, in Chromium against a real server (review s36):
//  - the grey line under a result says the age the answer took and where from, not what the batch sent: a DICOM
//    whose header gives the age said "no age typed" beside "Age 3 years, from the DICOM header";
//  - an age outside the population (typed 0 or 11, a header's in months) says plainly why the film has no finding
//    and what to do; a header's age is said in its own unit ('052W' is 52 weeks, not "11 months" on an assessed
//    film); a header age that cannot be read is not called "none";
//  - a refusal for now (503 with Retry-After: the engine restarting, the audit log away) is waited out as the
//    server asks, the card saying when the film is sent again, with Cancel; a server that keeps refusing is said
//    with when to try again;
//  - the waiting card and the outside-population card pass axe at a phone's 390 px, and Cancel is reached by Tab.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import { type Element, imageElements, writeDicom } from './dicom-writer';
import { XRAY_JPEG } from './serve-fixtures';
import { axeProblems, finished, isPrediction, noChromium, pageSuite, upload } from './browser-fixture';

const skip = noChromium;
const suite = pageSuite('page-s36', skip, { rebuild: true });

/** The test film as a DICOM (8-bit, its own pixels), with these header elements: a chest CR the server reads. */
async function filmDicom(...extra: Element[]): Promise<Buffer> {
  const { data, info } = await sharp(XRAY_JPEG)
    .greyscale()
    .resize({ width: 256 })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const pixels = new Uint8Array(data.buffer, data.byteOffset, info.width * info.height);
  return writeDicom(imageElements({ rows: info.height, columns: info.width, bitsAllocated: 8, pixels, extra }));
}
const patientAge = (value: string): Element => ({ tag: 0x00101010, vr: 'AS', value });

const card = '.result:first-child';
const text = async (page: Page, sel: string) => ((await page.textContent(`${card} ${sel}`)) ?? '').trim();
const shown = (page: Page, sel: string) => page.isVisible(`${card} ${sel}`);

/** Analyzes `file` with `age` typed ('' for none); the n-th card of the tab. */
async function analyze(page: Page, file: ReturnType<typeof upload>, age: string, n: number): Promise<void> {
  await page.fill('#patient-age', age);
  await page.setInputFiles('#file-input', [file]);
  await finished(page, n);
}

test('the grey line says the age the answer took and where from, not what the batch sent', {
  skip,
  timeout: 180_000,
}, async () => {
  const { page, errors } = await suite.open();
  await page.uncheck('#local-mode');
  await analyze(page, upload('header-3y.dcm', await filmDicom(patientAge('003Y'))), '', 1);
  let meta = await text(page, '.meta');
  assert.ok(meta.includes('age used 3 years, from the DICOM header'), meta);
  assert.ok(!meta.includes('no age typed'), `the batch's "no age typed" beside the header's age: ${meta}`);

  await analyze(page, upload('typed.jpeg', XRAY_JPEG), '4', 2);
  meta = await text(page, '.meta');
  assert.ok(meta.includes('age used 4 years, as typed on this page'), meta);

  await analyze(page, upload('none.jpeg', XRAY_JPEG), '', 3);
  meta = await text(page, '.meta');
  assert.ok(meta.includes('age unknown (none typed)'), meta);
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('an age outside the population says why there is no finding and what to do; a header age in its own unit', {
  skip,
  timeout: 240_000,
}, async () => {
  const { page, errors } = await suite.open();
  await page.uncheck('#local-mode');
  const ageLine = () => text(page, '.age-used');
  const caution = () => page.$eval(`${card} .age-used`, (e) => e.classList.contains('caution'));

  // A newborn typed as 0: outside, under 1 year; typing another age is the fix for a typed one.
  await analyze(page, upload('newborn.jpeg', XRAY_JPEG), '0', 1);
  assert.equal(await page.getAttribute(card, 'data-verdict'), 'outside-population');
  let line = await ageLine();
  assert.ok(line.startsWith('Age 0 years, as typed on this page: under 1 year'), line);
  assert.ok(line.includes('Read this film without the model'), line);
  assert.ok(line.includes('If the age typed is wrong, correct it and analyze the film again.'), line);
  assert.equal(await caution(), true);

  await analyze(page, upload('eleven.jpeg', XRAY_JPEG), '11', 2);
  assert.equal(await page.getAttribute(card, 'data-verdict'), 'outside-population');
  line = await ageLine();
  assert.ok(line.startsWith('Age 11 years, as typed on this page: over 10 years'), line);
  assert.ok(line.includes('it answers for 1 to 10 years, and was trained on children aged 1–5'), line);
  assert.ok(line.includes('Read this film without the model'), line);

  // A header's 11 months: outside, and a typed age does not override it (said so).
  await analyze(page, upload('months.dcm', await filmDicom(patientAge('011M'))), '3', 3);
  assert.equal(await page.getAttribute(card, 'data-verdict'), 'outside-population');
  line = await ageLine();
  assert.ok(line.startsWith('Age 11 months, from the DICOM header: under 1 year'), line);
  assert.ok(line.includes('corrected in the PACS: an age typed here does not override'), line);

  // 052W reaches a first birthday: assessed, and said as the header says it, not as "11 months".
  await analyze(page, upload('weeks.dcm', await filmDicom(patientAge('052W'))), '', 4);
  assert.equal(await page.getAttribute(card, 'data-verdict'), 'assessed');
  assert.equal(await ageLine(), 'Age 52 weeks, from the DICOM header.');

  // A PatientAge that cannot be read: unknown, not "the header gives none", and the card's note says why.
  await analyze(page, upload('words.dcm', await filmDicom(patientAge('FORTY'))), '', 5);
  line = await ageLine();
  assert.ok(line.includes('the DICOM header gives none that can be read'), line);
  assert.ok((await text(page, '.warnings')).includes("the DICOM's PatientAge (0010,1010) is not in"), 'its note');
  assert.equal(await caution(), true);
  // The long lines at a phone's width: no sideways scrolling, and axe finds nothing serious.
  await page.setViewportSize({ width: 390, height: 800 });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no sideways scroll at 390 px');
  assert.deepEqual(await axeProblems(page), []);
  assert.deepEqual(errors, []);
  await page.context().close();
});

/** A problem answer as the server gives it for a refusal for now. */
const refusal = (code: string, detail: string, retryAfter: string) => ({
  status: 503,
  headers: { 'Retry-After': retryAfter },
  contentType: 'application/problem+json',
  body: JSON.stringify({ type: 'about:blank', title: 'Service Unavailable', status: 503, code, detail }),
});

/** The tab's predictions refused with `answer` the first `times` (Infinity: all); the times each was sent. */
async function refusing(page: Page, times: number, answer: ReturnType<typeof refusal>): Promise<number[]> {
  const sent: number[] = [];
  await page.route('**/api/v1/predictions?*', async (route) => {
    if (!isPrediction(new URL(route.request().url()), route.request().method())) return route.fallback();
    sent.push(Date.now());
    if (sent.length <= times) return route.fulfill(answer);
    return route.fallback();
  });
  return sent;
}

test('a 503 with Retry-After is waited out as asked, the card saying when the film is sent again', {
  skip,
  timeout: 120_000,
}, async () => {
  const { page, errors } = await suite.open();
  await page.uncheck('#local-mode');
  const sent = await refusing(
    page,
    1,
    refusal('ENGINE_RESTARTING', 'the prediction engine is restarting and not ready yet: nothing was predicted', '2'),
  );
  await page.fill('#patient-age', '3');
  await page.setInputFiles('#file-input', [upload('restart.jpeg', XRAY_JPEG)]);
  await page.waitForFunction(() =>
    /Sending it again in/.test(document.querySelector('.result .progress-text')?.textContent ?? ''),
  );
  const waiting = await text(page, '.progress-text');
  assert.ok(waiting.startsWith("The server's prediction engine is restarting: nothing was analyzed."), waiting);
  assert.ok(/Sending it again in [12] s \(at \d\d:\d\d:\d\d\), as the server asked\./.test(waiting), waiting);
  assert.equal(await text(page, '.label-badge'), 'Waiting for the server…');
  assert.equal(await shown(page, '.cancel'), true, 'the film may be cancelled while it waits');
  // At a phone's width, the waiting card passes axe.
  await page.setViewportSize({ width: 390, height: 800 });
  assert.deepEqual(await axeProblems(page), []);
  await finished(page, 1);
  assert.equal(await page.getAttribute(card, 'data-state'), 'done', await text(page, '.warnings'));
  assert.equal(sent.length, 2);
  assert.ok(sent[1] - sent[0] >= 1900, `sent again after ${sent[1] - sent[0]} ms, not the 2 s asked`);

  // A re-check at another point refused for now says when that point may be chosen again.
  await page.unroute('**/api/v1/predictions?*');
  await refusing(page, 1, refusal('ENGINE_RESTARTING', 'restarting', '5'));
  // A click, not check(): the refusal may come back, and the choice go back to balanced, before check() looks.
  await page.click(`${card} input[value="screening"]`);
  await page.waitForFunction((c) => document.querySelector<HTMLElement>(`${c} .card-note`)?.hidden === false, card);
  const note = await text(page, '.card-note');
  const asks = /The server asks to wait: choose screening again from \d\d:\d\d:\d\d\./;
  assert.ok(note.includes('restarting: nothing was analyzed.') && asks.test(note), note);
  assert.ok(note.endsWith('The answer shown is still the one at balanced.'), note);
  // The browser logs the refusal itself; nothing else.
  assert.deepEqual(
    errors.filter((e) => !/status of 503/.test(e)),
    [],
  );
  await page.context().close();
});

test('a server that keeps refusing is said with when to try again; Cancel ends a wait, by keyboard', {
  skip,
  timeout: 120_000,
}, async () => {
  const { page } = await suite.open();
  await page.uncheck('#local-mode');
  const sent = await refusing(
    page,
    Number.POSITIVE_INFINITY,
    refusal('AUDIT_UNAVAILABLE', 'the audit log is unavailable (details are in the server log)', '1'),
  );
  await page.setInputFiles('#file-input', [upload('audit.jpeg', XRAY_JPEG)]);
  await finished(page, 1);
  assert.equal(sent.length, 4, 'sent once, then again after each of three waits');
  const error = await text(page, '.warnings');
  assert.ok(error.startsWith('The server cannot write its audit log just now'), error);
  assert.ok(error.includes('It was sent 4 times, waiting as the server asked.'), error);
  assert.ok(/The server asks to wait: use "Try again" from \d\d:\d\d:\d\d\.$/.test(error), error);
  assert.equal(await shown(page, '.retry'), true);

  // A wait cancelled from the keyboard: nothing more is sent for it.
  await page.unroute('**/api/v1/predictions?*');
  const more = await refusing(page, Number.POSITIVE_INFINITY, refusal('ENGINE_RESTARTING', 'restarting', '30'));
  await page.setInputFiles('#file-input', [upload('cancel.jpeg', XRAY_JPEG)]);
  await page.waitForFunction(() =>
    /Sending it again in/.test(document.querySelector('.result .progress-text')?.textContent ?? ''),
  );
  // From the card (where "Try again" leaves focus) to its first control.
  await page.$eval(card, (e) => (e as HTMLElement).focus());
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.className), 'cancel');
  await page.keyboard.press('Enter');
  await page.waitForSelector(`${card}[data-state="cancelled"]`);
  const said = await text(page, '.warnings');
  assert.ok(
    said.startsWith('Cancelled while it waited for the server, which had refused it for now: not analyzed.'),
    said,
  );
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(more.length, 1, 'not sent again once cancelled');
  await page.context().close();
});
