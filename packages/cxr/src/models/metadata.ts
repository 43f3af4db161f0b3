// cxr.json: everything needed to use a saved model besides its weights. Read with zod because a
// model folder can come from anywhere.
import { z } from 'zod';
import { NORMALIZE_MODES } from '../data/preprocess';

export const MODEL_FORMAT = 'cxr-model/1';

export const OperatingPoint = z.object({
  threshold: z.number().min(0).max(1),
  sensitivity: z.number().nullable().optional(),
  specificity: z.number().nullable().optional(),
});

/** Where a model came from when it was adapted to a site's unlabeled films (`cxr adapt`). */
export const Adaptation = z.looseObject({
  /** 'adabn': batch-norm statistics re-estimated on the site's films; 'prior-em': class prior re-estimated too. */
  method: z.array(z.enum(['adabn', 'prior-em'])).min(1),
  films: z.object({
    used: z.number().int().nonnegative(),
    /** Flagged by the OOD gate or the image checks, left out. */
    rejected: z.number().int().nonnegative(),
    /** Files that are not a readable JPEG, PNG or DICOM image. */
    unreadable: z.number().int().nonnegative(),
  }),
  /** sha256 over the sorted sha256s of the films used: which films the statistics came from. */
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
  date: z.string(),
  source: z.object({ name: z.string(), version: z.string(), sha256: z.string() }),
  /** Batch-norm layers re-estimated (all members together). */
  bnLayers: z.number().int().nonnegative(),
  /** With prior-em: P(PNEUMONIA) the calibration assumed and the one estimated on the site. */
  prior: z.object({
    train: z.number().gt(0).lt(1),
    trainFrom: z.string(),
    site: z.number().gt(0).lt(1),
    /** log-odds(site) - log-odds(train): added to every logit before the thresholds. */
    logitShift: z.number(),
    iterations: z.number().int().nonnegative(),
    /** The operating points before the shift (validation-chosen). */
    thresholdsBefore: z.record(z.string(), z.number()),
  }).optional(),
});
export type Adaptation = z.infer<typeof Adaptation>;

/** The members of an ensemble made by `cxr ensemble` (inference averages their logits). */
export const EnsembleRecord = z.looseObject({
  method: z.literal('mean-logit'),
  members: z.array(z.object({
    dir: z.string(),
    from: z.string(),
    name: z.string(),
    version: z.string(),
    arch: z.string(),
    sha256: z.string(),
    validationAuc: z.number().nullable(),
  })).min(1),
});
export type EnsembleRecord = z.infer<typeof EnsembleRecord>;

export const ModelMeta = z.looseObject({
  format: z.literal(MODEL_FORMAT),
  name: z.string(),
  version: z.string(),
  arch: z.string(),
  inputSize: z.number().int().positive(),
  /** How pixels become model input: grayscale, squashed to inputSize x inputSize, scaled to [0,1]. */
  preprocessing: z.looseObject({
    resize: z.literal('fill'),
    scale: z.number().positive(),
    /** Per-image intensity normalisation after the resize (data/preprocess.ts); absent = 'none'. */
    normalize: z.enum(NORMALIZE_MODES).optional(),
  }),
  classNames: z.tuple([z.string(), z.string()]),
  /** Temperature for calibration: p = sigmoid(logit(p_raw) / T). */
  temperature: z.number().positive().default(1),
  operatingPoints: z.record(z.string(), OperatingPoint),
  defaultOperatingPoint: z.string(),
  /** Test-time augmentation used by predict (averaged in logit space). */
  tta: z.array(z.string()).default([]),
  /** Sub-folders holding ensemble members (each a TF.js Layers model); [] = the folder itself. */
  members: z.array(z.string()).default([]),
  recipe: z.record(z.string(), z.unknown()).default({}),
  data: z.record(z.string(), z.unknown()).default({}),
  validation: z.record(z.string(), z.unknown()).optional(),
  /**
   * How temperature and operating points were chosen: on the validation films ('validation'), or on
   * them pooled with mildly changed copies ('validation+shifts', train/calibrate.ts). Absent = 'validation'.
   */
  calibration: z.looseObject({ method: z.enum(['validation', 'validation+shifts']) }).optional(),
  adaptation: Adaptation.optional(),
  ensemble: EnsembleRecord.optional(),
  createdAt: z.string(),
});
export type ModelMeta = z.infer<typeof ModelMeta>;

export function parseMeta(json: unknown, where: string): ModelMeta {
  const r = ModelMeta.safeParse(json);
  if (!r.success) throw new Error(`${where}: not a valid cxr.json: ${z.prettifyError(r.error)}`);
  return r.data;
}
