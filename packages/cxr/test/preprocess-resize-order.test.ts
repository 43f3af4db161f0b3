// resizeSquare resizes along the long side first, so its intermediate holds size × (short side) sums
// instead of height × size: a 16×3,000,000 PNG of 124 KB took the server to 4.4 GB, and a 1×49,000,000
// one failed with a RangeError (500). The order must not change a byte of the model's input: the old
// width-first resize is kept here as the reference, and both are compared on many shapes and a real film.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { resizeSquare, toGray } from '../src/data/preprocess';
import { needsData, SAMPLES_FULLRES } from './shared-data';

/** The weights of one axis, as preprocess.ts defines them (area average down, bilinear up). */
function axis(src: number, dst: number): { taps: [number, number][][]; den: number } {
  const taps: [number, number][][] = [];
  if (src >= dst) {
    for (let i = 0; i < dst; i++) {
      const lo = i * src,
        hi = (i + 1) * src;
      const t: [number, number][] = [];
      for (let j = Math.floor(lo / dst); j < Math.ceil(hi / dst); j++)
        t.push([j, Math.min(hi, (j + 1) * dst) - Math.max(lo, j * dst)]);
      taps.push(t);
    }
    return { taps, den: src };
  }
  const den = 2 * dst;
  for (let i = 0; i < dst; i++) {
    const num = Math.min((src - 1) * den, Math.max(0, (2 * i + 1) * src - dst));
    const j0 = Math.floor(num / den),
      frac = num - j0 * den;
    taps.push(
      frac === 0
        ? [[j0, den]]
        : [
            [j0, den - frac],
            [j0 + 1, frac],
          ],
    );
  }
  return { taps, den };
}

/** The resize before the change: every row resized across first (height × size sums), then down. */
function widthFirst(gray: Uint8Array, width: number, height: number, size: number): Uint8Array {
  const x = axis(width, size),
    y = axis(height, size);
  const rows = new Float64Array(height * size);
  for (let r = 0; r < height; r++)
    for (let i = 0; i < size; i++) rows[r * size + i] = x.taps[i].reduce((a, [j, w]) => a + w * gray[r * width + j], 0);
  const d = x.den * y.den;
  const out = new Uint8Array(size * size);
  for (let j = 0; j < size; j++)
    for (let i = 0; i < size; i++) {
      const acc = y.taps[j].reduce((a, [r, w]) => a + w * rows[r * size + i], 0);
      out[j * size + i] = Math.min(255, Math.floor((2 * acc + d) / (2 * d)));
    }
  return out;
}

/** Deterministic noise with some structure (a seeded LCG over a gradient). */
function image(width: number, height: number, seed: number): Uint8Array {
  let s = seed >>> 0;
  return Uint8Array.from({ length: width * height }, (_, i) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return ((i % width) * 3 + Math.floor(i / width) * 5 + (s >>> 27)) & 255;
  });
}

test('resizeSquare gives the same bytes as the width-first resize, tall, wide and square, up and down', () => {
  const shapes: [number, number, number][] = [
    [1, 1, 7],
    [1, 300, 16],
    [300, 1, 16],
    [3, 200, 11],
    [200, 3, 11],
    [7, 13, 10],
    [13, 7, 10],
    [37, 5, 11],
    [5, 37, 11],
    [64, 64, 32],
    [50, 51, 224],
    [257, 1000, 224],
    [1000, 257, 224],
    [16, 3000, 160],
  ];
  shapes.forEach(([w, h, s], k) => {
    const img = image(w, h, k + 1);
    assert.deepEqual(resizeSquare(img, w, h, s), widthFirst(img, w, h, s), `${w}×${h} -> ${s}`);
  });
});

test('resizeSquare gives the same bytes as the width-first resize on a real film, upright and turned on its side', {
  skip: needsData(SAMPLES_FULLRES),
}, async () => {
  const file = path.join(SAMPLES_FULLRES, 'NORMAL', fs.readdirSync(path.join(SAMPLES_FULLRES, 'NORMAL'))[0]);
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  const gray = toGray(data, info.width, info.height, info.channels);
  assert.deepEqual(resizeSquare(gray, info.width, info.height, 224), widthFirst(gray, info.width, info.height, 224));
  // The same film transposed: the other branch (taller than wide when the film is wider, or the reverse).
  const t = new Uint8Array(gray.length);
  for (let y = 0; y < info.height; y++)
    for (let x = 0; x < info.width; x++) t[x * info.height + y] = gray[y * info.width + x];
  assert.deepEqual(resizeSquare(t, info.height, info.width, 224), widthFirst(t, info.height, info.width, 224));
});

test('a 1×1,100,000 image resizes to 4096² (width first, it needed 4.5 billion intermediate sums)', () => {
  const height = 1_100_000;
  const size = 4096;
  const col = Uint8Array.from({ length: height }, (_, y) => (y * 7) >> 12);
  const out = resizeSquare(col, 1, height, size);
  // Every output row is the area mean of its stretch of the column, the same across the row (1 -> 4096 is
  // a constant upscale), rounded half up.
  for (const j of [0, 1, 1234, size - 1]) {
    const lo = j * height,
      hi = (j + 1) * height;
    let sum = 0;
    for (let y = Math.floor(lo / size); y < Math.ceil(hi / size); y++)
      sum += (Math.min(hi, (y + 1) * size) - Math.max(lo, y * size)) * col[y];
    const expected = Math.floor((2 * sum + height) / (2 * height));
    const row = out.subarray(j * size, (j + 1) * size);
    assert.ok(
      row.every((v) => v === expected),
      `row ${j}: expected ${expected}, got ${row[0]}..${row[size - 1]}`,
    );
  }
});
