// What the page's answers say, in Chromium against a real server, with a model whose two operating
// points lie either side of the test film's probability and share their specificity (as the shipped
// model's do: sensitivity 99.1 % and 98.8 %, specificity 97.0 % for both):
//  - switching a server card's operating point sends the film again at that point, with the batch's age:
//    the card shows the new answer under its new id, and the audit log holds it; in the browser the
//    card re-thresholds (nothing is logged there);
//  - the operating point hints are the model's measures, and claim a difference only where there is one;
//  - History shows an answer outside the intended population as the card does, not as a red finding;
//  - the Model view gives validation measures in percent, numbers under right-aligned headings;
//  - a dark colour scheme without contrast problems, and a threshold mark that stands out (3:1).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { auditRecord, loadPredictor, XRAY_JPEG } from './serve-fixtures';
import { axeProblems, finished, Gate, isPrediction, noChromium, pageSuite, upload } from './browser-fixture';

const skip = noChromium;

/** The served probability of XRAY_JPEG: screening's threshold is below it, balanced's above. */
let probability: number;

const suite = pageSuite('web-answers', skip, { prepare: setOperatingPoints });

/** Operating points either side of the test film's probability, with the shipped model's measures. */
async function setOperatingPoints(modelDir: string): Promise<void> {
  const predictor = await loadPredictor(modelDir);
  probability = (await predictor.predict(fs.readFileSync(XRAY_JPEG))).probability;
  (predictor as unknown as { dispose(): void }).dispose();
  const metaFile = path.join(modelDir, 'cxr.json');
  const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
  meta.operatingPoints = {
    screening: { threshold: probability / 2, sensitivity: 0.99139, specificity: 0.97015, rule: 'sensitivity>=0.99' },
    balanced: {
      threshold: (probability + 1) / 2,
      sensitivity: 0.98795,
      specificity: 0.97015,
      rule: 'youden-plateau-middle',
    },
  };
  meta.validation = { n: 782, sensitivity: 0.98795, auc: 0.998, ci95: { sensitivity: [0.97534, 0.99415] } };
  fs.writeFileSync(metaFile, JSON.stringify(meta));
}

const card = '.result:first-child';
const said = async (page: Page) => (await page.$$eval('#announcer > *', (ps) => ps.map((p) => p.textContent))).at(-1);

async function answer(page: Page): Promise<{ id: string; label: string; op: string; badge: string; meta: string }> {
  return page.$eval(card, (c) => ({
    id: (c as HTMLElement).dataset.predictionId ?? '',
    label: (c as HTMLElement).dataset.label ?? '',
    op: (c as HTMLElement).dataset.operatingPoint ?? '',
    badge: c.querySelector('.label-badge')?.textContent ?? '',
    meta: c.querySelector('.meta')?.textContent ?? '',
  }));
}

