// The search for the share where the class-mix estimate settles (adapt/mix_search.ts), on maps from the
// share adapted at to the share read back. The first is shaped like the one measured on the shipped model
// with Kaggle's 16 val films (half pneumonia): iterating from the first estimate runs away to "all pneumonia".
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { MIX_GRID, MIX_REFINEMENTS, MIX_TOLERANCE, settleShare } from '../src/adapt/mix_search';

/** Piecewise-linear map through the knots. */
function through(knots: Array<[number, number]>): (s: number) => number {
  return (s) => {
    const i = knots.findIndex((_, k) => k + 1 < knots.length && s <= knots[k + 1][0]);
    const [[x0, y0], [x1, y1]] = [knots[Math.max(0, i)], knots[Math.max(0, i) + 1]];
    return y0 + ((y1 - y0) * (s - x0)) / (x1 - x0);
  };
}

const kaggleLike = through([
  [0.01, 0.05],
  [0.1, 0.18],
  [0.3, 0.36],
  [0.4, 0.49],
  [0.5, 0.49],
  [0.6, 0.69],
  [0.7, 0.88],
  [0.8, 0.88],
  [0.9, 0.9],
  [0.99, 0.92],
]);

test('the settled share is the attracting fixed point nearest the first estimate, not the runaway', async () => {
  // Adapting at the first estimate and estimating again, over and over, climbs to all pneumonia.
  let s = 0.62;
  for (let k = 0; k < 6; k++) s = kaggleLike(s);
  assert.ok(s > 0.85, `iteration from 0.62 ends at ${s}`);
  const tried: number[] = [];
  const r = await settleShare(0.62, async (at) => {
    tried.push(at);
    return kaggleLike(at);
  });
  assert.equal(r.how, 'crossing');
  assert.ok(Math.abs(kaggleLike(r.share) - r.share) < 2 * MIX_TOLERANCE, `share ${r.share}`);
  assert.ok(r.share > 0.45 && r.share < 0.5, `share ${r.share}`);
  assert.deepEqual(
    r.points.map((p) => p.at),
    tried,
  );
  assert.ok(tried.length <= 2 + MIX_GRID.length + MIX_REFINEMENTS, `${tried.length} adaptations`);
});

test('a first estimate that reads itself back is kept exactly, after one adaptation', async () => {
  const r = await settleShare(0.743, async (at) => 0.743 + 0.5 * (at - 0.743));
  assert.deepEqual({ share: r.share, how: r.how, n: r.points.length }, { share: 0.743, how: 'first', n: 1 });
});

test('a fixed point below the lowest share of the scan is found between it and the floor', async () => {
  const f = (at: number) => 0.05 + 0.3 * at; // fixed point 0.0714
  const r = await settleShare(0.2, async (at) => f(at));
  assert.ok(Math.abs(r.share - 0.05 / 0.7) < 0.005, `share ${r.share}`);
});

test('a site of nearly all pneumonia settles near the ceiling', async () => {
  const f = (at: number) => Math.min(0.99, 0.5 + 0.6 * at); // fixed point 1.25, clamped: 0.99
  const r = await settleShare(0.9, async (at) => f(at));
  assert.ok(r.share > 0.95, `share ${r.share}`);
});

test('of two attracting fixed points the one nearer the first estimate and not above it wins', async () => {
  // Attracting at 0.2 and at 0.8, repelling at 0.5.
  const f = (at: number) => at + 0.5 * (at - 0.2) * (at - 0.5) * (at - 0.8) * -4;
  for (const [first, want] of [
    [0.35, 0.2],
    [0.65, 0.2],
    [0.85, 0.8],
  ]) {
    const r = await settleShare(first, async (at) => f(at));
    assert.ok(Math.abs(r.share - want) < 0.02, `from ${first}: ${r.share}`);
  }
});

test('a map above the diagonal up to the ceiling keeps the first estimate and says so', async () => {
  // Shaped like the shipped model's validation films under strong noise (74.5% pneumonia, first estimate 79.9%).
  const noiseLike = through([
    [0.01, 0.3],
    [0.3, 0.553],
    [0.5, 0.694],
    [0.6, 0.752],
    [0.7, 0.783],
    [0.8, 0.851],
    [0.9, 0.913],
    [0.99, 0.99],
  ]);
  const r = await settleShare(0.799, async (at) => noiseLike(at));
  assert.deepEqual({ share: r.share, how: r.how }, { share: 0.799, how: 'unsettled' });
});

test('a site whose estimate settles close by is not scanned', async () => {
  // Like the shipped model on its validation films at 62.5% pneumonia under contrast-down: 64% first, then 62.6%.
  const f = (at: number) => 0.55 + 0.12 * at; // fixed point 0.625
  const r = await settleShare(0.639, async (at) => f(at));
  assert.ok(r.points.length <= 3, `${r.points.length} adaptations`);
  assert.ok(Math.abs(r.share - 0.625) < MIX_TOLERANCE, `share ${r.share}`);
});

test('a site of normal films only settles at the floor, where every low share reads back the floor', async () => {
  // Like `cxr adapt` on a tiny all-normal site: 1%, 10% and 30% each read back 1%, higher shares read higher.
  const allNormal = through([
    [0.01, 0.01],
    [0.35, 0.01],
    [0.5, 0.6],
    [0.99, 0.99],
  ]);
  const r = await settleShare(0.317, async (at) => allNormal(at));
  assert.deepEqual({ share: r.share, how: r.how }, { share: 0.01, how: 'crossing' });
  assert.ok(r.points.length <= 2 + MIX_GRID.length, `${r.points.length} adaptations: no refinement needed`);
});

test('a share at the floor that reads back below it counts as settled too', async () => {
  const r = await settleShare(0.3, async () => 0);
  assert.deepEqual({ share: r.share, how: r.how }, { share: 0.01, how: 'crossing' });
  const first = await settleShare(0.01, async () => 0);
  assert.deepEqual({ share: first.share, how: first.how, n: first.points.length }, { share: 0.01, how: 'first', n: 1 });
});
