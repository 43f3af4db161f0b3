// The films of a POST /jobs upload (routes/jobs.ts): every "image" part of the multipart body, each within the
// byte limit and a JPEG, PNG or DICOM image the decoder reads (by its header and its end: image_refusal.ts), the
// request whole within the films it may carry and the server's upload budget, so that a request is refused before
// any of its films is queued.
import type { FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { bufferReader, filmRefusalOf } from '../../data/image_refusal';
import { InputError } from '../../predict/errors';
import { HttpError } from '../http_error';
import { noFile, readFile, tooLarge, unreadField, type UploadBudget, UploadTicket } from '../upload';

export interface FilmLimits {
  /** Films per request. */
  maxFiles: number;
  /** Bytes per film. */
  maxUploadBytes: number;
}

export interface Film {
  name: string;
  bytes: Buffer;
}

/** Plain form fields a POST /jobs body may carry before busboy stops it (app.ts registers the same for every route). */
const JOB_FIELDS_MAX = 8;

/** 413 for a request with more films than one request takes. */
function tooManyFilms(maxFiles: number): HttpError {
  return new HttpError(
    413,
    'TOO_MANY_FILES',
    `at most ${maxFiles} films per request, each in a field named "image": send the others in another request`,
  );
}

/**
 * The bytes of one request's films, charged to the server's upload budget (what all requests together hold in
 * memory). A request whose films alone are over that whole budget would be refused 503 BUSY "retry shortly"
 * each time it is sent: it never fits, so it is a 413 that says to send fewer films at once.
 */
export class JobTicket extends UploadTicket {
  constructor(private readonly uploads: UploadBudget) {
    super(uploads);
  }

  override charge(n: number): void {
    if (this.held + n > this.uploads.limit) {
      const mib = (this.uploads.limit / 2 ** 20).toFixed(1);
      throw new HttpError(
        413,
        'TOO_LARGE',
        `the films of this request together are over the ${mib} MiB this server holds in memory for uploads at ` +
          'once, so it can never be taken: send fewer films per request (nothing in this request was queued)',
      );
    }
    super.charge(n);
  }
}

/**
 * busboy's own limits, as /jobs names them: app.ts registers multipart for the one-film upload of POST
 * /predictions (whose answer says so, problem.ts), and this route lifts the file and part counts per request.
 */
const BUSBOY_LIMITS = new Set(['FST_FILES_LIMIT', 'FST_PARTS_LIMIT', 'FST_FIELDS_LIMIT']);

/** Every file part of the body (field "image", repeatable), within the byte limits. */
export async function readFiles(req: FastifyRequest, o: FilmLimits, ticket: UploadTicket): Promise<Film[]> {
  const { maxFiles } = o;
  const files: Film[] = [];
  let imageField = false;
  // One file more than allowed reaches the loop, which refuses it by name; the parts cover every film and the
  // form fields, so that busboy's count (10 parts for the whole app, app.ts) is never what stops a request.
  const limits = { files: maxFiles + 1, parts: maxFiles + 1 + JOB_FIELDS_MAX, fileSize: o.maxUploadBytes };
  try {
    for await (const part of req.parts({ limits })) {
      if (part.type !== 'file') {
        if (part.fieldname !== 'image') throw unreadField(part.fieldname);
        imageField = true; // a film sent without its filename: said as such
        continue;
      }
      if (part.fieldname !== 'image') {
        part.file.resume();
        throw new HttpError(
          400,
          'WRONG_FIELD',
          `send each film in a field named "image", got "${part.fieldname.slice(0, 64)}"`,
        );
      }
      if (files.length === maxFiles) {
        part.file.resume();
        throw tooManyFilms(maxFiles);
      }
      const bytes = await readFile(part.file as Readable & { truncated?: boolean }, o.maxUploadBytes, ticket);
      const name = (part.filename || 'upload').slice(0, 255);
      if (bytes.length === 0) throw new HttpError(400, 'EMPTY', `${part.filename || 'a file'} is empty (0 bytes)`);
      // Refused here, before any film of the request is queued, rather than failed by a worker later: a format or
      // variant no reader takes, over the pixel limit by its header, or cut short. With POST /predictions's
      // status and code for the same film (predict/errors.ts: 415, 413, 422).
      const refused = await filmRefusalOf(bufferReader(bytes), bytes.length);
      if (refused !== null) {
        const detail = `${name}: ${refused.reason} (nothing in this request was queued)`;
        throw new HttpError(new InputError(refused.code, detail).status, refused.code, detail);
      }
      files.push({ name, bytes });
    }
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'FST_REQ_FILE_TOO_LARGE') throw tooLarge(o.maxUploadBytes);
    // Past the form fields' count: only "image" fields without a filename get that far (any other field is
    // refused at once), so it is films sent as plain fields, not too many films.
    if (code === 'FST_FIELDS_LIMIT') throw noFile(true, 'each film');
    if (code !== undefined && BUSBOY_LIMITS.has(code)) throw tooManyFilms(maxFiles);
    if (e instanceof HttpError || typeof (e as { statusCode?: unknown }).statusCode === 'number') throw e;
    throw new HttpError(
      400,
      'MALFORMED_MULTIPART',
      `the multipart/form-data body is malformed: ${(e as Error).message}`,
    );
  }
  if (files.length === 0) throw noFile(imageField, 'each film');
  return files;
}
