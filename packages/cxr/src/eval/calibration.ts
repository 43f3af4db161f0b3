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

/** fitTemperature's default search range. */
export const TEMPERATURE_RANGE = { min: 0.05, max: 20 } as const;

/**
 * A note for the log when a fitted temperature sits on a bound of TEMPERATURE_RANGE (null otherwise): the
 * fit was cut short there, so the probabilities are not the NLL optimum, and the user should know why.
 */
export function temperatureBoundNote(temperature: number): string | null {
  const at = (bound: number) => Math.abs(Math.log(temperature / bound)) < 1e-3;
  if (at(TEMPERATURE_RANGE.max))
    return (
      `note: the temperature reached its upper bound T=${TEMPERATURE_RANGE.max}: the validation scores hardly ` +
      'separate the classes, so every calibrated probability stays near the middle (an undertrained model?)'
    );
  if (at(TEMPERATURE_RANGE.min))
    return (
      `note: the temperature reached its lower bound T=${TEMPERATURE_RANGE.min}: the validation films are ` +
      'separated (almost) perfectly, so the fit wanted sharper probabilities than the bound allows; more ' +
      'validation films (--val-fraction) give a fit that is not cut short'
    );
  return null;
}

/**
 * Fits T > 0 minimising the validation NLL. The NLL is convex in 1/T, hence unimodal in log T,
 * so a golden-section search on log T finds the minimum without gradients or a learning rate.
 */
export function fitTemperature(
  logits: readonly number[],
  labels: readonly number[],
  search: TemperatureSearch = {},
): number {
  checkFitInput('fitTemperature', logits, labels);
  const min = search.min ?? TEMPERATURE_RANGE.min;
  const max = search.max ?? TEMPERATURE_RANGE.max;
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

// Platt scaling (Platt 1999): p = sigmoid(z / T + b), a slope and a bias on the logit. Temperature
// alone keeps z = 0 at p = 0.5; a training set balanced by oversampling puts that point where the
// validation split (74 % pneumonia) does not, and a bias corrects the level a temperature cannot.

/** How a logit becomes a calibrated probability: sigmoid(logit / temperature + bias). */
export interface LogitCalibration {
  temperature: number;
  bias: number;
}

function checkFitInput(name: string, logits: readonly number[], labels: readonly number[]): void {
  if (logits.length !== labels.length || logits.length === 0) {
    throw new RangeError(
      `${name}: need equally long, non-empty logits and labels (${logits.length}, ${labels.length})`,
    );
  }
  labels.forEach((y, i) => {
    if (y !== 0 && y !== 1) throw new RangeError(`labels[${i}] = ${y}: labels must be 0 or 1`);
  });
  logits.forEach((z, i) => {
    if (!Number.isFinite(z)) throw new RangeError(`logits[${i}] = ${z}: logits must be finite`);
  });
}

/** Mean cross-entropy of sigmoid(a z + b) against (soft) targets t. */
function plattNll(z: readonly number[], t: readonly number[], a: number, b: number): number {
  let sum = 0;
  for (let i = 0; i < z.length; i++) {
    const u = a * z[i] + b;
    sum += Math.max(u, 0) - t[i] * u + Math.log1p(Math.exp(-Math.abs(u)));
  }
  return sum / z.length;
}

/**
 * Fits slope and bias by damped Newton steps on the cross-entropy. Targets are Platt's
 * (N₊+1)/(N₊+2) and 1/(N₋+2) rather than 1 and 0: on a validation split the model nearly
 * separates, hard targets have no finite optimum (the slope would grow without bound).
 * Starts from the temperature fit, so the result is never worse than temperature alone on the
 * smoothed targets. A slope that is not positive would invert the ranking: then the bias is 0.
 */
export function fitPlatt(logits: readonly number[], labels: readonly number[]): LogitCalibration {
  checkFitInput('fitPlatt', logits, labels);
  const pos = labels.reduce((s, y) => s + y, 0);
  const neg = labels.length - pos;
  const t = labels.map((y) => (y === 1 ? (pos + 1) / (pos + 2) : 1 / (neg + 2)));
  let a = 1 / fitTemperature(logits, labels);
  let b = 0;
  let f = plattNll(logits, t, a, b);
  for (let it = 0; it < 100; it++) {
    let ga = 0;
    let gb = 0;
    let haa = 0;
    let hab = 0;
    let hbb = 0;
    for (let i = 0; i < logits.length; i++) {
      const p = sigmoid(a * logits[i] + b);
      const r = p - t[i];
      const w = Math.max(p * (1 - p), 1e-12);
      ga += r * logits[i];
      gb += r;
      haa += w * logits[i] * logits[i];
      hab += w * logits[i];
      hbb += w;
    }
    const det = haa * hbb - hab * hab;
    if (!(det > 0)) break;
    const da = (hbb * ga - hab * gb) / det;
    const db = (haa * gb - hab * ga) / det;
    let step = 1;
    let improved = false;
    while (step > 1e-6) {
      const fa = plattNll(logits, t, a - step * da, b - step * db);
      if (fa <= f) {
        a -= step * da;
        b -= step * db;
        improved = f - fa > 1e-12;
        f = fa;
        break;
      }
      step /= 2;
    }
    if (!improved || Math.hypot(step * da, step * db) < 1e-9) break;
  }
  if (!(a > 0 && Number.isFinite(a) && Number.isFinite(b)))
    return { temperature: fitTemperature(logits, labels), bias: 0 };
  return { temperature: 1 / a, bias: b };
}
