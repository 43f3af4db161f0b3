// The Analyze page reads what the user set (patient age, operating point, "Process on this
// computer") once, when the files are taken, and every queued file goes with those values: a
// queued film must not pick up the next patient's age typed while it waits its turn. The races
// are made certain, not likely: the first request of a batch (a prediction, or the model the
// browser loads) is held by a Playwright route until the fields have been changed. The age field is the
// page's own reading (a decimal comma or dot), and what it cannot read is said there and on the cards.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { Page } from 'playwright-core';
import { XRAY_JPEG } from './serve-fixtures';
import { finished, Gate, isPrediction, noChromium, openPage, pageSuite, ready } from './browser-fixture';

const skip = noChromium;
const suite = pageSuite('web-batch', skip);

/** n copies of the same film, named apart. */
function films(n: number, prefix: string): { name: string; mimeType: string; buffer: Buffer }[] {
  const buffer = fs.readFileSync(XRAY_JPEG);
  return Array.from({ length: n }, (_, i) => ({ name: `${prefix}-${i + 1}.jpeg`, mimeType: 'image/jpeg', buffer }));
}

interface CardView {
  name: string;
  state: string;
  source: string;
  age: string | undefined;
  op: string | undefined;
  verdict: string | undefined;
  meta: string;
  error: string;
}

/** The newest `n` cards (one batch), in the order its files were given. */
async function batch(page: Page, n: number): Promise<CardView[]> {
  const all = await page.$$eval('.result', (els) =>
    els.map((e) => {
      const d = (e as HTMLElement).dataset;
      return {
        name: e.querySelector('.file-name')?.textContent ?? '',
        state: d.state ?? '',
        source: d.source ?? '',
        age: d.patientAge,
        op: d.operatingPoint,
        verdict: d.verdict,
        meta: e.querySelector('.meta')?.textContent ?? '',
        error: e.querySelector('.warnings li.error')?.textContent ?? '',
      };
    }),
  );
  return all.slice(0, n);
}

const ageOf = (u: URL) => u.searchParams.get('patientAge');
const opOf = (u: URL) => u.searchParams.get('operatingPoint');

test("on the server: a batch keeps the age and operating point it was taken with, not the next patient's", {
  skip,
  timeout: 180_000,
}, async () => {
  const gate = new Gate(isPrediction);
  const { page, errors } = await suite.open({ gate });
  try {
    await page.uncheck('#local-mode');

    // Age 30 and "balanced", four films; the fields are changed while the first is held.
    await page.fill('#patient-age', '30');
    await page.check('input[name="op-global"][value="balanced"]');
    gate.close();
    await page.setInputFiles('#file-input', films(4, 'adult'));
    await gate.seen(1);
    await page.fill('#patient-age', '');
    await page.check('input[name="op-global"][value="screening"]');
    gate.release();
    await finished(page, 4);
    assert.deepEqual(gate.requests.map(ageOf), ['30', '30', '30', '30'], 'every film is sent with age 30');
    assert.deepEqual(gate.requests.map(opOf), ['balanced', 'balanced', 'balanced', 'balanced']);
    for (const c of await batch(page, 4)) {
      assert.equal(c.state, 'done', JSON.stringify(c));
      assert.equal(c.verdict, 'outside-population', `${c.name}: an adult's film is not assessed`);
      assert.equal(c.age, '30');
      assert.equal(c.op, 'balanced');
      // The age the answer took: the batch's, as typed.
      assert.match(c.meta, /age used 30 years, as typed on this page/);
    }

    // The reverse: no age and "screening"; the next patient's age typed while the batch runs.
    gate.close();
    await page.setInputFiles('#file-input', films(3, 'child'));
    await gate.seen(5);
    await page.fill('#patient-age', '40');
    await page.check('input[name="op-global"][value="balanced"]');
    gate.release();
    await finished(page, 7);
    assert.deepEqual(gate.requests.slice(4).map(ageOf), [null, null, null], 'no age is sent for this batch');
    assert.deepEqual(gate.requests.slice(4).map(opOf), ['screening', 'screening', 'screening']);
    for (const c of await batch(page, 3)) {
      assert.equal(c.verdict, 'assessed', JSON.stringify(c));
      assert.equal(c.age, '');
      assert.equal(c.op, 'screening');
      assert.match(c.meta, /age unknown \(none typed\)/);
    }
    assert.deepEqual(errors, []);
  } finally {
    await page.context().close();
  }
});

