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
  createdAt: z.string(),
});
export type ModelMeta = z.infer<typeof ModelMeta>;

export function parseMeta(json: unknown, where: string): ModelMeta {
  const r = ModelMeta.safeParse(json);
  if (!r.success) throw new Error(`${where}: not a valid cxr.json: ${z.prettifyError(r.error)}`);
  return r.data;
}
