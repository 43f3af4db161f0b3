// Security headers and the checks every request passes before its handler: Host/Origin exposure,
// then the bearer token on the matched route (health and the OpenAPI document stay public; /metrics
// needs the token too unless the server was started with --metrics-public).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import helmet from '@fastify/helmet';
import { HttpError } from './http_error';
import { API_PREFIX } from './routes/common';
import { METRICS_ROUTE } from './routes/metrics';

/** The page's Content-Security-Policy: nothing inline, nothing from elsewhere; WebAssembly for in-browser mode. */
export const CSP_DIRECTIVES = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'", "'wasm-unsafe-eval'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'blob:', 'data:'],
  connectSrc: ["'self'"],
  workerSrc: ["'self'", 'blob:'],
  fontSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  // The server speaks plain HTTP on a local port; upgrading would break the page.
  upgradeInsecureRequests: null,
};

const PUBLIC_API_ROUTES = new Set([`${API_PREFIX}/health`, `${API_PREFIX}/openapi.json`]);

export async function registerSecurityHeaders(app: FastifyInstance): Promise<void> {
  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: true, directives: CSP_DIRECTIVES },
    // Plain HTTP on localhost: HSTS would be wrong here (terminate TLS in a proxy and set it there).
    strictTransportSecurity: false,
  });
}

export interface RequestGuards {
  /** Throws (403) when the Host or Origin header is not one this server answers to. */
  checkExposure: (req: FastifyRequest) => void;
  /** The name of the token an Authorization header carries, null when none matches; null when no token is needed. */
  tokenName: ((authorization: string | undefined) => string | null) | null;
  /** /metrics answers without a token (--metrics-public). */
  metricsPublic?: boolean;
}

export function addRequestGuards(
  app: FastifyInstance,
  { checkExposure, tokenName, metricsPublic }: RequestGuards,
): void {
  app.decorateRequest('tokenName', null);
  app.addHook('onRequest', async (req) => checkExposure(req));
  app.addHook('onRequest', async (req, reply) => {
    if (!tokenName) return;
    // Decide on the route that matched (its pattern, after the router decoded the path), never on
    // the raw URL: '/%61pi/v1/predictions' reaches the same handler as '/api/v1/predictions'.
    // Unmatched requests have no pattern and fall through to the 404 handler.
    const route = req.routeOptions.url;
    if (route === undefined) return;
    const guarded = route.startsWith('/api/')
      ? !PUBLIC_API_ROUTES.has(route)
      : route === METRICS_ROUTE && !metricsPublic;
    if (!guarded) return;
    const name = tokenName(req.headers.authorization);
    if (name === null) {
      const sent = req.headers.authorization !== undefined;
      // RFC 6750 3.1: a token sent and refused is "invalid_token"; a request without one gets no error code.
      reply.header('WWW-Authenticate', sent ? 'Bearer realm="cxr", error="invalid_token"' : 'Bearer realm="cxr"');
      throw new HttpError(401, 'UNAUTHORIZED', unauthorized(req.headers.authorization));
    }
    req.tokenName = name;
  });
}

/**
 * Why a request was refused: no token sent, a header that is not a bearer token, or a token this server does not
 * accept. Whether a token exists, or how near the one sent came to one, is never said: every refused token gets
 * the same words.
 */
export function unauthorized(authorization: string | undefined): string {
  if (authorization === undefined) return 'this server needs an API token: send "Authorization: Bearer <token>"';
  if (!/^Bearer\s+\S+\s*$/i.test(authorization))
    return 'the Authorization header is not a bearer token: send "Authorization: Bearer <token>"';
  return 'the API token sent is not accepted by this server: check it, or ask whoever runs the server for a valid one';
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The name of the API token the request carried; null when the server needs none. */
    tokenName: string | null;
  }
}
