// The JSON that evaluate() writes to metrics/<split>.json. Also used to read those files back,
// since a run directory may have been produced by another version of the tool.
import { z } from 'zod';

const Interval = z.tuple([z.number(), z.number()]);
const Rate = z.number().min(0).max(1);

export const Confusion = z.object({
  tp: z.number().int().nonnegative(),
  fp: z.number().int().nonnegative(),
  tn: z.number().int().nonnegative(),
  fn: z.number().int().nonnegative(),
});
export type Confusion = z.infer<typeof Confusion>;

/**
 * Rates that need a class which is absent (e.g. sensitivity without any pneumonia case) are null,
 * never NaN, and `notes` says why.
 */
export const Metrics = z.looseObject({
  n: z.number().int().nonnegative(),
  accuracy: Rate,
  sensitivity: Rate.nullable(),
  specificity: Rate.nullable(),
  precision: Rate.nullable(),
  f1: Rate.nullable(),
  auc: Rate.nullable(),
  pr_auc: Rate.nullable(),
  brier: Rate,
  ece: Rate,
  threshold: Rate,
  confusion: Confusion,
  ci95: z.object({
    accuracy: Interval,
    sensitivity: Interval.nullable(),
    specificity: Interval.nullable(),
    auc: Interval.nullable(),
  }),
  notes: z.array(z.string()).optional(),
});
export type Metrics = z.infer<typeof Metrics>;

export function parseMetrics(json: unknown, where: string): Metrics {
  const r = Metrics.safeParse(json);
  if (!r.success) throw new Error(`${where}: not a metrics file: ${z.prettifyError(r.error)}`);
  return r.data;
}

/**
 * The model an evaluation that `cxr evaluate --out` stored was made with, recorded in its metrics and predictions
 * files (files of earlier versions have none): `sha256` is the model's identity (models/io.ts modelIdentity),
 * which a folder's report and `cxr calibrate` compare with the folder's own model before taking it as its own.
 */
export const EvaluatedModel = z.object({ name: z.string(), version: z.string(), sha256: z.string() });
export type EvaluatedModel = z.infer<typeof EvaluatedModel>;

/** The model a stored evaluation file records; null where it records none (or none that can be read). */
export function evaluatedModel(json: unknown): EvaluatedModel | null {
  if (typeof json !== 'object' || json === null || !('model' in json)) return null;
  const r = EvaluatedModel.safeParse(json.model);
  return r.success ? r.data : null;
}

/** A recorded model in words: its name and version, and the start of its sha256 where names alone may agree. */
export function describeModel(m: EvaluatedModel): string {
  return `${m.name} ${m.version} (sha256 ${m.sha256.slice(0, 12)}…)`;
}

/**
 * The files of the evaluated folders that no reader could read, as `cxr evaluate` lists them under `unreadable`:
 * in no count or metric, so a stored evaluation that records them lets its report say what it left out.
 */
export const UnreadableFiles = z.object({
  count: z.number().int().nonnegative(),
  files: z.array(z.object({ file: z.string(), error: z.string() })),
});
export type UnreadableFiles = z.infer<typeof UnreadableFiles>;

/** The unreadable files a stored evaluation file records; null where it records none (or none that can be read). */
export function storedUnreadable(json: unknown): UnreadableFiles | null {
  if (typeof json !== 'object' || json === null || !('unreadable' in json)) return null;
  const r = UnreadableFiles.safeParse(json.unreadable);
  return r.success ? r.data : null;
}

/**
 * The films of an evaluation the prediction pipeline would set aside, as `cxr evaluate` lists them under
 * `setAside`: read and scored (in the headline numbers, not in the assessed films' metrics), each with the status
 * `cxr predict` would give it (or 'refused': an input error) and its reasons in `cxr predict`'s words.
 */
export const SetAsideFiles = z.object({
  count: z.number().int().nonnegative(),
  files: z.array(
    z.object({
      file: z.string(),
      status: z.enum(['cannot-assess', 'outside-population', 'refused']),
      reasons: z.array(z.string()),
    }),
  ),
});
export type SetAsideFiles = z.infer<typeof SetAsideFiles>;

/** The set-aside films a stored evaluation file records; null where it records none (files of earlier versions). */
export function storedSetAside(json: unknown): SetAsideFiles | null {
  if (typeof json !== 'object' || json === null || !('setAside' in json)) return null;
  const r = SetAsideFiles.safeParse(json.setAside);
  return r.success ? r.data : null;
}

/**
 * Which films and which operating point a stored evaluation is of, as `cxr evaluate --out` records them: `source`
 * is the evaluated folder's real path and split ("/data/site-a (all)"), so that an evaluation of other films is
 * not written over one under the same name, and the folder's report can say what each split shows.
 */
export const EvaluationOrigin = z.object({
  source: z.string().optional().catch(undefined),
  operatingPoint: z.string().optional().catch(undefined),
});
export type EvaluationOrigin = z.infer<typeof EvaluationOrigin>;

/** The origin a stored evaluation file records (each field absent where it records none or an unreadable one). */
export function storedOrigin(json: unknown): EvaluationOrigin {
  const r = EvaluationOrigin.safeParse(typeof json === 'object' && json !== null ? json : {});
  return r.success ? r.data : {};
}