test("a server card's operating point switch asks the server again: the answer shown is the one logged", {
  skip,
  timeout: 180_000,
}, async () => {
  const gate = new Gate(isPrediction);
  const { page, errors } = await suite.open({ gate });
  await page.fill('#patient-age', '3');
  await page.setInputFiles('#file-input', [upload('film.jpeg', XRAY_JPEG)]);
  await finished(page, 1);
  const first = await answer(page);
  assert.deepEqual([first.label, first.op], ['NORMAL', 'balanced']);
  assert.equal((await suite.server.audit.get(first.id))?.label, 'NORMAL');

  // The next patient's age is typed meanwhile: the re-check goes with this film's.
  await page.fill('#patient-age', '40');
  gate.close();
  await page.check(`${card} input[value="screening"]`);
  await page.waitForSelector(`${card}[data-state="rechecking"]`);
  assert.equal(await page.textContent(`${card} .label-badge`), 'Re-checking at screening…');
  // Not the old point's threshold next to "Re-checking at screening…": it is not the one being asked.
  assert.equal(await page.isVisible(`${card} .threshold`), false, 'the old threshold line shown while re-checking');
  assert.equal(await page.isVisible(`${card} .meter-threshold`), false);
  gate.release();
  await page.waitForSelector(`${card}[data-state="done"]`, { timeout: 60_000 });
  const second = await answer(page);
  const sent = gate.requests[1].searchParams;
  assert.deepEqual([sent.get('operatingPoint'), sent.get('patientAge')], ['screening', '3']);
  assert.notEqual(second.id, first.id, 'a new answer, with its own id');
  assert.deepEqual([second.label, second.op], ['PNEUMONIA', 'screening']);
  // The finding as the number against its threshold (finding.ts cardHeadline): screening's is below the film's.
  assert.match(second.badge, /^Above the pneumonia threshold \(p\u00a0≥\u00a0[\d.]+\u00a0%\)$/);
  assert.match(second.meta, new RegExp(`id ${second.id}`));
  const logged = await suite.server.audit.get(second.id);
  assert.deepEqual([logged?.label, logged?.operatingPoint], ['PNEUMONIA', 'screening']);
  assert.match(
    (await said(page)) ?? '',
    /^Re-checked at screening: film\.jpeg: Above the pneumonia threshold: .* of pneumonia, .*\(screening\)\.$/,
  );

  // Back and forth: each answer already logged is shown again, under its id, without asking again.
  await page.check(`${card} input[value="balanced"]`);
  assert.deepEqual(await answer(page), first);
  await page.check(`${card} input[value="screening"]`);
  assert.equal((await answer(page)).id, second.id);
  assert.equal(gate.requests.length, 2);

  // Switched quickly while a re-check is on its way: it is waited for, not sent twice (one answer shown, one
  // audit row), and its progress does not come back over the answer shown meanwhile. A child's film: an adult's
  // (the 40 typed above) is outside the intended population, whose card offers no switch.
  await page.fill('#patient-age', '3');
  await page.setInputFiles('#file-input', [upload('race.jpeg', XRAY_JPEG)]);
  await finished(page, 2);
  const raceFirst = await answer(page);
  const asked = gate.requests.length;
  gate.close();
  await page.check(`${card} input[value="screening"]`);
  await gate.seen(asked + 1);
  await page.check(`${card} input[value="balanced"]`);
  assert.deepEqual(await answer(page), raceFirst);
  await page.check(`${card} input[value="screening"]`);
  await page.waitForSelector(`${card}[data-state="rechecking"]`);
  gate.release();
  await page.waitForSelector(`${card}[data-state="done"]`, { timeout: 60_000 });
  assert.equal(gate.requests.length, asked + 1, 'the re-check on its way was sent again');
  assert.equal((await answer(page)).op, 'screening');
  assert.equal(await page.isHidden(`${card} .progress`), true, 'a progress line left over the answer');

  // A re-check that fails leaves the logged answer shown, and says so.
  await page.fill('#patient-age', '');
  await page.setInputFiles('#file-input', [upload('other.jpeg', XRAY_JPEG)]);
  await finished(page, 3);
  const other = await answer(page);
  await page.route('**/api/v1/predictions?*', (r) => r.abort('connectionrefused'));
  // A click, not check(): the switch goes back to balanced when the re-check fails.
  await page.click(`${card} input[value="screening"]`);
  await page.waitForSelector(`${card} .card-note:not([hidden])`);
  assert.match((await page.textContent(`${card} .card-note`)) ?? '', /^Could not re-check at screening: Cannot reach/);
  assert.deepEqual(await answer(page), other);
  assert.equal(await page.isChecked(`${card} input[value="balanced"]`), true);
  await page.unroute('**/api/v1/predictions?*');

  // In the browser nothing is logged: the card re-thresholds what it has, and sends nothing.
  await page.check('#local-mode');
  await page.waitForFunction(() => /Model loaded/.test(document.querySelector('#status')?.textContent ?? ''), null, {
    timeout: 60_000,
  });
  const before = gate.requests.length;
  await page.setInputFiles('#file-input', [upload('local.jpeg', XRAY_JPEG)]);
  await finished(page, 4);
  assert.equal((await answer(page)).label, 'NORMAL');
  await page.check(`${card} input[value="screening"]`);
  assert.deepEqual([(await answer(page)).label, (await answer(page)).op], ['PNEUMONIA', 'screening']);
  assert.equal(gate.requests.length, before, 'nothing sent');
  // An age in the margin over 5 carries the server's note in the browser too.
  await page.fill('#patient-age', '7');
  await page.setInputFiles('#file-input', [upload('local7.jpeg', XRAY_JPEG)]);
  await finished(page, 5);
  assert.match((await page.textContent(`${card} .warnings`)) ?? '', /older than the children the model was trained on/);
  assert.equal(gate.requests.length, before, 'nothing sent');
  assert.deepEqual(
    errors.filter((e) => !/ERR_CONNECTION_REFUSED|Failed to load resource/.test(e)),
    [],
  );
  await page.context().close();
});

test("the operating point hints are the model's own measures, say where two tie on validation, and why the default", {
  skip,
  timeout: 60_000,
}, async () => {
  const { page } = await suite.open();
  const labels = await page.$$eval('#op-global label', (ls) => ls.map((l) => l.textContent?.trim() ?? ''));
  // Screening is as specific as balanced on validation, and more sensitive: the hints say what that tie does not
  // carry to other films, and why balanced is the default.
  assert.deepEqual(labels.sort(), [
    'balanced (sensitivity 98.8\u00a0%, specificity 97.0\u00a0% on validation; the default: mid-way among equally ' +
      'good thresholds, so shifted scores change fewest calls)',
    'screening (sensitivity 99.1\u00a0%, specificity 97.0\u00a0% on validation; as specific as balanced, but its ' +
      "lower threshold may raise more false alarms on other sites' films)",
  ]);
  // Short enough to read beside the choice: about 20 words each (each "%" counted as a word here).
  for (const l of labels) assert.ok(l.split(/\s+/).length <= 26, `${l.split(/\s+/).length} words: ${l}`);
  await page.context().close();
});

