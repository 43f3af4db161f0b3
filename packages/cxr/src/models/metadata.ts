// cxr.json: everything needed to use a saved model besides its weights. Read with zod because a
// model folder can come from anywhere.
import { shiftAugmentSchema } from '../data/shift_augment';
import * as path from 'node:path';
import { z } from 'zod';
import { augmentPresetSchema } from '../data/augment';
import { NORMALIZE_MODES } from '../data/preprocess';
import { TTA_VIEWS } from './tta_views';
import { mixSchema } from '../data/mix';
import { periodBalanceSchema } from '../data/period_balance';

export const MODEL_FORMAT = 'cxr-model/1';

export const OperatingPoint = z.object({
  threshold: z.number().min(0).max(1),
  sensitivity: z.number().nullable().optional(),
  specificity: z.number().nullable().optional(),
  /** How it was chosen on validation (eval/operating_points.ts), e.g. 'youden-plateau-middle'. */
  rule: z.string().optional(),
});

/** Where `cxr adapt --prior` took the site's share of pneumonia from (adapt/prior.ts sitePrior). */
export const PRIOR_SOURCES = ['class-mix', 'confusion-matrix', 'em'] as const;

/** Where a model came from when it was adapted to a site's unlabeled films (`cxr adapt`). */
export const Adaptation = z.looseObject({
  /**
   * 'adabn-relative': batch-norm statistics moved by how the site's films differ from the model's
   * validation films (bn-reference.json); 'adabn': set to the site's own; 'prior': thresholds moved to the
   * site's class prior too ('prior-em' in folders written before the prior could come from the class mix).
   */
  method: z.array(z.enum(['adabn', 'adabn-relative', 'prior', 'prior-em'])).min(1),
  films: z.object({
    used: z.number().int().nonnegative(),
    /** Flagged by the OOD gate or the image checks, left out. */
    rejected: z.number().int().nonnegative(),
    /** Files that are not a readable JPEG, PNG or DICOM image. */
    unreadable: z.number().int().nonnegative(),
    /** Files with the same bytes as a film used, counted once (absent: none, or an older folder). */
    duplicates: z.number().int().nonnegative().optional(),
  }),
  /** sha256 over the sorted sha256s of the films used: which films the statistics came from. */
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
  date: z.string(),
  source: z.object({ name: z.string(), version: z.string(), sha256: z.string() }),
  /** The source folder's path when it was adapted (adapt/adapt.ts names it when refusing to adapt this again). */
  sourceDir: z.string().optional(),
  /** The adaptation this one replaced, when its source folder was itself adapted (plain AdaBN), as it was. */
  previous: z.looseObject({}).optional(),
  /** Batch-norm layers re-estimated (all members together). */
  bnLayers: z.number().int().nonnegative(),
  /**
   * With a reference that keeps the classes apart: the validation films' share of pneumonia, the share the
   * reference was mixed at for this site, and how it was found: the estimate before adapting, then after each
   * adaptation tried (`estimates`), and the share each was tried at (`adaptedAt`; adapt/mix_search.ts).
   */
  classMix: z
    .object({
      reference: z.number().gt(0).lt(1),
      site: z.number().gt(0).lt(1),
      how: z.enum(['estimated', 'first', 'given', 'reference']),
      estimates: z.array(z.number()).optional(),
      adaptedAt: z.array(z.number()).optional(),
      search: z.enum(['first', 'crossing', 'unsettled']).optional(),
    })
    .optional(),
  /** With prior (or prior-em): P(PNEUMONIA) the calibration assumed and the one taken for the site. */
  prior: z
    .object({
      train: z.number().gt(0).lt(1),
      trainFrom: z.string(),
      site: z.number().gt(0).lt(1),
      /** Where `site` came from (adapt/prior.ts PriorSource); absent in older folders: EM. */
      from: z.enum(PRIOR_SOURCES).optional(),
      /** log-odds(site) - log-odds(train): added to every logit before the thresholds. */
      logitShift: z.number(),
      /** EM's iterations (with `from` 'em' or absent). */
      iterations: z.number().int().nonnegative().optional(),
      /** The operating points before the shift (validation-chosen). */
      thresholdsBefore: z.record(z.string(), z.number()),
    })
    .optional(),
});
export type Adaptation = z.infer<typeof Adaptation>;

/**
 * The members of a model made by `cxr ensemble`: 'mean-logit', inference averages the logits of the
 * members kept in sub-folders; 'weight-soup', their weights were averaged into the folder's one model.
 */
export const EnsembleRecord = z.looseObject({
  method: z.enum(['mean-logit', 'weight-soup']),
  members: z
    .array(
      z.object({
        /** The member's sub-folder; null in a soup, which keeps no member. */
        dir: z.string().nullable(),
        from: z.string(),
        name: z.string(),
        version: z.string(),
        arch: z.string(),
        sha256: z.string(),
        validationAuc: z.number().nullable(),
      }),
    )
    .min(1),
  /** 'float16': the members' weights were rounded to half precision before calibration and stored so. */
  weights: z.enum(['float32', 'float16']).optional(),
});
export type EnsembleRecord = z.infer<typeof EnsembleRecord>;

/** A test-time view's name; anything else is refused when cxr.json or a recipe is read. */
export const TtaViewName = z.enum(TTA_VIEWS);

