// An error with an HTTP status and a machine-readable code, answered as-is by the error handler.
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    /** Retry-After for a 503 whose cause lasts (a login to fix); else the usual short one. */
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}
