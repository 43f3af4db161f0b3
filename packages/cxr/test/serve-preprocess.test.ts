// preprocess.ts is the contract between the server and the in-browser mode: these tests pin its
// arithmetic so that a change shows up here before it shows up as a probability mismatch.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { bodyBox, cropToBody, normalizeImages, preprocessPixels, resizeSquare, toGray } from '../src/data/preprocess';
import { collimate, padBorder } from '../src/data/perturb';

test('toGray: gray copies, RGB is rounded Rec. 601 luma, equal channels keep their value', () => {
  assert.deepEqual(toGray(Uint8Array.from([0, 7, 255]), 3, 1, 1), Uint8Array.from([0, 7, 255]));
  const rgb = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]);
  // 0.299*255 = 76.245, 0.587*255 = 149.685, 0.114*255 = 29.07, 2.99+11.74+3.42 = 18.15
  assert.deepEqual(toGray(rgb, 4, 1, 3), Uint8Array.from([76, 150, 29, 18]));
  const same = new Uint8Array(256 * 3);
  for (let v = 0; v < 256; v++) same.fill(v, v * 3, v * 3 + 3);
  assert.deepEqual(
    toGray(same, 256, 1, 3),
    Uint8Array.from({ length: 256 }, (_, v) => v),
  );
});

test('toGray: alpha composites over black', () => {
  const rgba = Uint8Array.from([200, 200, 200, 255, 200, 200, 200, 0, 200, 200, 200, 128]);
  assert.deepEqual(toGray(rgba, 3, 1, 4), Uint8Array.from([200, 0, 100]));
  assert.deepEqual(toGray(Uint8Array.from([90, 255, 90, 0]), 2, 1, 2), Uint8Array.from([90, 0]));
});

test('toGray: rejects inconsistent input', () => {
  assert.throws(() => toGray(new Uint8Array(5), 2, 1, 3), RangeError);
  assert.throws(() => toGray(new Uint8Array(4), 2, 2, 5), RangeError);
  assert.throws(() => toGray(new Uint8Array(0), 0, 1, 1), RangeError);
});

test('resizeSquare: same size is the identity, a constant image stays constant', () => {
  const img = Uint8Array.from({ length: 64 }, (_, i) => (i * 37) % 256);
  assert.deepEqual(resizeSquare(img, 8, 8, 8), img);
  for (const [w, h, s] of [
    [13, 7, 5],
    [3, 11, 16],
    [100, 30, 17],
    [1, 1, 9],
  ]) {
    assert.ok(
      resizeSquare(new Uint8Array(w * h).fill(173), w, h, s).every((v) => v === 173),
      `${w}x${h}->${s}`,
    );
  }
});

test('resizeSquare: 2x downscale is the exact 2x2 mean rounded half up', () => {
  const img = Uint8Array.from([0, 1, 10, 20, 2, 2, 30, 40, 255, 255, 0, 0, 255, 254, 0, 1]);
  // means: (0+1+2+2)/4 = 1.25, (10+20+30+40)/4 = 25, (255*3+254)/4 = 254.75, 1/4 = 0.25
  assert.deepEqual(resizeSquare(img, 4, 4, 2), Uint8Array.from([1, 25, 255, 0]));
});

test('resizeSquare: fractional area weights (3 -> 2)', () => {
  // output 0 covers source 0 and half of 1: (0*2 + 90*1)/3 = 30; output 1: (90 + 2*180)/3 = 150
  const out = resizeSquare(Uint8Array.from([0, 90, 180, 0, 90, 180, 0, 90, 180]), 3, 3, 2);
  assert.deepEqual(out, Uint8Array.from([30, 150, 30, 150]));
});

test('resizeSquare: upscale is bilinear with aligned centres and clamped edges', () => {
  // 2 -> 4: centres at -0.25, 0.25, 0.75, 1.25 -> clamp, 1/4, 3/4, clamp
  const out = resizeSquare(Uint8Array.from([0, 100, 0, 100]), 2, 2, 4);
  assert.deepEqual(Array.from(out.subarray(0, 4)), [0, 25, 75, 100]);
  assert.deepEqual(Array.from(out.subarray(12, 16)), [0, 25, 75, 100]);
});

test('resizeSquare: matches a floating-point reference within rounding, mixed up/down axes', () => {
  const w = 37,
    h = 5,
    s = 11;
  const img = Uint8Array.from({ length: w * h }, (_, i) => (i * 97 + 13) % 256);
  const out = resizeSquare(img, w, h, s);
  const area = (x: number, i: number, src: number, dst: number) => {
    const lo = (i * src) / dst,
      hi = ((i + 1) * src) / dst;
    return Math.max(0, Math.min(hi, x + 1) - Math.max(lo, x)) / (src / dst);
  };
  const bil = (x: number, j: number, src: number, dst: number) => {
    const c = Math.min(src - 1, Math.max(0, (j + 0.5) * (src / dst) - 0.5));
    return Math.max(0, 1 - Math.abs(c - x));
  };
  for (let j = 0; j < s; j++) {
    for (let i = 0; i < s; i++) {
      let v = 0;
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) v += img[y * w + x] * area(x, i, w, s) * bil(y, j, h, s);
      assert.ok(Math.abs(out[j * s + i] - v) <= 0.5 + 1e-9, `(${i},${j}): ${out[j * s + i]} vs ${v}`);
    }
  }
});

