// The weight manifest of a TF.js model.json (its `weightsManifest`): which weight files a model folder holds,
// and each weight's name, shape and dtype in them. One zod schema for every reader (loading a model, hashing
// and copying an ensemble's members, verifying a backbone's files, a checkpoint's optimiser slots), so that a
// hand-edited or foreign model.json is refused naming the file and what is wrong, not met deep inside TF.js
// as a TypeError. Reading the file itself is models/io.ts's readWeightsManifest.
import * as path from 'node:path';
import { z } from 'zod';

/** One weight as TF.js describes it (tf.io.WeightsManifestEntry). */
export const WeightSpec = z.object({
  name: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  dtype: z.enum(['float32', 'int32', 'bool', 'string', 'complex64']),
  group: z.enum(['model', 'optimizer']).optional(),
  /** A weight stored narrower than its dtype (a float16 model folder: models/weights_float16.ts). */
  quantization: z
    .object({
      scale: z.number().optional(),
      min: z.number().optional(),
      dtype: z.enum(['uint16', 'uint8', 'float16']),
    })
    .optional(),
});
export type WeightSpec = z.infer<typeof WeightSpec>;

/** The message of WeightPath's refinement, told apart from the other issues in the error. */
const OUTSIDE = 'names a weight file outside its folder';

/**
 * A weight file's name as model.json gives it: relative and inside the folder. A model folder is copied,
 * hashed and served as a whole, so a name that leaves it would read (or copy) some other file.
 */
const WeightPath = z
  .string()
  .min(1)
  .refine((f) => !path.isAbsolute(f) && !f.split(/[\\/]/).includes('..'), OUTSIDE);

export const WeightsManifest = z.array(z.object({ paths: z.array(WeightPath), weights: z.array(WeightSpec) }));
export type WeightsManifest = z.infer<typeof WeightsManifest>;

/**
 * The weight manifest of the parsed model.json `file`, or an error naming the file, what is wrong with it
 * and `remedy`, what to do.
 */
export function parseWeightsManifest(json: unknown, file: string, remedy: string): WeightsManifest {
  const manifest = (json as { weightsManifest?: unknown } | null)?.weightsManifest;
  if (manifest === undefined) throw new Error(`${file}: not a TF.js model.json (it has no weightsManifest): ${remedy}`);
  const r = WeightsManifest.safeParse(manifest);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  if (issue.message === OUTSIDE) {
    const named = issue.path.reduce<unknown>((v, k) => (v as Record<PropertyKey, unknown>)[k], manifest);
    throw new Error(`${file} ${OUTSIDE}: ${String(named)}: ${remedy}`);
  }
  const where = ['weightsManifest', ...issue.path].join('.');
  throw new Error(`${file}: not a TF.js model.json (${where}: ${issue.message}): ${remedy}`);
}

/** Every weight file the manifest names, in order (their bytes, joined, are the weights in spec order). */
export const weightFilesOf = (manifest: WeightsManifest): string[] => manifest.flatMap((g) => g.paths);

/** Bytes one weight takes in the weight files (a quantised weight is stored at its quantised width). */
export function weightBytes(s: WeightSpec): number {
  const width: Record<string, number> = { float32: 4, int32: 4, bool: 1, float16: 2, uint16: 2, uint8: 1 };
  const dtype = s.quantization?.dtype ?? s.dtype;
  return s.shape.reduce((n, d) => n * d, 1) * (width[dtype] ?? 4);
}

/** Bytes all of `specs` take in their weight files. */
export const specsBytes = (specs: readonly WeightSpec[]): number => specs.reduce((n, s) => n + weightBytes(s), 0);
