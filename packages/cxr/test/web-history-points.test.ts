// History's operating point filter, in Chromium against a real server whose model's points are not the usual
// pair: the choices are the model's own (the page listed "screening" and "balanced" whatever the model, so a
// point of another name could not be filtered, and choosing "screening" on a model without it was refused 400).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { auditRecord } from './serve-fixtures';
import { noChromium, pageSuite } from './browser-fixture';

const skip = noChromium;

const suite = pageSuite('web-history-points', skip, {
  prepare: (modelDir) => {
    const metaFile = path.join(modelDir, 'cxr.json');
    const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
    meta.operatingPoints = {
      balanced: { threshold: 0.5, sensitivity: 0.95, specificity: 0.95, rule: 'youden' },
      'high-specificity': { threshold: 0.8, sensitivity: 0.9, specificity: 0.99, rule: 'specificity>=0.99' },
    };
    meta.defaultOperatingPoint = 'balanced';
    fs.writeFileSync(metaFile, JSON.stringify(meta));
  },
});

test("History's operating point filter offers the model's points, and filters by one the page did not know", {
  skip,
  timeout: 60_000,
}, async () => {
  const atBalanced = auditRecord(1, { createdAt: new Date().toISOString() });
  const atHigh = auditRecord(2, { createdAt: new Date().toISOString(), operatingPoint: 'high-specificity' });
  for (const r of [atBalanced, atHigh]) await suite.server.audit.insert(r, {});
  const { page, errors } = await suite.open({}, '/#/history');
  await page.waitForSelector(`#prediction-${atBalanced.id}`);
  const filter = '#history-filters select[name="operatingPoint"]';
  assert.deepEqual(await page.$$eval(`${filter} option`, (os) => os.map((o) => (o as HTMLOptionElement).value)), [
    '',
    'balanced',
    'high-specificity',
  ]);
  await page.selectOption(filter, 'high-specificity');
  await page.click('#history-filters button[type="submit"]');
  await page.waitForSelector(`#prediction-${atBalanced.id}`, { state: 'detached' });
  assert.deepEqual(await page.$$eval('#history-table tbody tr', (rows) => rows.map((r) => r.id)), [
    `prediction-${atHigh.id}`,
  ]);
  assert.deepEqual(errors, []);
  await page.context().close();
});
