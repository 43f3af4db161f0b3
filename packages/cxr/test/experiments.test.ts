// `cxr experiments seed --quick`: every seed figure 2-8 and cxr's recipe run on a small subset
// and end up as rows of the comparison, each with its confusion matrix.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initEngine } from '../src/engine';
import { SEED_EXPERIMENTS, runSeedExperiments } from '../src/experiments/seed';

import { CHEST_XRAY, needsData } from './shared-data';
process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');

test('experiments seed --quick writes one row and one confusion matrix per experiment', {
  skip: needsData(),
}, async () => {
  await initEngine();
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-exp-'));
  const { files, summaries } = await runSeedExperiments({ data: CHEST_XRAY, out, quick: true, log: () => {} });
  assert.equal(summaries.length, SEED_EXPERIMENTS.length);
  const md = fs.readFileSync(path.join(out, 'comparison.md'), 'utf8');
  for (const fig of [2, 3, 4, 5, 6, 7, 8]) assert.match(md, new RegExp(`Seed fig\\. ${fig}:`));
  for (const s of summaries) {
    assert.ok(fs.existsSync(path.join(s.runDir, 'cxr.json')), s.runDir);
    assert.ok(s.metrics.n > 0);
  }
  const pngs = files.filter((f) => /confusion-.*\.png$/.test(f));
  assert.equal(pngs.length, SEED_EXPERIMENTS.length);
  assert.ok(files.some((f) => f.endsWith('comparison.html')));
});