// The records below are what a training run writes. They are loose (unknown keys are kept) and
// every field is optional, because older cxr.json files lack some and an ensemble records none
// of its own recipe; a field that is present must have its type.
const num = z.number().optional();
const rate = z.number().nullable().optional();
const Counts = z.looseObject({ n: num, normal: num, pneumonia: num });
const Interval = z.tuple([z.number(), z.number()]).nullable().optional();

/** The training recipe as run (train/recipe.ts); `arch` is free text here: 'transfer/<backbone>' too. */
export const RecipeRecord = z.looseObject({
  arch: z.string().optional(),
  inputSize: num,
  epochs: num,
  batchSize: num,
  optimizer: z.string().optional(),
  lr: num,
  schedule: z.string().optional(),
  balance: z.string().optional(),
  augment: augmentPresetSchema.optional(),
  labelSmoothing: num,
  valFraction: num,
  seed: num,
  limitPerClass: num,
  backbone: z.string().optional(),
  tta: z.array(TtaViewName).optional(),
  splitSeed: num,
  normalize: z.enum(NORMALIZE_MODES).optional(),
  shiftAugment: shiftAugmentSchema.optional(),
  // The recipe's schema for it lives with the training loop (train/weight_average.ts), a floor above.
  weightAverage: z.looseObject({ method: z.string(), decay: z.number() }).optional(),
  mix: mixSchema.optional(),
  periodBalance: periodBalanceSchema.optional(),
  headFirst: z.looseObject({ epochs: z.number(), lr: z.number() }).optional(),
});
export type RecipeRecord = z.infer<typeof RecipeRecord>;

/** The data a model was trained and validated on: the split and the class counts. */
export const DataRecord = z.looseObject({
  root: z.string().optional(),
  fingerprint: z.string().optional(),
  valFraction: num,
  splitSeed: num,
  valSplit: z.enum(['random', 'block']).optional(),
  trainPatients: num,
  valPatients: num,
  train: Counts.optional(),
  validation: Counts.optional(),
});
export type DataRecord = z.infer<typeof DataRecord>;

/** Validation metrics at the balanced threshold (eval/metrics_schema.ts) and how training went. */
export const ValidationRecord = z.looseObject({
  n: num,
  accuracy: rate,
  sensitivity: rate,
  specificity: rate,
  precision: rate,
  f1: rate,
  auc: rate,
  pr_auc: rate,
  brier: rate,
  ece: rate,
  threshold: num,
  ci95: z.looseObject({ accuracy: Interval, sensitivity: Interval, specificity: Interval, auc: Interval }).optional(),
  bestEpoch: num,
  bestPhase: z.string().optional(),
  epochsRun: num,
  trainingSeconds: num,
});
export type ValidationRecord = z.infer<typeof ValidationRecord>;

/**
 * A member's sub-folder: relative and inside the model folder, as a weight file's name is (weights_manifest.ts).
 * A member '../other' loaded, hashed and served some other folder's model as this one's; '' was the folder itself.
 */
const MemberDir = z
  .string()
  .min(1)
  .refine(
    (m) => !path.isAbsolute(m) && !m.split(/[\\/]/).includes('..'),
    'a member is a sub-folder of the model folder',
  );

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
  /** Calibration: p = sigmoid(logit / temperature + logitBias) (temperature or Platt scaling). */
  temperature: z.number().positive().default(1),
  logitBias: z.number().default(0),
  operatingPoints: z.record(z.string(), OperatingPoint),
  defaultOperatingPoint: z.string(),
  /** Test-time augmentation used by predict (averaged in logit space). */
  tta: z.array(TtaViewName).default([]),
  /** Sub-folders holding ensemble members (each a TF.js Layers model); [] = the folder itself. */
  members: z
    .array(MemberDir)
    // Named twice, a member counted twice in the mean logit (an ensemble is built of distinct members).
    .refine((ms) => new Set(ms.map((m) => path.join(m, '.'))).size === ms.length, 'a member is named twice')
    .default([]),
  recipe: RecipeRecord.default({}),
  data: DataRecord.default({}),
  validation: ValidationRecord.optional(),
  /**
   * How temperature and operating points were chosen: on the validation films ('validation'), or on
   * them pooled with mildly changed copies ('validation+shifts', train/calibrate.ts). Absent = 'validation'.
   */
  calibration: z
    .looseObject({
      method: z.enum(['validation', 'validation+shifts']),
      /** 'temperature' (bias 0) or 'platt' (slope and bias). Absent = 'temperature'. */
      scaling: z.enum(['temperature', 'platt']).optional(),
    })
    .optional(),
  adaptation: Adaptation.optional(),
  ensemble: EnsembleRecord.optional(),
  createdAt: z.string(),
});
export type ModelMeta = z.infer<typeof ModelMeta>;

export function parseMeta(json: unknown, where: string): ModelMeta {
  const r = ModelMeta.safeParse(json);
  if (!r.success) throw new Error(`${where}: not a valid cxr.json: ${z.prettifyError(r.error)}`);
  // A default that is none of its points loaded, and then every prediction that named no point was refused as
  // the caller's mistake (UNKNOWN_OPERATING_POINT, a 400 from a server whose health said ready).
  const { defaultOperatingPoint: name, operatingPoints } = r.data;
  if (!Object.hasOwn(operatingPoints, name)) {
    throw new Error(
      `${where}: not a valid cxr.json: defaultOperatingPoint '${name}' is none of its operatingPoints ` +
        `(${Object.keys(operatingPoints).join(', ') || 'none'})`,
    );
  }
  return r.data;
}
