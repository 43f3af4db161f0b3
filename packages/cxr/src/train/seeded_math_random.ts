// TF.js takes a fresh seed from Math.random for every random op it is not given one for: the
// layers' weight initializers and every training step's dropout masks. Two runs of one recipe and
// seed therefore began from different weights, dropped different units and ended apart (a rerun of
// cxr-shift-ema seed 42 reached validation AUC 0.9954 against 0.9953). While a run builds its model,
// and during each training step, Math.random is a stream derived from the run's seed (and the phase,
// epoch and batch, so that a resumed run draws what an uninterrupted one would). With the same
// thread count two runs then write the same weights byte for byte. Outside those windows
// Math.random is the platform's. Windows must not overlap: the training loop runs one at a time.
import { createRng, type Seed } from '../data/random';

/** fn() with Math.random drawn from (seed, 'tf', ...stream); restored when fn returns or its promise settles. */
export function withSeededMathRandom<T>(seed: Seed, stream: ReadonlyArray<string | number>, fn: () => T): T {
  const platform = Math.random;
  Math.random = createRng(seed, 'tf', ...stream);
  const restore = () => {
    Math.random = platform;
  };
  let result: T;
  try {
    result = fn();
  } catch (e) {
    restore();
    throw e;
  }
  if (result instanceof Promise) return result.finally(restore) as T;
  restore();
  return result;
}
