import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { decodeFile } from '../src/data/decode';
import {
  addGaussianNoise,
  adjustExposure,
  applyGamma,
  applyWindow,
  burnText,
  collimate,
  downUpSample,
  gaussianBlur,
  invertFilm,
  jpegRecode,
  padBorder,
  rotate,
  scaleContrast,
  sideMarker,
  squashAspect,
  type SquareImage,
  unsharpMask,
  zoomCrop,
} from '../src/data/perturb';
import { CHANGES, changeByName, perturbAt } from '../src/data/perturb_catalog';
import { createRng } from '../src/data/random';

import { DATA, needsData } from './shared-data';
const S = 64;
const FILM = path.join(DATA, 'chest_xray', 'val', 'NORMAL', 'NORMAL2-IM-1427-0001.jpeg');
/** The tests that change a real film; the others build their own images. */
const skip = needsData(FILM);
let xray: SquareImage;

before(async () => {
  if (skip) return;
  const { pixels } = await decodeFile(FILM, S);
  xray = { pixels, size: S };
});

const ramp = (n = 16): SquareImage => ({
  pixels: Uint8Array.from({ length: n * n }, (_, i) => Math.round((i / (n * n - 1)) * 255)),
  size: n,
});
const flat = (v: number, n = 32): SquareImage => ({ pixels: new Uint8Array(n * n).fill(v), size: n });
const mean = (img: SquareImage) => img.pixels.reduce((a, v) => a + v, 0) / img.pixels.length;
const variance = (img: SquareImage) => {
  const m = mean(img);
  return img.pixels.reduce((a, v) => a + (v - m) ** 2, 0) / img.pixels.length;
};
const at = (img: SquareImage, x: number, y: number) => img.pixels[y * img.size + x];
const differing = (a: SquareImage, b: SquareImage) => a.pixels.reduce((n, v, i) => n + (v !== b.pixels[i] ? 1 : 0), 0);

test('exposure shifts every unclipped pixel by delta × 255 and clips', () => {
  const img = flat(100);
  assert.ok(adjustExposure(img, 0.2).pixels.every((v) => v === 151));
  assert.ok(adjustExposure(img, -0.5).pixels.every((v) => v === 0));
  assert.throws(() => adjustExposure(img, 2), /delta/);
});

test('gamma keeps 0 and 255, darkens mid-tones above 1 and brightens them below 1', () => {
  const img = ramp();
  const dark = applyGamma(img, 2);
  const bright = applyGamma(img, 0.5);
  for (const out of [dark, bright]) {
    assert.equal(out.pixels[0], 0);
    assert.equal(out.pixels[out.pixels.length - 1], 255);
  }
  assert.ok(mean(dark) < mean(img) && mean(bright) > mean(img));
  assert.equal(applyGamma({ pixels: Uint8Array.of(128), size: 1 }, 2).pixels[0], Math.round(255 * (128 / 255) ** 2));
});

test('contrast scales the spread around the mean; window clips and stretches', { skip }, () => {
  assert.ok(Math.abs(variance(scaleContrast(xray, 0.5)) / variance(xray) - 0.25) < 0.02);
  assert.ok(Math.abs(mean(scaleContrast(xray, 0.5)) - mean(xray)) < 0.6);
  const w = applyWindow(ramp(), 64, 191);
  assert.ok(w.pixels.filter((v) => v === 0).length > 50 && w.pixels.filter((v) => v === 255).length > 50);
  const one = (v: number) => applyWindow({ pixels: Uint8Array.of(v), size: 1 }, 64, 191).pixels[0];
  assert.deepEqual([one(10), one(64), one(191), one(250)], [0, 0, 255, 255]);
  assert.throws(() => applyWindow(ramp(), 100, 100), /hi/);
});

test('inverting twice is the identity; a negative maps black to white', { skip }, () => {
  assert.deepEqual(invertFilm(invertFilm(xray)).pixels, xray.pixels);
  assert.equal(invertFilm(flat(0)).pixels[0], 255);
  assert.ok(variance(invertFilm(xray, 0.5)) < variance(xray) / 3);
});

test('blur reduces the variance of noise; sharpening raises it; both keep a flat image flat', { skip }, () => {
  const noisy = addGaussianNoise(flat(128, 48), 20, createRng(1));
  assert.ok(Math.abs(Math.sqrt(variance(noisy)) - 20) < 2, `noise σ ${Math.sqrt(variance(noisy))}`);
  assert.ok(variance(gaussianBlur(noisy, 1.5)) < variance(noisy) / 5);
  assert.ok(variance(unsharpMask(xray, 2)) > variance(xray));
  assert.ok(gaussianBlur(flat(77), 2).pixels.every((v) => v === 77));
  assert.ok(unsharpMask(flat(77), 2).pixels.every((v) => v === 77));
  assert.deepEqual(gaussianBlur(xray, 0).pixels, xray.pixels);
});

test('noise is seeded: the same seed gives the same pixels, another seed others', { skip }, () => {
  assert.deepEqual(
    addGaussianNoise(xray, 10, createRng('a')).pixels,
    addGaussianNoise(xray, 10, createRng('a')).pixels,
  );
  assert.ok(differing(addGaussianNoise(xray, 10, createRng('a')), addGaussianNoise(xray, 10, createRng('b'))) > 100);
});

