// Requests that end without their answer delivered, so without fastify's onResponse and its "request completed"
// line: a client that hung up (before its body's end, or while the server worked), or a body cut by Node's request
// timeout. Each is logged once as `request dropped (CODE): ...` and counted in cxr_http_requests_total, under
// nginx's 499 for a client's doing and under its own status for the server's (a 408, a 503 nobody received).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from './http_error';
import type { ServeMetrics } from './metrics';
import { PROBLEM_TYPE } from './problem';
import { loggedUrl } from './request_log';
import { clientClosed } from './upload';
import { bodyBytesRead } from './upload_watch';

/** Logs and counts a request that ends without an answer delivered; once, whoever tells of it first. */
export type CountDropped = (req: FastifyRequest, reply: FastifyReply, err: HttpError) => void;

export interface DroppedWatch {
  metrics: ServeMetrics;
  /** The metrics' route label of a request (metrics_routes.ts). */
  routeLabel: (req: FastifyRequest, status: number) => string | undefined;
  /** The server's request timeout, in milliseconds (for the words of a cut request). */
  requestTimeout: number;
  /** Sockets Node cut for the request timeout (app.ts clientErrorHandler answered them 408). */
  timedOut: WeakSet<object>;
}

/** Adds the hooks that catch dropped requests; returns the counter the body watch reports its own through. */
export function watchDroppedRequests(app: FastifyInstance, watch: DroppedWatch): CountDropped {
  const { metrics, routeLabel, requestTimeout, timedOut } = watch;
  // Once: the body watch and the route's error may both tell of the same request.
  const dropped = new WeakSet<FastifyRequest>();
  const countDropped: CountDropped = (req, reply, err) => {
    if (dropped.has(req)) return;
    dropped.add(req);
    const status = err.statusCode;
    metrics.httpRequest(req.method, routeLabel(req, status), status, reply.elapsedTime / 1000);
    // The URL as the request log writes it (request_log.ts loggedUrl): a typed patientAge is never in the log.
    const said = { req: { method: req.method, url: loggedUrl(req.url) }, res: { statusCode: status }, code: err.code };
    const bytesRead = bodyBytesRead(req);
    req.log.info(
      bytesRead === undefined ? said : { ...said, bytesRead },
      `request dropped (${err.code}): ${err.message}`,
    );
  };
  // A request dropped because its client hung up (upload.ts clientGone) has no response, so no onResponse and
  // no "request completed" line: it is counted and logged here, as nginx's 499, the client's doing. So is one
  // whose client hung up while its body was being read: the route's reading then fails with the multipart
  // parser's error (a 400 that nobody receives), which used to leave the request neither logged nor counted.
  app.addHook('onError', async (req, reply, err) => {
    if (err instanceof HttpError && err.statusCode === 499) countDropped(req, reply, err);
    else if (hungUpMidBody(req, reply))
      countDropped(
        req,
        reply,
        timedOut.has(req.raw.socket)
          ? requestTimedOut(requestTimeout)
          : clientClosed('the upload was not read to its end, nothing was done with it'),
      );
  });
  // And an answer made for a client that left meanwhile (a 503 of an audit log that hung while the client gave
  // up): fastify writes nothing to the closed socket, so no onResponse, no line and no count followed. It is
  // logged as dropped and counted under the status it was answered with, so a failing server still shows.
  app.addHook('onSend', async (req, reply, payload) => {
    if (reply.raw.destroyed && !reply.raw.writableFinished && !dropped.has(req)) {
      const code = problemCodeOf(reply, payload);
      const answer = `${reply.statusCode}${code ? ` ${code}` : ''}`;
      countDropped(req, reply, new HttpError(reply.statusCode, code ?? 'CLIENT_CLOSED_REQUEST', clientLeft(answer)));
    }
    return payload;
  });
  return countDropped;
}

/**
 * Whether the client closed its connection before its request's body had all arrived and before any answer: the
 * request stream was aborted (Node's `aborted`, deprecated in name only: it is what tells a client's hang-up from
 * the end of a body), or the connection is gone with nothing written on it.
 */
function hungUpMidBody(req: FastifyRequest, reply: FastifyReply): boolean {
  if (reply.raw.headersSent) return false;
  return req.raw.aborted || (!req.raw.complete && (req.raw.socket?.destroyed ?? true));
}

/** The code of a problem document being sent (an error's answer), or null for any other answer. */
function problemCodeOf(reply: FastifyReply, payload: unknown): string | null {
  const type = String(reply.getHeader('content-type') ?? '');
  if (typeof payload !== 'string' || !type.startsWith(PROBLEM_TYPE)) return null;
  try {
    const code = (JSON.parse(payload) as { code?: unknown }).code;
    return typeof code === 'string' ? code : null;
  } catch {
    return null;
  }
}

/**
 * A request whose body had not all arrived when Node's request timeout cut its connection (clientErrorHandler
 * answered it 408): the server's doing, not a client's hang-up, though the route sees the same torn body.
 */
function requestTimedOut(ms: number): HttpError {
  return new HttpError(
    408,
    'TIMEOUT',
    `the request did not arrive whole within the server's request timeout (${ms / 1000} s): answered 408 and ` +
      'its connection closed, nothing was done with it',
  );
}

function clientLeft(answer: string): string {
  return `the client closed the connection before its answer (${answer}), which was not delivered`;
}
