// Number arguments of the commands, parsed strictly: '1.5' epochs or 'ten' threads is an error that
// names the option (commander adds it), never quietly 1 or NaN.
import { InvalidArgumentError } from 'commander';

/** 1, 2, 3, ... */
export function positiveInt(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive integer');
  return n;
}

/** 0, 1, 2, ... (where 0 means something: no limit, no patience, the first seed). */
export function wholeNumber(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError('a whole number >= 0');
  return n;
}
