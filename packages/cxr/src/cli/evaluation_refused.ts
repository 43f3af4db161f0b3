// runEvaluation's own refusals (`cxr evaluate`, `cxr compare`, a program's call) as one error class with a code a
// program can branch on, as a model folder's (ModelLoadError) and a data folder's (DatasetLayoutError) have.

/**
 * Why runEvaluation refused, before any film was scored except where said:
 * - UNKNOWN_OPERATING_POINT: `operatingPoint` is not one of the model's (the message names those it has);
 * - NOT_A_TRAINING_ROOT: `split: 'validation'` (the model's own validation split) on a folder without train/;
 * - OUT_OTHER_MODEL: `out` holds another model's cxr.json (its report would show the evaluation as that model's);
 * - OUT_MODEL_UNREADABLE: `out` holds a cxr.json that cannot be read, so whose folder it is cannot be told;
 * - OUT_OTHER_EVALUATION: `out` holds, under the same name, an evaluation of other films, or of these films by
 *   another model: `overwrite: true` replaces it;
 * - NO_READABLE_IMAGES: none of the split's films could be read (after reading them: `unreadable` is not returned,
 *   the message gives the first reason).
 */
export type EvaluationRefusedCode =
  | 'UNKNOWN_OPERATING_POINT'
  | 'NOT_A_TRAINING_ROOT'
  | 'OUT_OTHER_MODEL'
  | 'OUT_MODEL_UNREADABLE'
  | 'OUT_OTHER_EVALUATION'
  | 'NO_READABLE_IMAGES';

/** An evaluation runEvaluation would not make; `message` says why and what to give instead. */
export class EvaluationRefused extends Error {
  constructor(
    readonly code: EvaluationRefusedCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EvaluationRefused';
  }
}