test('an age that is invalid when the files are taken fails each of them, even if corrected while they wait', {
  skip,
  timeout: 180_000,
}, async () => {
  const gate = new Gate(isPrediction);
  const { page, errors } = await suite.open({ gate });
  try {
    await page.uncheck('#local-mode');
    // A first batch holds the queue, so the second one's turn comes after the age is corrected.
    await page.fill('#patient-age', '5');
    gate.close();
    await page.setInputFiles('#file-input', films(1, 'first'));
    await gate.seen(1);
    await page.fill('#patient-age', '200');
    await page.setInputFiles('#file-input', films(2, 'typo'));
    await page.fill('#patient-age', '5');
    gate.release();
    await finished(page, 3);
    assert.equal(gate.requests.length, 1, 'nothing is sent for the films taken with age 200');
    assert.equal(ageOf(gate.requests[0]), '5');
    for (const c of await batch(page, 2)) {
      assert.equal(c.state, 'error', JSON.stringify(c));
      assert.match(c.error, /Patient age must be a number of years from 0 to 130/);
    }
    assert.deepEqual(errors, []);
  } finally {
    await page.context().close();
  }
});

test('the age field takes a decimal comma, and refuses plainly what it cannot read: nothing is sent for it', {
  skip,
  timeout: 180_000,
}, async () => {
  const gate = new Gate(isPrediction);
  const { page, errors } = await suite.open({ gate });
  try {
    await page.uncheck('#local-mode');
    const typed = async (text: string) => {
      await page.fill('#patient-age', '');
      // Key by key, as a person types: a number field in an English browser turned "0,5" into "05".
      await page.locator('#patient-age').pressSequentially(text);
      await page.press('#patient-age', 'Tab');
    };
    // Half a year, with a comma: an infant's film, outside the intended population, not a 5-year-old's.
    await typed('0,5');
    await page.setInputFiles('#file-input', films(1, 'infant'));
    await finished(page, 1);
    assert.equal(ageOf(gate.requests[0]), '0.5');
    let [c] = await batch(page, 1);
    assert.equal(c.verdict, 'outside-population', JSON.stringify(c));
    assert.match(c.meta, /age used 6 months, as typed on this page/);
    await typed('1');
    await page.setInputFiles('#file-input', films(1, 'one'));
    await finished(page, 2);
    [c] = await batch(page, 1);
    assert.equal(ageOf(gate.requests[1]), '1');
    assert.match(c.meta, /age used 1 year, as typed on this page ·/, 'one year, not "1 years" nor "12 months"');

    // What the page cannot read as an age is said at the field and on the card, and nothing is sent.
    for (const [text, why] of [
      ['05', /"05" starts with a zero: type 5 for 5 years, or 0\.5 for half a year/],
      ['1e0', /"1e0" is not one/],
      ['131', /131 is out of that range/],
    ] as const) {
      await typed(text);
      assert.equal(await page.getAttribute('#patient-age', 'aria-invalid'), 'true', text);
      assert.match((await page.textContent('#patient-age-error')) ?? '', why);
      assert.equal(await page.isVisible('#patient-age-error'), true);
      const n = (await page.$$('.result')).length + 1;
      await page.setInputFiles('#file-input', films(1, `bad-${text}`));
      await finished(page, n);
      [c] = await batch(page, 1);
      assert.equal(c.state, 'error', JSON.stringify(c));
      assert.match(c.error, /^Patient age must be a number of years from 0 to 130/);
      assert.match(c.error, why);
    }
    assert.equal(gate.requests.length, 2, 'nothing sent for an age the page cannot read');
    // Corrected: the error goes as the field is typed in.
    await page.fill('#patient-age', '');
    await page.locator('#patient-age').pressSequentially('4');
    assert.equal(await page.isVisible('#patient-age-error'), false);
    assert.equal(await page.getAttribute('#patient-age', 'aria-invalid'), null);
    assert.deepEqual(errors, []);
  } finally {
    await page.context().close();
  }
});

test('in the browser: a batch keeps its age, operating point and "Process on this computer"', {
  skip,
  timeout: 180_000,
}, async () => {
  const { page, errors } = await openPage(suite.browser);
  // The model's files are held: the batch waits for them while the fields are changed.
  const modelGate = new Gate((url) => url.pathname.endsWith('/model.json'));
  const predictions = new Gate(isPrediction);
  await modelGate.install(page);
  await predictions.install(page);
  try {
    await ready(page, suite.server.url);
    await page.fill('#patient-age', '30');
    await page.check('input[name="op-global"][value="balanced"]');
    modelGate.close();
    await page.check('#local-mode');
    await modelGate.seen(1);
    await page.setInputFiles('#file-input', films(3, 'local'));
    await page.fill('#patient-age', '');
    await page.check('input[name="op-global"][value="screening"]');
    // Turned off while the batch waits: films chosen to stay on this computer must not be sent.
    await page.uncheck('#local-mode');
    modelGate.release();
    await finished(page, 3);
    assert.equal(predictions.requests.length, 0, 'no film of the batch is sent to the server');
    for (const c of await batch(page, 3)) {
      assert.equal(c.state, 'done', JSON.stringify(c));
      assert.equal(c.source, 'local');
      assert.equal(c.verdict, 'outside-population', `${c.name}: an adult's film is not assessed`);
      assert.equal(c.age, '30');
      assert.equal(c.op, 'balanced');
      assert.match(c.meta, /age used 30 years, as typed on this page/);
    }
    assert.deepEqual(errors, []);
  } finally {
    await page.context().close();
  }
});
