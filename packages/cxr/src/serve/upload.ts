// Reading the uploaded image out of a multipart/form-data request. Every way the upload itself
// can be wrong is a 4xx here, before any decoding:
// - over the byte limit: 413, also when the body is chunked. @fastify/multipart's toBuffer() only
//   notices busboy's `truncated` flag when a chunk arrives after it is set; when the file's bytes
//   end exactly on the limit (common with chunked bodies) it returned the cut bytes, which were
//   then predicted and logged under the hash of the cut file. The flag is checked after the end.
// - more than one file part: 400 (the second would otherwise be silently ignored).
// - memory: uploads are buffered whole, so the bytes held by all requests still being read or
//   waiting for the model are counted against a budget; beyond it, 503 (40 stalled 30 MB uploads
//   used to take the server from 0.75 to 1.65 GB). A declared Content-Length is checked before a
//   byte is read; chunked bodies are charged as they arrive.
// A body that stops, trickles or runs past the limit (after the closing boundary too) is refused while it
// arrives, by upload_watch.ts, which app.ts attaches to every upload route.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { HttpError } from './http_error';

export interface UploadLimits {
  /** Largest accepted file, in bytes. */
  maxBytes: number;
  /** Shared across requests: the bytes this upload holds are charged here (and handed back by the caller). */
  budget?: UploadBudget;
}

/** Multipart framing around the file: boundaries and part headers (limited to 100 header pairs). */
export const MULTIPART_OVERHEAD = 64 * 1024;

/** Bytes of uploads held in memory by all requests together. */
export class UploadBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  get inFlight(): number {
    return this.used;
  }

  /** Whether `n` more bytes would fit now. */
  fits(n: number): boolean {
    return this.used + n <= this.limit;
  }

  take(n: number): void {
    if (!this.fits(n)) throw busy(this.used);
    this.used += n;
  }

  give(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

function busy(used: number): HttpError {
  return new HttpError(
    503,
    'BUSY',
    `the server is receiving too many uploads at once (${Math.round(used / 2 ** 20)} MiB in flight); retry shortly`,
  );
}

/** What one request holds against the budget; release() once the bytes are no longer needed. */
export class UploadTicket {
  held = 0;
  constructor(private readonly budget: UploadBudget | undefined) {}
  charge(n: number): void {
    this.budget?.take(n);
    this.held += n;
  }
  release(): void {
    this.budget?.give(this.held);
    this.held = 0;
  }
}

/** The byte limit as people read it: in MB (the unit of --max-upload-mb), the exact bytes after it. */
function uploadLimitText(maxBytes: number): string {
  const mb = Math.round((maxBytes / 2 ** 20) * 100) / 100;
  return `the ${mb} MB limit (${maxBytes.toLocaleString('en-US')} bytes)`;
}

/**
 * 413 TOO_LARGE for a file over the byte limit. The limit goes into the problem as `maxUploadBytes` (problem.ts):
 * a client reads it there, not out of the words, which are for people and may change.
 */
export class TooLargeError extends HttpError {
  constructor(readonly maxUploadBytes: number) {
    super(413, 'TOO_LARGE', `the upload is over ${uploadLimitText(maxUploadBytes)}`);
  }
}

export function tooLarge(maxBytes: number): TooLargeError {
  return new TooLargeError(maxBytes);
}

/** 415 for a body that is not multipart/form-data, saying what came instead. */
export function notMultipart(req: FastifyRequest): HttpError {
  const got = (req.headers['content-type'] ?? 'no Content-Type').slice(0, 100);
  return new HttpError(
    415,
    'NOT_MULTIPART',
    `expected multipart/form-data with the image in a field named "image", got ${got}`,
  );
}

/**
 * A route's error handler: fastify refuses a body it has no parser for (multipart/mixed, text/xml)
 * before the route runs, with a message that does not say what came; that 415 is said as the route's own.
 * Everything else goes on to the app's handler (problem.ts).
 */
export function withMediaTypeDetail(refusal: (req: FastifyRequest) => HttpError) {
  return (err: FastifyError, req: FastifyRequest): never => {
    throw err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? refusal(req) : err;
  };
}

/** The uploaded image's bytes, with a 4xx for every way the upload itself can be wrong. */
export async function readUpload(req: FastifyRequest, limits: UploadLimits, ticket: UploadTicket): Promise<Buffer> {
  if (!req.isMultipart()) throw notMultipart(req);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared)) {
    if (declared > limits.maxBytes + MULTIPART_OVERHEAD) throw tooLarge(limits.maxBytes);
    if (limits.budget && !limits.budget.fits(declared)) throw busy(limits.budget.inFlight);
  }
  let image: Buffer | null = null;
  let imageField = false;
  try {
    for await (const part of req.parts()) {
      if (part.type !== 'file') {
        // One named "image" is a file sent without its filename; any other is an option sent where it is
        // not read (a patientAge there, ignored, would let an adult's film be read as a child's).
        if (part.fieldname !== 'image') throw unreadField(part.fieldname);
        imageField = true;
        continue;
      }
      if (image !== null) {
        part.file.resume();
        throw new HttpError(
          400,
          'TOO_MANY_FILES',
          'send exactly one file per request, in a field named "image" (this body has more than one)',
        );
      }
      if (part.fieldname !== 'image') {
        part.file.resume();
        throw new HttpError(
          400,
          'WRONG_FIELD',
          `expected the file in a field named "image", got "${part.fieldname.slice(0, 64)}"`,
        );
      }
      image = await readFile(part.file as Readable & { truncated?: boolean }, limits.maxBytes, ticket);
    }
  } catch (e) {
    // The multipart parser reports a malformed body (no boundary, cut short) as a plain Error.
    if (e instanceof HttpError || typeof (e as FastifyError).statusCode === 'number') throw e;
    throw new HttpError(
      400,
      'MALFORMED_MULTIPART',
      `the multipart/form-data body is malformed: ${(e as Error).message}`,
    );
  }
  if (image === null) throw noFile(imageField, 'the image');
  if (image.length === 0) throw new HttpError(400, 'EMPTY', 'the uploaded file is empty (0 bytes)');
  return image;
}

