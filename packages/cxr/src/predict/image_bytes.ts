// What Predictor.predict and Predictor.screen accept as an image: the file's bytes, checked at the library's
// edge so that a program passing a path or an ArrayBuffer learns its own mistake in words.
import { types } from 'node:util';

/**
 * What a caller passed, in words: its type (a string with its first 40 characters when `quote`; a value that
 * may be patient data, such as an age, is described by its length only).
 */
export function describe(v: unknown, quote = true): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'string' && !quote) return `a string (${v.length} character${v.length === 1 ? '' : 's'}, not shown)`;
  if (typeof v === 'string') return `a string (${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)})`;
  if (typeof v !== 'object') return `a ${typeof v}`;
  if (types.isArrayBuffer(v)) return 'an ArrayBuffer';
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  return `an object (${(v as object).constructor?.name ?? 'without a prototype'})`;
}

/**
 * The bytes of the image file, as Buffer (a Uint8Array is viewed without a copy). Anything else is the
 * calling program's mistake, not the image's, so a TypeError rather than an InputError (which a program
 * would count as an unreadable film): a path string is not read, an ArrayBuffer is not guessed at.
 */
export function imageBytes(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  // types.isUint8Array, not instanceof: a Uint8Array made in another realm (a vm context, a Jest test's globals)
  // is no instance of this realm's class, and was refused as "expected ... a Uint8Array, got a Uint8Array".
  if (types.isUint8Array(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  const hint =
    typeof v === 'string'
      ? ': read the file first, e.g. fs.readFileSync(path)'
      : types.isArrayBuffer(v)
        ? ': wrap it, e.g. new Uint8Array(arrayBuffer)'
        : '';
  throw new TypeError(
    `Predictor: expected the image file's bytes as a Buffer or Uint8Array, got ${describe(v)}${hint}`,
  );
}