test('preprocessPixels: RGBA straight to the model square', () => {
  const rgba = new Uint8Array(6 * 4 * 4);
  for (let i = 0; i < 24; i++) rgba.set([50, 50, 50, 255], i * 4);
  assert.deepEqual(preprocessPixels(rgba, 6, 4, 4, 3), new Uint8Array(9).fill(50));
});

test('normalizeImages equalize: spreads levels over 0..255, ignores monotonic changes, leaves flat images', () => {
  const size = 16;
  const n = size * size;
  const ramp = Uint8Array.from({ length: n }, (_, i) => 60 + (i % 97)); // levels 60..156 only
  const eq = normalizeImages(ramp.slice(), 1, size, 'equalize');
  assert.equal(Math.min(...eq), 0);
  assert.equal(Math.max(...eq), 255);
  // Order is kept: a brighter input pixel never maps below a darker one.
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (ramp[i] < ramp[j]) assert.ok(eq[i] <= eq[j]);
  // A gamma-like change (strictly increasing, so every level stays distinct) gives the same equalised image.
  const gamma = Uint8Array.from(ramp, (v) => v + Math.floor((v - 60) ** 2 / 100));
  assert.equal(new Set(gamma).size, new Set(ramp).size);
  assert.deepEqual(normalizeImages(gamma, 1, size, 'equalize'), eq);
  // Two images in one array are normalised independently.
  const two = new Uint8Array(2 * n);
  two.set(ramp, 0);
  two.fill(90, n);
  normalizeImages(two, 2, size, 'equalize');
  assert.deepEqual(two.subarray(0, n), eq);
  assert.ok(
    two.subarray(n).every((v) => v === 90),
    'a one-level image is left as it is',
  );
  // 'none' is the identity and returns the same array.
  const same = ramp.slice();
  assert.equal(normalizeImages(same, 1, size, 'none'), same);
  assert.deepEqual(same, ramp);
  assert.throws(() => normalizeImages(ramp.slice(), 2, size, 'equalize'), /samples/);
  assert.throws(() => normalizeImages(ramp.slice(), 1, size, 'clahe' as never), /unknown normalisation/);
});

/** A body-like square: mid-gray soft tissue with two darker lung fields, edge to edge. */
function bodySquare(size: number): Uint8Array {
  const img = new Uint8Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = x / size;
      const v = y / size;
      const lung =
        ((u - 0.3) / 0.14) ** 2 + ((v - 0.45) / 0.3) ** 2 < 1 || ((u - 0.7) / 0.14) ** 2 + ((v - 0.45) / 0.3) ** 2 < 1;
      img[y * size + x] = lung ? 70 + ((x * 7 + y * 3) % 20) : 170 + ((x + 2 * y) % 25);
    }
  }
  return img;
}

const meanAbsDiff = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

test('fov: a film shrunk inside a black border comes back as the film; a film without margins is unchanged', () => {
  const size = 96;
  const film = bodySquare(size);
  assert.deepEqual(bodyBox(film, size), { top: 0, bottom: size, left: 0, right: size });
  assert.deepEqual(cropToBody(film, size), film);
  const padded = padBorder({ pixels: film, size }, 0.15).pixels;
  const box = bodyBox(padded, size);
  assert.ok(box.top > 10 && box.left > 10 && box.bottom < size - 10 && box.right < size - 10, JSON.stringify(box));
  const before = meanAbsDiff(padded, film);
  const after = meanAbsDiff(cropToBody(padded, size), film);
  assert.ok(
    after < before / 4,
    `mean |difference| to the film: ${after.toFixed(1)} after the crop, ${before.toFixed(1)} before`,
  );
  assert.ok(after < 12, `mean |difference| ${after.toFixed(1)}`);
});

test('fov: collimation bands are cropped away; a nearly black film is not zoomed into', () => {
  const size = 64;
  const banded = collimate({ pixels: bodySquare(size), size }, 0.1).pixels;
  const box = bodyBox(banded, size);
  assert.ok(box.top >= 5 && box.left >= 5 && size - box.bottom >= 5 && size - box.right >= 5, JSON.stringify(box));
  const out = cropToBody(banded, size);
  assert.ok(out[0] > 100 && out[size * size - 1] > 100, 'the corners are body, not band, after the crop');
  // A small bright patch in a black square: keeping it would zoom past half the side, so nothing is cropped.
  const dark = new Uint8Array(size * size);
  for (let y = 28; y < 36; y++) dark.fill(200, y * size + 28, y * size + 36);
  assert.deepEqual(bodyBox(dark, size), { top: 0, bottom: size, left: 0, right: size });
});

test("normalizeImages 'fov' crops each image of a batch on its own", () => {
  const size = 48;
  const film = bodySquare(size);
  const padded = padBorder({ pixels: film, size }, 0.2).pixels;
  const batch = new Uint8Array(2 * size * size);
  batch.set(film, 0);
  batch.set(padded, size * size);
  normalizeImages(batch, 2, size, 'fov');
  assert.deepEqual(batch.subarray(0, size * size), film);
  assert.deepEqual(batch.subarray(size * size), cropToBody(padded, size));
  assert.throws(() => normalizeImages(new Uint8Array(10), 1, size, 'fov'), /samples/);
});
