// Per-image normalisation is part of the model: a recipe with `normalize: 'equalize'` or 'fov' records it in
// cxr.json, and every path that feeds the network (training-time loading, evaluation, the server's
// Predictor) applies it, so they compute the same number. `splitSeed` fixes the patient split apart
// from the training seed (what ensemble members need).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initEngine } from '../src/engine';
import { splitRecords, loadImageSet } from '../src/data/dataset_images';
import { loadModel } from '../src/models/io';
import { predictAllLogits } from '../src/models/infer';
import { Predictor } from '../src/predict/predictor';
import type { NormalizeMode } from '../src/data/preprocess';
import { runTraining } from '../src/train/run';

import { CHEST_XRAY, needsData } from './shared-data';
const data = CHEST_XRAY;
process.env.CXR_CACHE ??= path.join(os.tmpdir(), 'cxr-test-cache');

for (const [recipeName, mode] of [
  ['cxr-equalize', 'equalize'],
  ['cxr-shift-fov', 'fov'],
] as const) {
  test(
    `a ${mode} recipe is recorded, and the Predictor and the loaders feed the network the same input`,
    {
      skip: needsData(),
    },
    () => checkNormalisedRecipe(recipeName, mode),
  );
}

async function checkNormalisedRecipe(recipeName: string, mode: NormalizeMode): Promise<void> {
  await initEngine();
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-norm-'));
  const r = await runTraining({
    data,
    out,
    recipeName,
    report: false,
    progress: false,
    log: () => {},
    overrides: {
      inputSize: 48,
      epochs: 1,
      limitPerClass: 40,
      valFraction: 0.3,
      batchSize: 16,
      augment: 'none',
      tta: [],
      seed: 5,
      splitSeed: 42,
    },
  });
  assert.equal(r.meta.preprocessing.normalize, mode);
  assert.equal(r.meta.recipe.normalize, mode);
  assert.equal(r.meta.data.splitSeed, 42, 'the split follows splitSeed, not the training seed');

  const records = (await splitRecords(data, 'train')).slice(0, 3);
  const set = await loadImageSet(records, 'train', { size: 48, normalize: mode });
  const loaded = await loadModel(out);
  const viaLoader = await predictAllLogits(loaded.members, set.pixels, records.length, 48);
  const raw = await loadImageSet(records, 'train', { size: 48 });
  const unnormalised = await predictAllLogits(loaded.members, raw.pixels, records.length, 48);
  loaded.members.forEach((m) => m.dispose());

  const predictor = await Predictor.load(out);
  for (let i = 0; i < records.length; i++) {
    const p = await predictor.predict(fs.readFileSync(records[i].path));
    assert.ok(
      Math.abs(p.logit * r.meta.temperature - viaLoader[i]) < 1e-4,
      `${records[i].path}: predictor ${p.logit * r.meta.temperature} vs loader ${viaLoader[i]}`,
    );
  }
  // The normalisation really changes what the network sees.
  assert.ok(viaLoader.some((z, i) => Math.abs(z - unnormalised[i]) > 1e-3));
  predictor.dispose();
}
