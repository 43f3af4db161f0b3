// Reading the uploaded image out of a multipart/form-data request. Every way the upload itself
// can be wrong is a 4xx here, before any decoding:
// - over the byte limit: 413, also when the body is chunked. @fastify/multipart's toBuffer() only
//   notices busboy's `truncated` flag when a chunk arrives after it is set; when the file's bytes
//   end exactly on the limit (common with chunked bodies) it returned the cut bytes, which were
//   then predicted and logged under the hash of the cut file. The flag is checked after the end.
// - more than one file part: 400 (the second would otherwise be silently ignored).
import type { FastifyError, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { HttpError } from './http_error';

export interface UploadLimits {
  /** Largest accepted file, in bytes. */
  maxBytes: number;
  /** Called with each chunk's size as it arrives; may throw (e.g. a memory budget, 503). */
  onBytes?: (n: number) => void;
}

export function tooLarge(maxBytes: number): HttpError {
  return new HttpError(413, 'TOO_LARGE', `the upload exceeds the ${maxBytes}-byte limit`);
}

/** The uploaded image's bytes, with a 4xx for every way the upload itself can be wrong. */
export async function readUpload(req: FastifyRequest, limits: UploadLimits): Promise<Buffer> {
  if (!req.isMultipart()) {
    throw new HttpError(415, 'NOT_MULTIPART',
      `expected multipart/form-data with the image in a field named "image", got ${req.headers['content-type'] ?? 'no Content-Type'}`);
  }
  let image: Buffer | null = null;
  try {
    for await (const part of req.parts()) {
      if (part.type !== 'file') continue; // text fields carry nothing we use
      if (image !== null) {
        part.file.resume();
        throw new HttpError(400, 'TOO_MANY_FILES', 'send exactly one file per request, in a field named "image" (this body has more than one)');
      }
      if (part.fieldname !== 'image') {
        part.file.resume();
        throw new HttpError(400, 'WRONG_FIELD', `expected the file in a field named "image", got "${part.fieldname.slice(0, 64)}"`);
      }
      image = await readFile(part.file as Readable & { truncated?: boolean }, limits);
    }
  } catch (e) {
    // The multipart parser reports a malformed body (no boundary, cut short) as a plain Error.
    if (e instanceof HttpError || (typeof (e as FastifyError).statusCode === 'number')) throw e;
    throw new HttpError(400, 'MALFORMED_MULTIPART', `the multipart/form-data body is malformed: ${(e as Error).message}`);
  }
  if (image === null) throw new HttpError(400, 'NO_FILE', 'no file in the request: send the image in a multipart field named "image"');
  if (image.length === 0) throw new HttpError(400, 'EMPTY', 'the uploaded file is empty (0 bytes)');
  return image;
}

async function readFile(file: Readable & { truncated?: boolean }, limits: UploadLimits): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of file as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (file.truncated || total > limits.maxBytes) throw tooLarge(limits.maxBytes);
    limits.onBytes?.(chunk.length);
    chunks.push(chunk);
  }
  // busboy sets `truncated` without emitting another chunk when the limit falls on a chunk end.
  if (file.truncated) throw tooLarge(limits.maxBytes);
  return Buffer.concat(chunks, total);
}
