// Shift-aware calibration: temperature and thresholds from the validation films pooled with mildly
// changed copies; the reported figures stay those of the clean films.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as os from 'node:os';
import * as path from 'node:path';
import { confusionAt, fitTemperature } from '../src/eval';
import { limitPerClass, loadImageSet, splitRecords } from '../src/data/dataset_images';
import { loadModel } from '../src/models/io';
import { predictAllLogits } from '../src/models/infer';
import { perturbAt } from '../src/data/perturb_catalog';
import { calibrateOnValidation, calibrateUnderShift, SHIFT_CHANGES, SHIFT_STRENGTH } from '../src/train/calibrate';
import { makeTinyModel, tempDir } from './serve-fixtures';
import { CHEST_XRAY, needsData } from './shared-data';

const data = CHEST_XRAY;
const skip = needsData(data);
process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');

test('calibrateUnderShift pools one mildly changed view per change and reports clean figures', { skip }, async () => {
  const dir = await makeTinyModel(tempDir('calshift'));
  const loaded = await loadModel(dir);
  const records = limitPerClass(await splitRecords(data, 'train'), 8);
  const raw = await loadImageSet(records, 'validation', { size: 32 });
  const changes = ['blur', 'gamma-up', 'exposure-down'];
  const c = await calibrateUnderShift(loaded.members, raw, { tta: [], changes });
  assert.equal(c.record.method, 'validation+shifts');
  assert.deepEqual(c.record.changes, changes);
  assert.equal(c.record.views, changes.length + 1);
  assert.equal(c.record.films, records.length);
  assert.equal(c.probs.length, records.length, 'reported probabilities are the clean films only');
  for (const p of [c.operatingPoints.screening, c.operatingPoints.balanced]) {
    const k = confusionAt(c.labels, c.probs, p.threshold);
    assert.equal(p.sensitivity, k.tp / (k.tp + k.fn));
    assert.equal(p.specificity, k.tn / (k.tn + k.fp));
  }
  // The temperature is the one fitted on the pooled views (an independent pooling here).
  const logits = Array.from(await predictAllLogits(loaded.members, raw.pixels, records.length, 32));
  const labels = Array.from(raw.labels);
  const pooledLabels = [...labels];
  for (const name of changes) {
    const px = new Uint8Array(raw.pixels.length);
    for (let i = 0; i < records.length; i++) {
      const img = { pixels: raw.pixels.subarray(i * 1024, (i + 1) * 1024), size: 32 };
      px.set((await perturbAt(name, img, SHIFT_STRENGTH, 1, raw.files[i])).pixels, i * 1024);
    }
    logits.push(...(await predictAllLogits(loaded.members, px, records.length, 32)));
    pooledLabels.push(...labels);
  }
  assert.equal(c.temperature, fitTemperature(logits, pooledLabels));
  const clean = await calibrateOnValidation(loaded.members, raw, []);
  assert.deepEqual(clean.probs.length, c.probs.length);
  loaded.members.forEach((m) => m.dispose());
  assert.ok(SHIFT_CHANGES.every((name) => typeof name === 'string') && SHIFT_CHANGES.length >= 10);
});
