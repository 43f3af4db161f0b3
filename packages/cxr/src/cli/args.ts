// Number arguments of the commands, parsed strictly: '1.5' epochs, 'ten' threads or '1e-3x' as a learning
// rate is an error that names the option (commander adds it), never quietly 1, NaN or 0.001. Every command
// parses its numbers here, so one option's rules read the same everywhere.
import { InvalidArgumentError } from 'commander';

/**
 * A folder or file the user named on the command line that cannot be used (a model folder not there, a run not
 * finished, a --db folder missing): a configuration fault said in its own words, which name the option and what to
 * do. So a command that logs its failures (`cxr serve`, one JSON line) logs it without a stack trace, as a bug has.
 */
export class OptionError extends Error {
  readonly code = 'BAD_OPTION';
  override name = 'OptionError';
}

/** A number written in decimal, with an exponent if need be (1e-4 is a learning rate people write). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * The number `v` spells in full, or undefined: '', '3x', 'NaN', 'Infinity', and the forms Number() also
 * reads that nobody means on a command line ('0x10', '0b11', ' 5 ') spell none.
 */
function numberOf(v: string): number | undefined {
  if (!DECIMAL.test(v)) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** 1, 2, 3, ... */
export function positiveInt(v: string): number {
  const n = numberOf(v);
  if (n === undefined || !Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive integer');
  return n;
}

/** 0, 1, 2, ... (where 0 means something: no limit, no patience, the first seed). */
export function wholeNumber(v: string): number {
  const n = numberOf(v);
  if (n === undefined || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError('a whole number >= 0');
  return n;
}

/** A parser of the integers from `min` up (`what`: how the refusal says it). */
export function intAtLeast(min: number, what = `an integer ≥ ${min}`): (v: string) => number {
  return (v) => {
    const n = numberOf(v);
    if (n === undefined || !Number.isInteger(n) || n < min) throw new InvalidArgumentError(what);
    return n;
  };
}

/** A parser of the integers from `min` to `max`, both included. */
export function intInRange(min: number, max: number): (v: string) => number {
  return (v) => {
    const n = numberOf(v);
    if (n === undefined || !Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`an integer from ${min} to ${max}`);
    return n;
  };
}

/**
 * The longest delay a timer can wait (2^31 - 1 ms, about 24.8 days): Node fires a longer setTimeout after 1 ms,
 * so a poll period or a close timeout past it would poll without pause or give up at once.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** A delay in milliseconds a timer waits: 1 to MAX_TIMER_MS. */
export const timerMs = intInRange(1, MAX_TIMER_MS);

/** A delay in seconds a timer waits: > 0, at most MAX_TIMER_MS / 1000. */
export const timerSeconds = numberInRange(
  0,
  Math.floor(MAX_TIMER_MS / 1000),
  'low',
  `a positive number of seconds, at most ${Math.floor(MAX_TIMER_MS / 1000)} (about 24 days)`,
);

/** Any number > 0 (a rate, a delay in seconds). */
export function positiveNumber(v: string): number {
  const n = numberOf(v);
  if (n === undefined || n <= 0) throw new InvalidArgumentError('a positive number');
  return n;
}

/**
 * A parser of the numbers between `lo` and `hi`; `open` says which ends are excluded (a share of pneumonia
 * is strictly between 0 and 1, a strength may be 1).
 */
export function numberInRange(
  lo: number,
  hi: number,
  open: 'both' | 'low' | 'none' = 'none',
  /** How the refusal says it (default: the range in symbols). */
  said?: string,
): (v: string) => number {
  const loOut = open !== 'none';
  const hiOut = open === 'both';
  const what = said ?? `a number ${loOut ? '>' : '>='} ${lo} and ${hiOut ? '<' : '<='} ${hi}`;
  return (v) => {
    const n = numberOf(v);
    if (n === undefined || (loOut ? n <= lo : n < lo) || (hiOut ? n >= hi : n > hi))
      throw new InvalidArgumentError(what);
    return n;
  };
}

/**
 * `a:b[:c]` arguments: the fields split at ':', each parsed by its own parser (given in order, the last
 * `optional` of them may be left out). `form` is how the help writes it, e.g. 'blocks:epochs:lr'.
 */
export function colonFields(
  v: string,
  form: string,
  parsers: ((s: string) => number)[],
  optional = 0,
): (number | undefined)[] {
  const parts = v.split(':');
  if (parts.length > parsers.length || parts.length < parsers.length - optional)
    throw new InvalidArgumentError(`expected ${form}, got '${v}'`);
  const names = form.split(':');
  return parsers.map((parse, i) => {
    if (i >= parts.length) return undefined;
    try {
      return parse(parts[i]);
    } catch (e) {
      const why = e instanceof InvalidArgumentError ? e.message : String(e);
      throw new InvalidArgumentError(`${names[i] ?? `field ${i + 1}`} of ${form} must be ${why}, got '${parts[i]}'`);
    }
  });
}
