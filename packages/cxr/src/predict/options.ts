// The options of Predictor.load and Predictor.predict, and their check at the library's edge: a JavaScript
// program's `{ oodPolicy: 'maybe' }` or `{ heatmap: 'no' }` is refused in words instead of quietly meaning
// something else ('maybe' read as warn, the string 'no' as a yes).
import { z } from 'zod';
import type { DecodeLimits } from '../data/decode';
import type { InputDecoder } from './decode_input';
import type { ModelMeta } from '../models/metadata';
import { InputError } from './errors';
import { describe } from './image_bytes';
import { isStatedAge, STATED_AGE_RANGE } from './verdict';

export interface PredictOptions {
  operatingPoint?: string;
  heatmap?: boolean;
  thumbnail?: boolean;
  /**
   * The patient's age in years, for a film whose header has none (JPEG, PNG): under 1 or over 10,
   * outside-population.
   */
  patientAge?: number;
}

export type OodPolicy = 'warn' | 'refuse';

export interface PredictorOptions {
  /** 'warn' (default): OOD findings become warnings; 'refuse': they are an InputError (422). */
  oodPolicy?: OodPolicy;
  limits?: Partial<DecodeLimits>;
  /** Skip the warm-up run (tests that time the first call, or that load many predictors). */
  warmUp?: boolean;
  /** Decodes uploads elsewhere (the server: a worker pool, so decoding never blocks its event loop). */
  decoder?: InputDecoder;
}

const BOOLEAN = { error: 'must be true or false' };
const LIMIT = z.number({ error: 'must be a number' }).positive({ error: 'must be a positive number' });

// Unknown keys pass: a TypeScript caller may hand over a wider object, and the server's own options do.
const PredictorOptionsSchema = z.object({
  oodPolicy: z.enum(['warn', 'refuse'], { error: "must be 'warn' or 'refuse'" }).optional(),
  limits: z
    .object({ maxInputBytes: LIMIT.optional(), maxPixels: LIMIT.optional() }, { error: 'must be an object' })
    .optional(),
  warmUp: z.boolean(BOOLEAN).optional(),
  decoder: z.custom<InputDecoder>((v) => typeof v === 'function', { error: 'must be a function' }).optional(),
});

// patientAge is checked by the predictor itself (BAD_PATIENT_AGE, in the words of the age range).
const PredictOptionsSchema = z.object({
  operatingPoint: z.string({ error: "must be a string (an operating point's name)" }).optional(),
  heatmap: z.boolean(BOOLEAN).optional(),
  thumbnail: z.boolean(BOOLEAN).optional(),
});

/** The first problem of `opts` against `schema`, in words ("oodPolicy must be 'warn' or 'refuse', got ..."). */
function problem(schema: z.ZodType, opts: unknown): string | null {
  if (opts === undefined) return null;
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts))
    return `the options must be an object, got ${describe(opts)}`;
  const r = schema.safeParse(opts);
  if (r.success) return null;
  const issue = r.error.issues[0];
  let got: unknown = opts;
  for (const key of issue.path) got = (got as Record<PropertyKey, unknown>)?.[key as PropertyKey];
  return `option ${issue.path.join('.')} ${issue.message}, got ${describe(got)}`;
}

/** Refuses Predictor.load's options that are not what PredictorOptions says: a TypeError (the program's fault). */
export function checkPredictorOptions(opts: unknown): void {
  const p = problem(PredictorOptionsSchema, opts);
  if (p) throw new TypeError(`Predictor.load: ${p}`);
}

/** Refuses predict()'s options that are not what PredictOptions says: an InputError BAD_OPTION (400). */
export function checkPredictOptions(opts: unknown): void {
  const p = problem(PredictOptionsSchema, opts);
  if (p) throw new InputError('BAD_OPTION', `predict: ${p}`);
}

/**
 * The operating point `name` (default: the model's) of a model, or an InputError UNKNOWN_OPERATING_POINT naming
 * the ones it has: for predict(), and for a batch before any file.
 */
export function operatingPointOf(meta: ModelMeta, name = meta.defaultOperatingPoint) {
  const op = Object.hasOwn(meta.operatingPoints, name) ? meta.operatingPoints[name] : undefined;
  if (!op) {
    throw new InputError(
      'UNKNOWN_OPERATING_POINT',
      `unknown operating point '${name}' (this model has: ${Object.keys(meta.operatingPoints).join(', ')})`,
    );
  }
  return { name, op };
}

/** Refuses a stated patient age outside the accepted range: an InputError BAD_PATIENT_AGE (predict(), a batch). */
export function checkPatientAge(age: unknown): void {
  if (age === undefined || (typeof age === 'number' && isStatedAge(age))) return;
  // A string such as "7" is named as one, by its length only (it may be patient data): "got 7" would read as valid.
  const got = typeof age === 'number' ? String(age) : `${describe(age, false)}; give the number itself`;
  throw new InputError(
    'BAD_PATIENT_AGE',
    `patient age must be a number of years from ${STATED_AGE_RANGE.min} to ${STATED_AGE_RANGE.max}, got ${got}`,
  );
}
