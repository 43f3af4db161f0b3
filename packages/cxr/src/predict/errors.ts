// The one error a caller of Predictor.predict has to expect: the input (or a request option) is
// at fault, not the system. The HTTP layer turns it into its status as it is; the batch CLI into
// a row's error column. Anything else escaping predict() is a bug.
import { DecodeError, type DecodeErrorCode } from '../data/decode';
import { DicomError, type DicomErrorCode } from '../data/dicom';
import type { VerdictReasonCode } from './verdict';

export type InputErrorCode =
  | DecodeErrorCode
  | DicomErrorCode
  | 'UNKNOWN_OPERATING_POINT'
  | 'BAD_PATIENT_AGE'
  /** An option of predict() of the wrong type or value (a JavaScript caller's `heatmap: 'no'`). */
  | 'BAD_OPTION'
  | 'NOT_A_CHEST_XRAY'
  | 'DECODE_TIMEOUT';

/**
 * The codes that fault the request's options, not the image: the HTTP API refuses such options at its
 * edge (400 INVALID_REQUEST), and /metrics never counts them as images that could not be decoded.
 */
export const REQUEST_OPTION_ERRORS: ReadonlySet<InputErrorCode> = new Set<InputErrorCode>([
  'UNKNOWN_OPERATING_POINT',
  'BAD_PATIENT_AGE',
  'BAD_OPTION',
]);

/** 400 bad request, 413 too large, 415 unsupported format, 422 readable but unusable. */
export type InputErrorStatus = 400 | 413 | 415 | 422;

const STATUS: Record<InputErrorCode, InputErrorStatus> = {
  EMPTY: 400,
  READ_FAILED: 400,
  UNKNOWN_OPERATING_POINT: 400,
  BAD_PATIENT_AGE: 400,
  BAD_OPTION: 400,
  TOO_LARGE: 413,
  TOO_MANY_PIXELS: 413,
  UNSUPPORTED_FORMAT: 415,
  NOT_DICOM: 415,
  UNSUPPORTED_TRANSFER_SYNTAX: 415,
  UNSUPPORTED_PIXEL_FORMAT: 415,
  CORRUPT: 422,
  TRUNCATED: 422,
  INVALID_RAW: 422,
  NO_PIXEL_DATA: 422,
  NOT_A_CHEST_XRAY: 422,
  TRANSFER_SYNTAX_MISMATCH: 422,
  DECODE_TIMEOUT: 422,
};

export class InputError extends Error {
  readonly status: InputErrorStatus;
  /**
   * NOT_A_CHEST_XRAY (oodPolicy 'refuse'): the gate's reason codes, the ones a 'warn' answer carries in
   * verdict.reasons ('OOD', 'AGE', 'COLOUR'...), so that a program tells an adult's film from a photo without
   * reading the message. Empty for every other code.
   */
  readonly reasons: readonly VerdictReasonCode[];

  constructor(
    readonly code: InputErrorCode,
    message: string,
    options?: { cause?: unknown; reasons?: readonly VerdictReasonCode[] },
  ) {
    super(message, options);
    this.name = 'InputError';
    this.status = STATUS[code];
    this.reasons = options?.reasons ?? [];
  }

  /** The InputError for a decoder's error; other errors are returned unchanged (they are bugs). */
  static from(err: unknown): unknown {
    if (err instanceof InputError) return err;
    if (err instanceof DecodeError || err instanceof DicomError)
      return new InputError(err.code, err.detail, { cause: err });
    return err;
  }
}

/**
 * A Predictor used after its dispose(): the program's mistake, not the input's. Predictions started before
 * dispose() still finish (the model is freed after the last one); only calls made afterwards get this.
 */
export class PredictorDisposedError extends Error {
  readonly code = 'PREDICTOR_DISPOSED';

  constructor() {
    super('Predictor: used after dispose() (load the model again with Predictor.load)');
    this.name = 'PredictorDisposedError';
  }
}
