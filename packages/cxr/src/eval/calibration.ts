// Temperature scaling (Guo et al., 2017): one scalar T divides the logit. It fixes over- or
// under-confidence without changing the ranking, so AUC and the ROC curve are untouched.

/** Probabilities are clipped this far from 0 and 1 before taking the logit, to keep it finite. */
const EPS = 1e-7;

export function sigmoid(x: number): number {
  // Split by sign so that exp never overflows.
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

export function logit(p: number): number {
  const q = Math.min(Math.max(p, EPS), 1 - EPS);
  return Math.log(q / (1 - q));
}

/** Mean binary cross-entropy of sigmoid(logit / T), computed from logits so it stays finite. */
export function temperatureNll(logits: readonly number[], labels: readonly number[], temperature: number): number {
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const z = logits[i] / temperature;
    // -[y log s(z) + (1-y) log(1-s(z))] = max(z,0) - y z + log(1 + e^-|z|)
    sum += Math.max(z, 0) - labels[i] * z + Math.log1p(Math.exp(-Math.abs(z)));
  }
  return sum / logits.length;
}

export interface TemperatureSearch {
  /** Search bounds for T; a fit that lands on a bound means the data wanted something more extreme. */
  min?: number;
  max?: number;
  /** Stop when the bracket on log T is narrower than this. */
  tolerance?: number;
}

const GOLDEN = (Math.sqrt(5) - 1) / 2;

/**
 * Fits T > 0 minimising the validation NLL. The NLL is convex in 1/T, hence unimodal in log T,
 * so a golden-section search on log T finds the minimum without gradients or a learning rate.
 */
export function fitTemperature(
  logits: readonly number[],
  labels: readonly number[],
  search: TemperatureSearch = {},
): number {
  if (logits.length !== labels.length || logits.length === 0) {
    throw new RangeError(
      `fitTemperature: need equally long, non-empty logits and labels (${logits.length}, ${labels.length})`,
    );
  }
  labels.forEach((y, i) => {
    if (y !== 0 && y !== 1) throw new RangeError(`labels[${i}] = ${y}: labels must be 0 or 1`);
  });
  logits.forEach((z, i) => {
    if (!Number.isFinite(z)) throw new RangeError(`logits[${i}] = ${z}: logits must be finite`);
  });
  const min = search.min ?? 0.05;
  const max = search.max ?? 20;
  const tol = search.tolerance ?? 1e-6;
  if (!(min > 0 && max > min)) throw new RangeError(`fitTemperature: need 0 < min < max, got ${min}, ${max}`);

  const f = (u: number) => temperatureNll(logits, labels, Math.exp(u));
  let a = Math.log(min);
  let b = Math.log(max);
  let c = b - GOLDEN * (b - a);
  let d = a + GOLDEN * (b - a);
  let fc = f(c);
  let fd = f(d);
  while (b - a > tol) {
    if (fc <= fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - GOLDEN * (b - a);
      fc = f(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + GOLDEN * (b - a);
      fd = f(d);
    }
  }
  return Math.exp((a + b) / 2);
}

/** Rescales a probability by temperature T via its logit: sigmoid(logit(p) / T). */
export function applyTemperature(prob: number, temperature: number): number;
export function applyTemperature(probs: readonly number[], temperature: number): number[];
export function applyTemperature(p: number | readonly number[], temperature: number): number | number[] {
  if (!(temperature > 0 && Number.isFinite(temperature)))
    throw new RangeError(`temperature must be > 0, got ${temperature}`);
  const one = (q: number) => (temperature === 1 ? q : sigmoid(logit(q) / temperature));
  return typeof p === 'number' ? one(p) : p.map(one);
}
