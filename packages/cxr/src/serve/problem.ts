// Every error the API answers, as RFC 9457 problem details (application/problem+json):
// { type, title, status, detail, code }. `code` is the machine-readable cause the API always had
// (TOO_LARGE, TRUNCATED, ...); `type` is a URN built from it, so clients can switch on either. A file over
// the byte limit also says the limit as `maxUploadBytes`, and a film the OOD gate refused (NOT_A_CHEST_XRAY) the
// gate's reason codes as `reasons` (the two extension members; schemas.ts declares them).
// Validation errors name what was wrong: the unknown query parameter, the allowed values.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AUDIT_RETRY_AFTER_S } from './audit_guard';
import { AuditUnavailableError } from './audit_store';
import { HttpError } from './http_error';
import { type ClientInputError, isClientInputError } from './predictor_port';
import { API_PREFIX } from './routes/common';
import type { Problem } from './schemas';
import { ORTHANC_IDS_MAX } from './routes/jobs';
import { TooLargeError, tooLarge } from './upload';
import { addVary } from './vary';

export const PROBLEM_TYPE = 'application/problem+json';

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  417: 'Expectation Failed',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export type { Problem };

export function problem(status: number, code: string, detail: string): Problem {
  return {
    type: `urn:cxr:problem:${code.toLowerCase().replace(/_/g, '-')}`,
    title: REASONS[status] ?? 'Error',
    status,
    detail,
    code,
  };
}

/**
 * Vary: Accept on a problem answered for an /api/v1 path (docs/api.md: every /api/v1 answer says it). The API's
 * scope adds it to its own answers (accept.ts); these come from outside it: a URL the router cannot take (a bad
 * percent-escape), and a path the page's file handler refuses first (routes/web.ts: `//`, `..`, a name too long).
 */
function varyAcceptOnApi(reply: FastifyReply): void {
  const url = reply.request?.url ?? '';
  if (url === API_PREFIX || url.startsWith(`${API_PREFIX}/`) || url.startsWith(`${API_PREFIX}?`))
    addVary(reply, 'Accept');
}

export function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  // 1 s unless the cause set its own (an audit log outage lasts longer than a full queue).
  if (p.status === 503 && !reply.hasHeader('Retry-After')) reply.header('Retry-After', '1');
  varyAcceptOnApi(reply);
  return reply.code(p.status).type(`${PROBLEM_TYPE}; charset=utf-8`).send(p);
}

interface AjvError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** ajv's errors in words a client can act on; `where` is fastify's validationContext (querystring, params). */
export function validationDetail(errors: AjvError[], where: string | undefined): string {
  const what =
    where === 'querystring' ? 'query parameter' : where === 'params' ? 'path parameter' : `${where ?? 'request'} field`;
  return errors
    .map((e) => {
      const name = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
      if (e.keyword === 'additionalProperties') return `unknown ${what} '${String(e.params.additionalProperty)}'`;
      if (e.keyword === 'enum') {
        const allowed = (e.params.allowedValues as unknown[] | undefined)?.map(String).join(', ');
        return `${what} '${name}' must be one of: ${allowed}`;
      }
      return `${what} '${name || '?'}' ${e.message ?? 'is invalid'}`;
    })
    .join('; ');
}

/** A file over the byte limit: the limit in its own field too (schemas.ts problemSchema). */
function tooLargeProblem(err: TooLargeError): Problem {
  return { ...problem(err.statusCode, err.code, err.message), maxUploadBytes: err.maxUploadBytes };
}

/**
 * A predictor's InputError: NOT_A_CHEST_XRAY with the gate's reason codes (predict/errors.ts InputError.reasons),
 * which a program reads instead of the detail's words; every other code has none, and no member.
 */
function inputProblem(err: ClientInputError): Problem {
  const p = problem(err.status, err.code, err.message);
  const { reasons } = err as { reasons?: unknown };
  if (err.code !== 'NOT_A_CHEST_XRAY' || !Array.isArray(reasons) || !reasons.length) return p;
  return { ...p, reasons: reasons.map(String) };
}

const GENERIC_CODES: Record<number, string> = { 403: 'FORBIDDEN', 404: 'NOT_FOUND', 405: 'METHOD_NOT_ALLOWED' };

/**
 * The raw HTTP answer to a request Node could not parse or wait for (headers too large, too slow,
 * malformed): the socket never reached a route, so it is written by hand, still as a problem. With `Vary:
 * Accept`, as every other /api/v1 refusal (varyAcceptOnApi): the path may not have arrived to tell an API
 * request from another, and on a page file's refusal the header costs nothing.
 */
export function clientErrorResponse(err: { code?: string }): string {
  const [status, code, detail]: [number, string, string] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'HEADERS_TOO_LARGE', 'the request line or headers are over the size limit']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'TIMEOUT', 'the request did not arrive in time']
        : [400, 'INVALID_REQUEST', 'a malformed HTTP request'];
  const body = JSON.stringify(problem(status, code, detail));
  return (
    `HTTP/1.1 ${status} ${REASONS[status]}\r\nContent-Type: ${PROBLEM_TYPE}; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nVary: Accept\r\nConnection: close\r\n\r\n${body}`
  );
}

