// Class imbalance handling (train has about 3 PNEUMONIA images per NORMAL one):
//   none           every image once per epoch, shuffled
//   class-weights  every image once; the loss weighs each class by n / (2 · n_class)
//   oversample     the minority class is drawn again (without replacement while possible)
//                  until it matches the majority
//   undersample    a fresh random majority subset the size of the minority, each epoch
// Orders are seeded per epoch, so epoch k of a run is reproducible on its own.
import type { Label } from './dataset';
import { createRng, type Rng, type Seed, shuffleInPlace } from './random';

export const BALANCE_MODES = ['none', 'class-weights', 'oversample', 'undersample'] as const;
export type BalanceMode = (typeof BALANCE_MODES)[number];

export type ClassWeights = [normal: number, pneumonia: number];

export function classCounts(labels: ArrayLike<number>): [number, number] {
  const counts: [number, number] = [0, 0];
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (l !== 0 && l !== 1) throw new RangeError(`balance: label ${l} at ${i} is not 0 or 1`);
    counts[l as Label]++;
  }
  return counts;
}

/** "Balanced" weights (as scikit-learn computes them): the weighted classes contribute equally. */
export function classWeights(labels: ArrayLike<number>): ClassWeights {
  const [n0, n1] = classCounts(labels);
  const n = n0 + n1;
  return [n0 > 0 ? n / (2 * n0) : 0, n1 > 0 ? n / (2 * n1) : 0];
}

/**
 * Indices (into labels) to visit in epoch `epoch`, shuffled. With `weights` (one per image, e.g.
 * data/period_balance.ts), each class keeps the size `mode` gives it, but its images are drawn in
 * proportion to their weights instead of equally often.
 */
export function epochOrder(
  labels: ArrayLike<number>,
  mode: BalanceMode,
  seed: Seed,
  epoch: number,
  weights?: ArrayLike<number>,
): number[] {
  const rand = createRng(seed, 'epoch', epoch, mode);
  const byClass: [number[], number[]] = [[], []];
  classCounts(labels); // validates
  for (let i = 0; i < labels.length; i++) byClass[labels[i] as Label].push(i);
  const [c0, c1] = byClass;
  const minority = c0.length <= c1.length ? c0 : c1;
  const majority = minority === c0 ? c1 : c0;
  if (weights) {
    if (weights.length !== labels.length)
      throw new RangeError(`balance: ${weights.length} weights for ${labels.length} images`);
    const size = (pool: number[]) =>
      mode === 'oversample' ? majority.length : mode === 'undersample' ? minority.length : pool.length;
    return shuffleInPlace(
      [...weightedDraw(c0, size(c0), weights, rand), ...weightedDraw(c1, size(c1), weights, rand)],
      rand,
    );
  }

  let order: number[];
  switch (mode) {
    case 'none':
    case 'class-weights':
      order = Array.from({ length: labels.length }, (_, i) => i);
      break;
    case 'oversample':
      order = [...majority, ...draw(minority, majority.length, rand)];
      break;
    case 'undersample':
      order = [...minority, ...shuffleInPlace([...majority], rand).slice(0, minority.length)];
      break;
    default:
      throw new RangeError(`balance: unknown mode '${String(mode)}' (known: ${BALANCE_MODES.join(', ')})`);
  }
  return shuffleInPlace(order, rand);
}

/** The weights to give the loss for `mode`: balanced for class-weights, 1 otherwise. */
export function lossWeights(labels: ArrayLike<number>, mode: BalanceMode): ClassWeights {
  return mode === 'class-weights' ? classWeights(labels) : [1, 1];
}

/**
 * `count` items from `pool`, each about count · w / Σw times: systematic sampling (one random offset,
 * then even steps along the cumulative weights) over a shuffled pool, so the counts never stray by
 * more than one from their expectation and which items get the extra copy changes every epoch.
 */
function weightedDraw(pool: readonly number[], count: number, weights: ArrayLike<number>, rand: Rng): number[] {
  if (pool.length === 0 || count === 0) return [];
  const order = shuffleInPlace([...pool], rand);
  let total = 0;
  for (const i of order) {
    if (!(weights[i] > 0 && Number.isFinite(weights[i])))
      throw new RangeError(`balance: weight ${weights[i]} of image ${i} is not a positive number`);
    total += weights[i];
  }
  const step = total / count;
  let next = rand() * step;
  let cumulative = 0;
  const out: number[] = [];
  for (const i of order) {
    cumulative += weights[i];
    while (next < cumulative && out.length < count) {
      out.push(i);
      next += step;
    }
  }
  // Rounding can leave the last step just past the end.
  while (out.length < count) out.push(order[order.length - 1]);
  return out;
}

/** `count` items from `pool`: whole shuffled passes, then a random part of one more. */
function draw(pool: readonly number[], count: number, rand: Rng): number[] {
  if (pool.length === 0) return [];
  const out: number[] = [];
  while (out.length < count) {
    const pass = shuffleInPlace([...pool], rand);
    out.push(...pass.slice(0, count - out.length));
  }
  return out;
}
