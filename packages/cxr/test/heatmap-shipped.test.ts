// Heat maps of the shipped model on real films: a confident NORMAL film had its faint noise
// stretched to full colour (a hot band on the border cell next to the side marker); the overlay
// is now as strong as the probability, so it stays gray, while pneumonia films are coloured.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { Predictor } from '../src/predict/predictor';
import { SHARED } from './ood-fixtures';

const SHIPPED = path.resolve(__dirname, '../../../..', 'models', 'default');
const FULLRES = path.join(SHARED, 'samples-fullres');
const skip =
  fs.existsSync(path.join(SHIPPED, 'ood.json')) && fs.existsSync(FULLRES) ? false : 'no shipped model or no samples';
let predictor: Predictor;

before(async () => {
  if (!skip) predictor = await Predictor.load(SHIPPED, { warmUp: false });
});
after(() => predictor?.dispose());

/** Fraction of the overlay's pixels that are visibly coloured (the film itself is gray). */
async function colouredFraction(file: string): Promise<{ fraction: number; probability: number }> {
  const r = await predictor.predict(fs.readFileSync(file), { heatmap: true });
  const { data, info } = await sharp(r.heatmapPng!).raw().toBuffer({ resolveWithObject: true });
  let n = 0;
  for (let i = 0; i < data.length; i += info.channels) {
    if (Math.max(data[i], data[i + 1], data[i + 2]) - Math.min(data[i], data[i + 1], data[i + 2]) > 24) n++;
  }
  return { fraction: n / (info.width * info.height), probability: r.probability };
}

test('a confident NORMAL film gets no coloured hot spots; a pneumonia film does', { skip }, async () => {
  const normal = await colouredFraction(path.join(FULLRES, 'NORMAL', 'NORMAL2-IM-1035-0001.jpeg'));
  assert.ok(normal.probability < 0.05, `${normal.probability}`);
  assert.ok(normal.fraction < 0.001, `NORMAL film: ${(normal.fraction * 100).toFixed(2)} % coloured`);
  const pneumonia = await colouredFraction(path.join(FULLRES, 'PNEUMONIA', 'person1073_bacteria_3008.jpeg'));
  assert.ok(pneumonia.probability > 0.9);
  assert.ok(pneumonia.fraction > 0.02, `pneumonia film: ${(pneumonia.fraction * 100).toFixed(2)} % coloured`);
});