/**
 * The problem an error is answered with, built without side effects (nothing logged), or undefined for an error
 * without an answer of its own: a bug, answered 500 INTERNAL. The one classification of errors: toProblem answers
 * with it and problemOf gives its status and code to whatever counts failures, so the two never disagree.
 */
function answerOf(err: FastifyError, maxUploadBytes: number, bodyLimit?: number): Problem | undefined {
  if (err === null || typeof err !== 'object') return undefined; // a thrown string or number: a bug
  if (isClientInputError(err)) return inputProblem(err);
  if (err instanceof TooLargeError) return tooLargeProblem(err);
  if (err instanceof HttpError) return problem(err.statusCode, err.code, err.message);
  if (err.validation)
    return problem(400, 'INVALID_REQUEST', validationDetail(err.validation as AjvError[], err.validationContext));
  switch (err.code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      return tooLargeProblem(tooLarge(maxUploadBytes));
    // The body parser's limit (a JSON body: POST /jobs' Orthanc ids; app.ts bodyLimit), not an upload's: said as
    // the upload limit, with its maxUploadBytes, it told a client that a 2 MB body was over a 32 MB limit.
    case 'FST_ERR_CTP_BODY_TOO_LARGE': {
      const limit = bodyLimit === undefined ? 'size' : `${bodyLimit.toLocaleString('en-US')} bytes`;
      return problem(
        413,
        'TOO_LARGE',
        `the request body is over the ${limit} this server reads for a body that is not a multipart upload ` +
          `(POST /api/v1/jobs takes at most ${ORTHANC_IDS_MAX} Orthanc instance ids; films go as multipart/form-data)`,
      );
    }
    // The one-film upload's limits (app.ts); POST /jobs, which takes several films, answers its own (routes/jobs.ts).
    case 'FST_FILES_LIMIT':
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return problem(413, 'TOO_MANY_PARTS', 'send one image per request, in a field named "image"');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return problem(415, 'NOT_MULTIPART', 'expected multipart/form-data with the image in a field named "image"');
    case 'BUSY':
      return problem(503, 'BUSY', err.message);
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return problem(400, 'INVALID_REQUEST', `the JSON body cannot be read: ${err.message}`);
    // The audit log is locked by another program past its wait: nothing was answered without a row.
    case 'SQLITE_BUSY':
      return problem(503, 'BUSY', 'the audit log is locked by another program; retry shortly');
    // The log cannot be reached or written (audit_guard.ts): the client is told what kind of failure and
    // what became of the request, not where the log is. Not logged as a failed request: the guard logs
    // the outage, with the log's location and the driver's words.
    case 'AUDIT_UNAVAILABLE':
      return problem(
        503,
        'AUDIT_UNAVAILABLE',
        err instanceof AuditUnavailableError ? err.publicMessage : 'the audit log is unavailable',
      );
  }
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    // The framework's own 4xx (a forbidden static path, ...): the API's codes, not the framework's.
    return problem(err.statusCode, GENERIC_CODES[err.statusCode] ?? 'INVALID_REQUEST', err.message);
  }
  return undefined;
}

const INTERNAL = (): Problem => problem(500, 'INTERNAL', 'internal error (details are in the server log)');

/**
 * The status and code an error is answered with, as toProblem answers it (without logging it): for the
 * metrics that count failures by their answer (routes/predictions.ts), so that a new code cannot be missed.
 */
export function problemOf(err: unknown): { status: number; code: string } {
  const { status, code } = answerOf(err as FastifyError, 0) ?? INTERNAL();
  return { status, code };
}

/** The problem for any error a route threw (or fastify raised); 500s are logged, never detailed. */
export function toProblem(err: FastifyError, req: FastifyRequest, maxUploadBytes: number): Problem {
  const answer = answerOf(err, maxUploadBytes, req.routeOptions?.bodyLimit);
  if (answer) return answer;
  req.log.error({ err }, 'request failed');
  return INTERNAL();
}

/**
 * Every error, and every unknown path, answers as a problem document. `allowed` gives the methods a
 * path answers to (methods.ts): a known path asked with another method is 405 with `Allow`, not 404.
 */
export function answerWithProblems(
  app: FastifyInstance,
  maxUploadBytes: number,
  allowed: (path: string) => string[] = () => [],
): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.code === 'AUDIT_UNAVAILABLE') reply.header('Retry-After', String(AUDIT_RETRY_AFTER_S));
    if (err instanceof HttpError && err.retryAfterS !== undefined) reply.header('Retry-After', String(err.retryAfterS));
    return sendProblem(reply, toProblem(err, req, maxUploadBytes));
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0];
    // Outside the API scope (accept.ts adds it there), so said here: a cache keying /api/v1 answers by Accept
    // must find it on every one of them, the 404 of an unknown path and the 405 of a wrong method included.
    if (path === API_PREFIX || path.startsWith(`${API_PREFIX}/`)) reply.header('Vary', 'Accept');
    const allow = allowed(path);
    if (allow.length && !allow.includes(req.method)) {
      reply.header('Allow', allow.join(', '));
      return sendProblem(
        reply,
        problem(
          405,
          'METHOD_NOT_ALLOWED',
          `${req.method} is not allowed on ${path.slice(0, 200)}; use ${allow.join(', ')}`,
        ),
      );
    }
    return sendProblem(reply, problem(404, 'NOT_FOUND', `no such resource: ${req.method} ${path.slice(0, 200)}`));
  });
}