/**
 * Aborts once the client has closed the connection before its answer was sent. A request that waited for a
 * prediction slot while its client hung up is then dropped there, neither decoded, predicted nor audited: an
 * answer nobody receives is not an answer, and clients that time out and retry would otherwise queue the same
 * work again and again ahead of everyone else (six abandoned uploads of a slow file held a normal one for 63 s).
 * POST /jobs stops its PACS lookups on it alike. The reason is nginx's 499, so the request log has it as the
 * client's doing, not as a failure of the server. `dropped` says what became of the request.
 */
export function clientGone(reply: FastifyReply, dropped = 'the request was dropped unprocessed'): AbortSignal {
  const gone = new AbortController();
  const res = reply.raw;
  const closed = () => {
    if (res.writableFinished || gone.signal.aborted) return;
    gone.abort(clientClosed(dropped));
  };
  if (res.destroyed) closed();
  else res.once('close', closed);
  return gone.signal;
}

/** nginx's 499 for a request whose client hung up before its answer; `dropped` says what became of it. */
export function clientClosed(dropped: string): HttpError {
  return new HttpError(499, 'CLIENT_CLOSED_REQUEST', `the client closed the connection before its answer: ${dropped}`);
}

/** 400 WRONG_FIELD for a text field other than "image": options go in the query string, not the form. */
export function unreadField(name: string): HttpError {
  return new HttpError(
    400,
    'WRONG_FIELD',
    `the form field "${name.slice(0, 64)}" is not read: the form holds only the file, in a field named "image"; ` +
      'options (patientAge, operatingPoint, ...) go in the query string, e.g. ?patientAge=4',
  );
}

/**
 * 400 NO_FILE. A part named "image" that came as a plain form field (no filename in its
 * Content-Disposition, e.g. `curl -F image=hello` instead of `-F image=@film.jpeg`) is said as such.
 */
export function noFile(imageField: boolean, what: string): HttpError {
  return new HttpError(
    400,
    'NO_FILE',
    imageField
      ? `the part named "image" is a plain form field, not a file (its Content-Disposition has no filename): ` +
          `send ${what} as a file, e.g. curl -F image=@film.jpeg`
      : `no file in the request: send ${what} in a multipart field named "image"`,
  );
}

/** One file part of a multipart body, within `maxBytes`, charged to `ticket`. */
export async function readFile(
  file: Readable & { truncated?: boolean },
  maxBytes: number,
  ticket: UploadTicket,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of file as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (file.truncated || total > maxBytes) throw tooLarge(maxBytes);
    ticket.charge(chunk.length);
    chunks.push(chunk);
  }
  // busboy sets `truncated` without emitting another chunk when the limit falls on a chunk end.
  if (file.truncated) throw tooLarge(maxBytes);
  return Buffer.concat(chunks, total);
}
