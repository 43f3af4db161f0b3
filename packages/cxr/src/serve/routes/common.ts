// What every /api/v1 route shares: the prefix, the error answers each route documents, the
// no-store rule for medical results, and the API's view of an audit record (with image URLs).
import type { FastifyReply } from 'fastify';
import { shownLabel } from '../../predict/verdict';
import type { AuditRecord } from '../audit';
import { problemResponse } from '../schemas';

export const API_PREFIX = '/api/v1';

/**
 * The error answers of the routes that need the token (routes add their own, e.g. 413 for uploads, and 404
 * where a path names something that may not exist: notFound). What any request can get before its route (400
 * for an unknown query parameter, 403 HOST_NOT_ALLOWED, 405, 406, 408, 417, 431, 500, 503 while shutting down)
 * is added to every operation of the OpenAPI document in one place, openapi.ts.
 */
export const API_ERRORS = {
  400: problemResponse(
    'Invalid request (INVALID_REQUEST): a query or path parameter is wrong (the detail names it), or an ' +
      'HTTP/1.1 request without a Host header',
  ),
  401: {
    ...problemResponse('An API token is required and was missing or wrong (UNAUTHORIZED); see WWW-Authenticate'),
    headers: {
      'WWW-Authenticate': {
        type: 'string',
        description: 'Bearer realm="cxr", with error="invalid_token" when the token sent is not accepted (RFC 6750)',
      },
    },
  },
  // serve/auth_throttle.ts: only wrong tokens count; a right one from another address is never refused.
  429: {
    ...problemResponse(
      'Too many wrong API tokens from this client address (TOO_MANY_BAD_TOKENS): 10 different ones within a ' +
        "minute refuse the address's requests that need a token, a right token's too, until that minute ends",
    ),
    headers: { 'Retry-After': { type: 'integer', description: 'seconds until the address may send a token again' } },
  },
};

/**
 * The 404 of an operation whose path names something that may not exist (a prediction, a job, a file), with
 * what: listed only on those, for an operation whose path names nothing of the kind cannot answer it.
 */
export function notFound(what: string) {
  return { 404: problemResponse(`${what} (NOT_FOUND)`) };
}

/**
 * A prediction id as the audit log keys it. UUIDs are case-insensitive (RFC 9562) and the path schema
 * (format uuid) also takes the `urn:uuid:` form; ids are written in lower case without it.
 */
export function predictionId(raw: string): string {
  return raw.toLowerCase().replace(/^urn:uuid:/, '');
}

/** Predictions are medical results: no browser or proxy may keep a copy. */
export function noStore(reply: FastifyReply): void {
  reply.header('Cache-Control', 'no-store');
}

/**
 * An audit record as the API answers it: the record plus links to its images, null when there are none, and
 * no label for a cannot-assess answer (the log keeps the model's label; verdict.ts shownLabel, which reads a
 * row logged before verdicts were kept as the history filter does).
 */
export function toApi(r: AuditRecord, heatmapAvailable: boolean, thumbnailAvailable: boolean) {
  return {
    ...r,
    label: shownLabel(r),
    heatmapUrl: heatmapAvailable ? `${API_PREFIX}/predictions/${r.id}/heatmap.png` : null,
    thumbnailUrl: thumbnailAvailable ? `${API_PREFIX}/predictions/${r.id}/thumbnail.png` : null,
  };
}
