// What Fastify writes per request on the server's logger. By default a line when a request
// arrives and one when it is answered; with --quiet only the requests that failed (an error
// thrown by a handler, a 5xx), so that a quiet server still says what went wrong. The request's
// URL is logged without the value of a query parameter that is patient data (patientAge): the
// server log is kept and read like the audit log, which keeps no age.
import { LogController } from 'fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PATIENT_PARAMS } from './schemas_query';

/**
 * The URL with the values of patient-data parameters (schemas_query.ts PATIENT_PARAMS: logged as `*****`)
 * hidden (raw, as sent: any case, encoded or not).
 */
export function loggedUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      let name = eq < 0 ? pair : pair.slice(0, eq);
      try {
        name = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        // a name that is not valid encoding is logged as sent; it names no patient parameter
      }
      return eq >= 0 && PATIENT_PARAMS.some((p) => p.toLowerCase() === name.trim().toLowerCase())
        ? `${pair.slice(0, eq)}=*****`
        : pair;
    })
    .join('&');
  return `${url.slice(0, q)}?${query}`;
}

/**
 * The request as its log line shows it. `req`, the URL as loggedUrl writes it, is shaped like the request Fastify's
 * `req` serializer reads (method, url, host, ip, socket), so the line keeps Fastify's fields: `remoteAddress` is
 * the client the throttle and the upload share count (behind a --trust-proxy proxy, the one it names), `host` the
 * Host header the server checked (exposure.ts), not a proxy's X-Forwarded-Host. `proxy`, beside it: the proxy's
 * own address, when the client came through one.
 */
function loggedRequest(request: FastifyRequest) {
  const headers = request.headers;
  const peer = request.socket?.remoteAddress;
  return {
    req: {
      method: request.method,
      url: loggedUrl(request.url),
      host: headers.host ?? headers[':authority'] ?? '',
      ip: request.ip,
      socket: { remotePort: request.socket?.remotePort },
    },
    ...(peer !== undefined && peer !== request.ip ? { proxy: peer } : {}),
  };
}

class Requests extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    if (this.isLogDisabled(request)) return;
    request.log.info(loggedRequest(request), 'incoming request');
  }

  override writeHeadError(error: Error, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    reply.log.warn({ ...loggedRequest(request), res: reply, err: error }, error?.message);
  }

  override defaultErrorLog(error: Error, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    if (reply.statusCode >= 500) reply.log.error({ ...loggedRequest(request), res: reply, err: error }, error?.message);
    else reply.log.info({ res: reply, err: error }, error?.message);
  }
}

class FailuresOnly extends Requests {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) super.requestCompleted(error, request, reply);
  }

  override routeNotFound(): void {}
}

export function requestLogController(everyRequest: boolean): LogController {
  return everyRequest ? new Requests() : new FailuresOnly();
}
