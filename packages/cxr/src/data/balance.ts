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

/** Indices (into labels) to visit in epoch `epoch`, shuffled. */
export function epochOrder(labels: ArrayLike<number>, mode: BalanceMode, seed: Seed, epoch: number): number[] {
  const rand = createRng(seed, 'epoch', epoch, mode);
  const byClass: [number[], number[]] = [[], []];
  classCounts(labels); // validates
  for (let i = 0; i < labels.length; i++) byClass[labels[i] as Label].push(i);
  const [c0, c1] = byClass;
  const minority = c0.length <= c1.length ? c0 : c1;
  const majority = minority === c0 ? c1 : c0;

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
