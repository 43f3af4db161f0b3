// The figures of one robustness row (a change at a strength, against the clean scores of the
// same images) and the summary over all perturbed rows, plus the schema of robustness.json so that
// a file read back (e.g. by the experiments comparison) is checked before it is trusted.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { confusionAt, ECE_BINS, expectedCalibrationError, rocAuc } from '../eval/metrics';

// The ECE here is `cxr evaluate`'s (eval/metrics.ts, ECE_BINS), so the benchmark's clean row, the validation
// ECE and the model card agree; the bins are recorded in robustness.json because results written before
// 2026-12-05 used 15 and are not comparable with evaluate's.
export { ECE_BINS };
/** The bins of results that do not record theirs (written before 2026-12-05). */
export const LEGACY_ECE_BINS = 15;

export const RobustnessRow = z.object({
  change: z.string(),
  strength: z.number().min(0).max(1),
  /** The underlying parameter in words ("gamma 1.50"); "none" on the clean row. */
  parameter: z.string(),
  auc: z.number().nullable(),
  sensitivity: z.number().nullable(),
  specificity: z.number().nullable(),
  /** Mean of (perturbed − clean) probability over the NORMAL images; positive = towards pneumonia. */
  normalScoreShift: z.number().nullable(),
  pneumoniaScoreShift: z.number().nullable(),
  /**
   * Mean predicted probability over the NORMAL (PNEUMONIA) images, as the outside check reports it, so the clean
   * row stands beside that check; absent in results written before 2026-12-07.
   */
  meanNormalScore: z.number().nullable().optional(),
  meanPneumoniaScore: z.number().nullable().optional(),
  ece: z.number(),
  n: z.number().int().positive(),
});
export type RobustnessRow = z.infer<typeof RobustnessRow>;

export const RobustnessSummary = z.object({
  cleanSpecificity: z.number().nullable(),
  /** Mean specificity over all perturbed rows ("robust specificity"). */
  robustSpecificity: z.number().nullable(),
  /** Mean sensitivity over all perturbed rows; absent in results written before it was added. */
  robustSensitivity: z.number().nullable().optional(),
  worstSpecificity: z.object({ value: z.number(), change: z.string(), strength: z.number() }).nullable(),
  /** Clean specificity minus the robust specificity. */
  meanSpecificityDrop: z.number().nullable(),
  cleanAuc: z.number().nullable(),
  meanAuc: z.number().nullable(),
  worstAuc: z.object({ value: z.number(), change: z.string(), strength: z.number() }).nullable(),
  meanEce: z.number(),
  meanNormalScoreShift: z.number().nullable(),
  meanPneumoniaScoreShift: z.number().nullable(),
  perturbedRows: z.number().int().nonnegative(),
});
export type RobustnessSummary = z.infer<typeof RobustnessSummary>;

const meanOf = (xs: readonly number[]): number | null => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

/** Mean of (probs − clean) over the cases with `label`; null when there are none. */
function shift(
  labels: readonly number[],
  probs: readonly number[],
  clean: readonly number[],
  label: number,
): number | null {
  return meanOf(labels.flatMap((y, i) => (y === label ? [probs[i] - clean[i]] : [])));
}

export function rowMetrics(
  labels: readonly number[],
  probs: readonly number[],
  clean: readonly number[],
  threshold: number,
): Omit<RobustnessRow, 'change' | 'strength' | 'parameter'> {
  const c = confusionAt(labels, probs, threshold);
  return {
    auc: rocAuc(labels, probs),
    sensitivity: c.tp + c.fn > 0 ? c.tp / (c.tp + c.fn) : null,
    specificity: c.tn + c.fp > 0 ? c.tn / (c.tn + c.fp) : null,
    normalScoreShift: shift(labels, probs, clean, 0),
    pneumoniaScoreShift: shift(labels, probs, clean, 1),
    meanNormalScore: meanOf(labels.flatMap((y, i) => (y === 0 ? [probs[i]] : []))),
    meanPneumoniaScore: meanOf(labels.flatMap((y, i) => (y === 1 ? [probs[i]] : []))),
    ece: expectedCalibrationError(labels, probs),
    n: labels.length,
  };
}

function worst(rows: readonly RobustnessRow[], key: 'specificity' | 'auc'): RobustnessSummary['worstSpecificity'] {
  let best: RobustnessSummary['worstSpecificity'] = null;
  for (const r of rows) {
    const v = r[key];
    if (v !== null && (best === null || v < best.value)) best = { value: v, change: r.change, strength: r.strength };
  }
  return best;
}