test('JPEG at quality 10 differs from the original more than at quality 95', { skip }, async () => {
  const q10 = await jpegRecode(xray, 10);
  const q95 = await jpegRecode(xray, 95);
  const err = (a: SquareImage) => a.pixels.reduce((s, v, i) => s + Math.abs(v - xray.pixels[i]), 0) / a.pixels.length;
  assert.equal(q10.pixels.length, xray.pixels.length);
  assert.ok(err(q10) > 1.5 * err(q95) && err(q10) > 1, `q10 ${err(q10)}, q95 ${err(q95)}`);
});

test('down- and up-sampling loses fine detail but keeps the mean', { skip }, () => {
  const checker: SquareImage = {
    pixels: Uint8Array.from({ length: 32 * 32 }, (_, i) => (((i % 32) + Math.floor(i / 32)) % 2) * 255),
    size: 32,
  };
  const out = downUpSample(checker, 0.5);
  assert.ok(variance(out) < variance(checker) / 10);
  assert.ok(Math.abs(mean(out) - mean(checker)) < 2);
  assert.deepEqual(downUpSample(xray, 1).pixels, xray.pixels);
});

test('geometry: zero rotation is exact, a quarter turn moves a corner, padding and collimation blacken edges', {
  skip,
}, () => {
  assert.deepEqual(rotate(xray, 0).pixels, xray.pixels);
  const dot: SquareImage = { pixels: new Uint8Array(16 * 16), size: 16 };
  dot.pixels[2 * 16 + 12] = 255; // (x 12, y 2): top right
  const turned = rotate(dot, 90); // counter-clockwise on screen: top right goes to top left
  assert.equal(at(turned, 2, 3), 255);
  const padded = padBorder(flat(200), 0.25);
  assert.equal(at(padded, 0, 0), 0);
  assert.equal(at(padded, 16, 16), 200);
  const coll = collimate(xray, 0.1);
  const b = Math.round(0.1 * S);
  assert.equal(at(coll, b - 1, 30), 0);
  assert.equal(at(coll, b, 30), at(xray, b, 30), 'inside the band the anatomy is unmoved');
});

test('aspect squash narrows horizontally only; zoom enlarges the centre', () => {
  const bar: SquareImage = {
    pixels: Uint8Array.from({ length: 32 * 32 }, (_, i) => (i % 32 >= 8 && i % 32 < 24 ? 255 : 0)),
    size: 32,
  };
  const bright = (img: SquareImage, y: number) =>
    Array.from({ length: 32 }, (_, x) => at(img, x, y)).filter((v) => v > 127).length;
  assert.ok(bright(squashAspect(bar, 0.5), 10) < 12);
  const col: SquareImage = {
    pixels: Uint8Array.from({ length: 32 * 32 }, (_, i) =>
      Math.floor(i / 32) >= 8 && Math.floor(i / 32) < 24 ? 255 : 0,
    ),
    size: 32,
  };
  assert.deepEqual(squashAspect(col, 0.5).pixels, col.pixels, 'rows stay where they were');
  assert.ok(bright(zoomCrop(bar, 1.5), 10) > 20);
});

test('burned-in text and side markers draw bright blocks near the top and leave the rest alone', () => {
  const dark = flat(30, 128);
  const text = burnText(dark, 2, 0.04, createRng(3));
  const changed = Array.from(text.pixels).flatMap((v, i) => (v !== 30 ? [i] : []));
  assert.ok(changed.length > 50);
  assert.ok(changed.every((i) => Math.floor(i / 128) < 40) && text.pixels.every((v) => v === 30 || v === 245));
  const right = sideMarker(dark, { letter: 'R', corner: 'right', height: 0.2 });
  const rows = Array.from(right.pixels).flatMap((v, i) => (v !== 30 ? [i] : []));
  assert.ok(rows.length > 100 && rows.every((i) => i % 128 > 64 && Math.floor(i / 128) < 40));
  assert.ok(
    right.pixels.some((v) => v === 0) && right.pixels.some((v) => v === 250),
    'a bright plate with a dark letter',
  );
  assert.notDeepEqual(sideMarker(dark, { letter: 'L', corner: 'right', height: 0.2 }).pixels, right.pixels);
});

test('every catalogued change is the identity at strength 0 and changes the image at strength 1', {
  skip,
}, async () => {
  for (const c of CHANGES) {
    const zero = await perturbAt(c.name, xray, 0, 7);
    assert.deepEqual(zero.pixels, xray.pixels, `${c.name} at 0`);
    const full = await perturbAt(c.name, xray, 1, 7);
    assert.ok(differing(full, xray) > 20, `${c.name} at 1 changes the image`);
    assert.deepEqual(
      (await perturbAt(c.name, xray, 1, 7)).pixels,
      full.pixels,
      `${c.name} is deterministic for a seed`,
    );
    assert.ok(c.parameter(0.5, S).length > 0);
  }
  assert.throws(() => changeByName('nope'), /unknown change 'nope'/);
  await assert.rejects(perturbAt('blur', xray, 1.5, 1), /strength/);
});

test('strength grows the effect: the mean absolute change rises with strength for every change', { skip }, async () => {
  for (const c of CHANGES) {
    const err = async (s: number) => {
      const out = await perturbAt(c.name, xray, s, 5);
      return out.pixels.reduce((a, v, i) => a + Math.abs(v - xray.pixels[i]), 0);
    };
    const [a, b] = [await err(1 / 3), await err(1)];
    assert.ok(b > a, `${c.name}: ${a} at 1/3, ${b} at 1`);
  }
});