test('History shows an answer outside the intended population as the card does, never as a red finding', {
  skip,
  timeout: 60_000,
}, async () => {
  const outside = auditRecord(41, {
    createdAt: new Date().toISOString(),
    probability: 0.974,
    label: 'PNEUMONIA',
    verdict: {
      status: 'outside-population',
      reasons: [{ code: 'AGE', message: 'outside the intended population (children aged 1–5)' }],
    },
  });
  await suite.server.audit.insert(outside, {});
  const { page } = await suite.open({}, '/#/history');
  const row = `#prediction-${outside.id}`;
  await page.waitForSelector(row);
  assert.deepEqual(await page.$eval(`${row} .finding .tag`, (t) => [t.className, t.textContent]), [
    'tag outside-population',
    'Outside the intended population',
  ]);
  assert.equal(await page.textContent(`${row} td.num`), '97.4\u00a0% (for reference only)');
  // The Analyze card's words for the same answer.
  await page.goto(`${suite.server.url}/#/analyze`);
  await page.fill('#patient-age', '40');
  await page.setInputFiles('#file-input', [upload('adult.jpeg', XRAY_JPEG)]);
  await finished(page, 1);
  assert.deepEqual(await page.$eval(`${card} .label-badge`, (b) => [b.className, b.textContent]), [
    'label-badge outside-population',
    'Outside the intended population (children aged 1–5)',
  ]);
  await page.context().close();
});

test('the Model view gives measures in percent with their intervals, numbers under right-aligned headings', {
  skip,
  timeout: 60_000,
}, async () => {
  const { page } = await suite.open({}, '/#/model');
  await page.waitForSelector('#model-validation tbody th');
  const rows = await page.$$eval('#model-validation tbody tr', (trs) =>
    trs.map((tr) => [tr.querySelector('th')?.textContent, tr.querySelector('td')?.textContent]),
  );
  assert.deepEqual(rows, [
    ['films', '782'],
    ['sensitivity', '98.8\u00a0% (95\u00a0% CI 97.5\u00a0% to 99.4\u00a0%)'],
    ['AUC (ROC)', '0.9980'],
  ]);
  const aligns = await page.$$eval('#model-ops thead th, #model-validation thead th', (ths) =>
    ths.map((th) => getComputedStyle(th).textAlign),
  );
  assert.deepEqual(aligns, ['left', 'right', 'right', 'right', 'left', 'right']);
  await page.context().close();
});

/** WCAG contrast of two computed colours (rgb()/rgba() strings). */
function contrast(a: string, b: string): number {
  const lum = (c: string) => {
    const [r, g, bl] = (c.match(/[\d.]+/g) ?? []).slice(0, 3).map((v) => {
      const s = Number(v) / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

test('a dark colour scheme with AA contrast, and a threshold mark at 3:1 or more in either scheme', {
  skip,
  timeout: 120_000,
}, async () => {
  for (const colorScheme of ['light', 'dark'] as const) {
    const { page, errors } = await suite.open({ colorScheme });
    await page.setInputFiles('#file-input', [upload('film.jpeg', XRAY_JPEG)]);
    await finished(page, 1);
    const colours = await page.evaluate(() => {
      const mark = getComputedStyle(document.querySelector('.result .meter-threshold')!);
      return {
        root: getComputedStyle(document.documentElement).backgroundColor,
        mark: mark.backgroundColor,
        edge: /rgba?\([^)]*\)/.exec(mark.boxShadow)?.[0] ?? 'none',
        fill: getComputedStyle(document.querySelector('.result .meter-fill')!).backgroundColor,
      };
    });
    const dark = contrast(colours.root, 'rgb(0, 0, 0)') < 2;
    assert.equal(dark, colorScheme === 'dark', `${colorScheme}: page background ${colours.root}`);
    // The mark's ink against its edge, and the edge against the fill it crosses.
    assert.ok(contrast(colours.mark, colours.edge) >= 3, `${colorScheme}: ${JSON.stringify(colours)}`);
    assert.ok(contrast(colours.edge, colours.fill) >= 3, `${colorScheme}: ${JSON.stringify(colours)}`);
    assert.deepEqual(await axeProblems(page), [], `${colorScheme}: Analyze view with a result`);
    for (const view of ['history', 'model']) {
      await page.goto(`${suite.server.url}/#/${view}`);
      await page.waitForSelector(view === 'history' ? '#history-table tbody td' : '#model-facts dd');
      assert.deepEqual(await axeProblems(page), [], `${colorScheme}: ${view}`);
    }
    assert.deepEqual(errors, []);
    await page.context().close();
  }
});
