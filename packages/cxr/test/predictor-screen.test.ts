// Predictor.screen (what site adaptation reads its films through) and Predictor.predict gate an image alike:
// the OOD gate scores the features of the network's input normalised as the model was trained, the input the
// gate was fitted on. screen() once fed the raw square, so a model with `normalize: equalize` had two gates.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { createRng } from '../src/data/random';
import { normalizeImages } from '../src/data/preprocess';
import type { ImageSet } from '../src/data/images';
import { saveOod } from '../src/explain/ood';
import { fitOodFromSets } from '../src/explain/ood_fit';
import { loadModel, readMeta } from '../src/models/io';
import { Predictor } from '../src/predict/predictor';
import { makeTinyModel, tempDir } from './serve-fixtures';

const SIZE = 32;
let dir: string;
let predictor: Predictor;

/** n random-ish gray squares with a bright frame: varied enough to fit a gate on. */
function squares(n: number, seed: number): ImageSet {
  const rng = createRng(seed, 'screen-test');
  const pixels = new Uint8Array(n * SIZE * SIZE);
  for (let i = 0; i < n; i++) {
    const level = 40 + Math.floor(rng() * 120);
    for (let p = 0; p < SIZE * SIZE; p++) pixels[i * SIZE * SIZE + p] = Math.min(255, level + Math.floor(rng() * 60));
  }
  const files = Array.from({ length: n }, (_, i) => `f${seed}-${i}.png`);
  return { size: SIZE, pixels, labels: new Uint8Array(n).map((_, i) => i % 2), files, patients: files };
}

before(async () => {
  dir = tempDir('predictor-screen');
  const model = await makeTinyModel(path.join(dir, 'model'), { inputSize: SIZE });
  const meta = readMeta(model);
  meta.preprocessing.normalize = 'equalize';
  fs.writeFileSync(path.join(model, 'cxr.json'), JSON.stringify(meta));
  const loaded = await loadModel(model);
  const norm = (s: ImageSet) => ({ ...s, pixels: normalizeImages(s.pixels, s.files.length, SIZE, 'equalize') });
  const gate = await fitOodFromSets(loaded.members[0], norm(squares(24, 1)), norm(squares(12, 2)), {
    memberDir: model,
    normalize: 'equalize',
    changes: ['gamma-up'],
  });
  loaded.members[0].dispose();
  saveOod(model, gate);
  predictor = await Predictor.load(model, { warmUp: false });
});
after(() => {
  predictor?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('screen() and predict() give one OOD score for one image of an equalising model', async () => {
  assert.equal(predictor.model.meta.preprocessing.normalize, 'equalize');
  // A dim, low-contrast image: equalisation changes it a lot, so the raw and the normalised input differ.
  const raw = new Uint8Array(96 * 96).map((_, i) => 60 + ((i * 7) % 23));
  const png = await sharp(Buffer.from(raw), { raw: { width: 96, height: 96, channels: 1 } })
    .png()
    .toBuffer();
  const screened = await predictor.screen(png);
  const predicted = await predictor.predict(png);
  assert.ok(screened.ood && predicted.ood, 'the gate is on');
  assert.ok(
    Math.abs(screened.ood.score - predicted.ood.score) <= 1e-6 * Math.max(1, predicted.ood.score),
    [`screen ${screened.ood.score}`, `predict ${predicted.ood.score}`].join(' vs '),
  );
  assert.equal(screened.ood.outOfDistribution, predicted.ood.outOfDistribution);
});
