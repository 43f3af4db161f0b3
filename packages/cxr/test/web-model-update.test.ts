// The server's model is updated (the server restarted with another model folder) while a page stays open
// with a card on it. Switching the card's operating point asks the server again, and the new model answers:
// the card draws that answer with the threshold the server used, says plainly that another model than the
// page's gave it, shows none of the old model's validation figures for it, and does not lay the old model's
// heat map over it. In Chromium, against real servers, one after the other on the same address.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTinyModel, XRAY_JPEG } from './serve-fixtures';
import { finished, noChromium, openPage, pageSuite, ready, recordAnnouncements, upload } from './browser-fixture';

const skip = noChromium;
/** The page's model is `suite.modelDir` (in `a`); the update is `modelB`. Each server is started by the test. */
const suite = pageSuite('web-model-update', skip, {
  model: (dir) => makeTinyModel(path.join(dir, 'a'), { inputSize: 64 }),
  server: false,
  started: makeUpdate,
});
let modelB: string;

/** The update: other weights, another name and version, other thresholds and figures. */
async function makeUpdate(): Promise<void> {
  modelB = await makeTinyModel(path.join(suite.dir, 'b'), { inputSize: 64 });
  const metaFile = path.join(modelB, 'cxr.json');
  const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
  Object.assign(meta, {
    name: 'tiny-test-b',
    version: '0.0.2',
    operatingPoints: {
      screening: { threshold: 0.123, sensitivity: 0.6, specificity: 0.4 },
      balanced: { threshold: 0.456, sensitivity: 0.5, specificity: 0.5 },
    },
  });
  fs.writeFileSync(metaFile, JSON.stringify(meta));
}

test("a card answered again by an updated model draws that model's answer, says so, and drops the old heat map", {
  skip,
  timeout: 180_000,
}, async () => {
  const first = await suite.serve('a', suite.modelDir);
  const { page, errors } = await openPage(suite.browser);
  await ready(page, first.url);
  const said = await recordAnnouncements(page);
  const card = '.result:first-child';
  await page.setInputFiles('#file-input', [upload('film.jpeg', XRAY_JPEG)]);
  await finished(page, 1);
  await page.waitForFunction(
    (sel) => (document.querySelector<HTMLImageElement>(`${sel} img.heatmap`)?.naturalWidth ?? 0) > 0,
    card,
  );
  const threshold = () => page.textContent(`${card} .threshold`);
  // More decimals only where the film's probability reads as the threshold at one (dom.ts percentPair).
  const balancedLine =
    /^Threshold 50\.0+\u00a0% \(balanced, sensitivity 85\.0\u00a0%, specificity 85\.0\u00a0% on validation\)$/;
  assert.match((await threshold()) ?? '', balancedLine);

  // The server is restarted with the update, at the same address; the page keeps the model info it loaded.
  await first.close();
  const second = await suite.serve('b', modelB, false, { port: Number(new URL(first.url).port) });
  await page.check(`${card} input[value="screening"]`);
  await page.waitForSelector(`${card}[data-state="done"][data-operating-point="screening"]`, { timeout: 60_000 });
  const id = (await page.getAttribute(card, 'data-prediction-id')) ?? '';
  const logged = await second.audit.get(id);
  assert.equal(logged?.threshold, 0.123, 'the update answered');
  assert.equal(await page.getAttribute(card, 'data-label'), logged?.label);

  // Its threshold, not the old model's 30 %; no validation figures, which would be the old model's.
  assert.match((await threshold()) ?? '', /^Threshold 12\.30*\u00a0% \(screening of model tiny-test-b 0\.0\.2\)$/);
  assert.equal(await page.$eval(`${card} .meter-threshold`, (m) => (m as HTMLElement).style.left), '12.3%');
  assert.match(
    (await page.textContent(`${card} .model-note`)) ?? '',
    /^Answered by model tiny-test-b 0\.0\.2, not the one this page loaded \(tiny-test 0\.0\.1\).*Reload the page/,
  );
  assert.equal(await page.isVisible(`${card} .model-note`), true);
  const close = '(: close to the threshold, a weak finding)?';
  assert.match(
    (await said()).at(-1) ?? '',
    new RegExp(`threshold 12\\.30*\u00a0% \\(screening\\)${close}\\. Answered by model tiny-test-b`),
  );
  // The heat map was made by the old model: not laid over the new one's answer.
  assert.equal(await page.isVisible(`${card} img.heatmap`), false);
  assert.match((await page.textContent(`${card} .heatmap-note`)) ?? '', /^Heat map hidden: .*model tiny-test 0\.0\.1/);
  assert.equal(await page.getAttribute(`${card} figure`, 'aria-label'), 'film.jpeg: image');

  // Back to the first answer: the page's own model, its figures and its heat map.
  await page.check(`${card} input[value="balanced"]`);
  assert.match((await threshold()) ?? '', balancedLine);
  assert.equal(await page.isVisible(`${card} .model-note`), false);
  assert.equal(await page.isVisible(`${card} img.heatmap`), true);
  assert.equal(await page.isVisible(`${card} .heatmap-note`), false);
  assert.equal(await page.getAttribute(`${card} figure`, 'aria-label'), 'film.jpeg: image with heat map');
  assert.deepEqual(errors, []);
  await page.context().close();
});
