// `cxr experiments heatmap` deletes the pixels a map ranks highest: the map scaled to the film must sit where the
// overlay draws it (pixel centres aligned, explain/gradcam.ts). Scaled from the corners it moved up and left by
// half a cell (16 px of a 5×5 map at 160 px), and the pixels deleted were not the ones the map marks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initEngine } from '../src/engine';
import { upsample } from '../src/experiments/heatmap';
import { resizeMap } from '../src/explain/resize';

const argmax = (a: Float32Array) => a.reduce((best, v, i) => (v > a[best] ? i : best), 0);

test('a 5×5 map with one hot inner cell, scaled to 160 px, peaks at its centre, as the overlay draws it', async () => {
  await initEngine();
  const S = 160;
  for (const [r, c] of [
    [2, 2],
    [1, 3],
    [3, 1],
  ]) {
    const map = new Float32Array(25);
    map[r * 5 + c] = 1;
    const up = upsample(map, [5, 5], S);
    // The cell's centre: (r + 0.5) · 32 px, between pixel rows 79 and 80 for the middle cell.
    const peak = argmax(up);
    const [pr, pc] = [Math.floor(peak / S), peak % S];
    assert.ok(
      Math.abs(pr + 0.5 - (r + 0.5) * 32) <= 1 && Math.abs(pc + 0.5 - (c + 0.5) * 32) <= 1,
      `${r},${c}: ${pr},${pc}`,
    );
    // And the same field as the overlay's own scaling, to rounding.
    const drawn = resizeMap(map, 5, 5, S, S);
    const worst = up.reduce((m, v, i) => Math.max(m, Math.abs(v - drawn[i])), 0);
    assert.ok(worst < 1e-5, `largest difference from the overlay's map: ${worst}`);
  }
});