/** Summary over the perturbed rows (strength > 0), against the clean row. */
export function summarise(rows: readonly RobustnessRow[]): RobustnessSummary {
  const clean = rows.find((r) => r.strength === 0);
  const perturbed = rows.filter((r) => r.strength > 0);
  const values = (key: 'specificity' | 'sensitivity' | 'auc' | 'normalScoreShift' | 'pneumoniaScoreShift') =>
    perturbed.flatMap((r) => (r[key] === null ? [] : [r[key] as number]));
  const robustSpecificity = meanOf(values('specificity'));
  return {
    cleanSpecificity: clean?.specificity ?? null,
    robustSpecificity,
    robustSensitivity: meanOf(values('sensitivity')),
    worstSpecificity: worst(perturbed, 'specificity'),
    meanSpecificityDrop:
      clean?.specificity != null && robustSpecificity !== null ? clean.specificity - robustSpecificity : null,
    cleanAuc: clean?.auc ?? null,
    meanAuc: meanOf(values('auc')),
    worstAuc: worst(perturbed, 'auc'),
    meanEce: meanOf(perturbed.map((r) => r.ece)) ?? 0,
    meanNormalScoreShift: meanOf(values('normalScoreShift')),
    meanPneumoniaScoreShift: meanOf(values('pneumoniaScoreShift')),
    perturbedRows: perturbed.length,
  };
}

export const OutsideCheck = z.object({
  data: z.string(),
  n: z.number().int().positive(),
  /** How many of the n films are NORMAL; absent in results written before it was added. */
  normal: z.number().int().nonnegative().optional(),
  auc: z.number().nullable(),
  sensitivity: z.number().nullable(),
  specificity: z.number().nullable(),
  ece: z.number(),
  meanNormalScore: z.number().nullable(),
  meanPneumoniaScore: z.number().nullable(),
});
export type OutsideCheck = z.infer<typeof OutsideCheck>;

export const RobustnessResult = z.object({
  format: z.literal('cxr-robustness/1'),
  model: z.object({ name: z.string(), version: z.string(), sha256: z.string(), dir: z.string() }),
  data: z.object({
    path: z.string(),
    source: z.string(),
    n: z.number(),
    normal: z.number(),
    pneumonia: z.number(),
    /** The benchmark's films, relative to `path` (absolute where a film lies outside it). */
    files: z.array(z.string()),
    /** Files not drawn from (robustness reads JPEG and PNG only), relative as `files`; absent in older results. */
    leftOut: z.array(z.object({ file: z.string(), reason: z.string() })).optional(),
    /** `--limit`: images per class at most, 0 = all; absent in results written before 2026-12-07. */
    limit: z.number().int().nonnegative().optional(),
  }),
  operatingPoint: z.object({ name: z.string(), threshold: z.number() }),
  tta: z.array(z.string()),
  seed: z.union([z.number(), z.string()]),
  /** Equal-width bins of every `ece` here; absent in results written before 2026-12-05 (LEGACY_ECE_BINS). */
  eceBins: z.number().int().positive().optional(),
  rows: z.array(RobustnessRow),
  summary: RobustnessSummary,
  /** Clean metrics on Kaggle's val folder; null when it is absent or is the benchmark's own data. */
  outside: OutsideCheck.nullable(),
  seconds: z.number(),
  createdAt: z.string(),
});
export type RobustnessResult = z.infer<typeof RobustnessResult>;

/**
 * `<runDir>/robustness.json` or `<runDir>/robustness/robustness.json`; null when neither exists.
 * A file that exists but does not parse is an error naming it.
 */
export function readRobustnessResult(runDir: string): RobustnessResult | null {
  for (const file of [path.join(runDir, 'robustness.json'), path.join(runDir, 'robustness', 'robustness.json')]) {
    if (!fs.existsSync(file)) continue;
    let json: unknown;
    try {
      json = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new Error(`${file}: not JSON (${(e as Error).message})`);
    }
    const parsed = RobustnessResult.safeParse(json);
    if (!parsed.success) throw new Error(`${file}: not a robustness result: ${z.prettifyError(parsed.error)}`);
    const r = parsed.data;
    // Results written before robust sensitivity was summarised still hold the rows it is the mean of.
    if (r.summary.robustSensitivity === undefined) r.summary.robustSensitivity = summarise(r.rows).robustSensitivity;
    // Results written before the bins were recorded used 15 (their ECE cannot be recomputed from the rows).
    r.eceBins ??= LEGACY_ECE_BINS;
    return r;
  }
  return null;
}

/** Whether a result's ECE figures are `cxr evaluate`'s (same bins), so they may stand beside a validation ECE. */
export function eceComparable(r: RobustnessResult): boolean {
  return (r.eceBins ?? LEGACY_ECE_BINS) === ECE_BINS;
}

/** The summary of the run folder's robustness result (readRobustnessResult); null when it has none. */
export function readRobustnessSummary(runDir: string): RobustnessSummary | null {
  return readRobustnessResult(runDir)?.summary ?? null;
}
