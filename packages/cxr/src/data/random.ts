// Seeded randomness for everything in the data pipeline that must be reproducible: the
// validation split, the per-epoch sample order and the augmentation parameters. Seeds are
// strings so that sub-streams ("epoch 3", "batch 17") can be derived without ever sharing
// state between consumers, which would make one consumer's draws depend on another's.
import seedrandom from 'seedrandom';

export type Seed = number | string;

/** A uniform generator on [0, 1). */
export type Rng = () => number;

export function createRng(seed: Seed, ...stream: Array<string | number>): Rng {
  const prng = seedrandom.alea([String(seed), ...stream.map(String)].join('/'));
  return () => prng();
}

/** Uniform on [lo, hi). */
export function uniform(rand: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rand();
}

/** Fisher–Yates, in place. */
export function shuffleInPlace<T>(items: T[], rand: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = items[i];
    items[i] = items[j];
    items[j] = t;
  }
  return items;
}
