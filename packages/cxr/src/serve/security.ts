// Security headers and the checks every request passes before its handler: Host/Origin exposure,
// then the bearer token on the matched route (health and the OpenAPI document stay public; /metrics
// needs the token too unless the server was started with --metrics-public), an address that sent too many wrong
// ones refused for a while (auth_throttle.ts), then the token's scopes
// (auth.ts): what each route needs is decided here, in one table, not route by route.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import helmet from '@fastify/helmet';
import { type Scope, SCOPES, type TokenMatch } from './auth';
import type { AuthThrottle } from './auth_throttle';
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

/**
 * The scope each guarded operation needs ('any': every valid token; 'history': `audit` for the whole log, or
 * `predict` for the predictions this token made; 'images': as 'history', or `jobs` for the images of the
 * predictions this token's jobs made; 'jobs': `jobs`, and `audit` too for every job, not only this token's).
 * An operation not listed needs every scope: a route added later is closed to a limited token until it is
 * listed here (test/auth-scopes.test.ts checks every route is).
 */
export const ROUTE_SCOPES: Readonly<Record<string, Scope | 'any' | 'history' | 'images'>> = {
  [`POST ${API_PREFIX}/predictions`]: 'predict',
  [`GET ${API_PREFIX}/predictions`]: 'history',
  [`GET ${API_PREFIX}/predictions/:id`]: 'history',
  // A job's answer links its prediction's images: a `jobs` token follows them for its own jobs.
  [`GET ${API_PREFIX}/predictions/:id/heatmap.png`]: 'images',
  [`GET ${API_PREFIX}/predictions/:id/thumbnail.png`]: 'images',
  // Job ids are predictable (a film's UID or digest, the model's): without `audit`, a token's own jobs only.
  [`POST ${API_PREFIX}/jobs`]: 'jobs',
  [`GET ${API_PREFIX}/jobs/:id`]: 'jobs',
  // The model's description and files: what the page shows beside a result, no patient's data.
  [`GET ${API_PREFIX}/model`]: 'any',
  [`GET ${API_PREFIX}/model/files/*`]: 'any',
  // The token's own name and scopes: every token may learn them (never its value), so a page can say whose it holds.
  [`GET ${API_PREFIX}/token`]: 'any',
  [`GET ${METRICS_ROUTE}`]: 'metrics',
};

/**
 * Whether a token with `scopes` (null: all) may call `method route`: 'all' (the whole of it), 'own' (without
 * `audit`: only the predictions or jobs the token asked for), or the scope it lacks.
 */
export function scopeCheck(
  scopes: readonly Scope[] | null,
  method: string,
  route: string,
): 'all' | 'own' | { missing: Scope } {
  if (scopes === null) return 'all';
  const need = ROUTE_SCOPES[`${method === 'HEAD' ? 'GET' : method} ${route}`];
  if (need === 'any') return 'all';
  const audit = scopes.includes('audit');
  if (need === 'history') return audit ? 'all' : scopes.includes('predict') ? 'own' : missing('audit');
  if (need === 'images')
    return audit ? 'all' : scopes.includes('predict') || scopes.includes('jobs') ? 'own' : missing('audit');
  if (need === 'jobs') return !scopes.includes('jobs') ? missing('jobs') : audit ? 'all' : 'own';
  if (need !== undefined) return scopes.includes(need) ? 'all' : missing(need);
  // Not listed: every scope, and the first one the token lacks is named.
  const lacking = SCOPES.find((x) => !scopes.includes(x));
  return lacking ? missing(lacking) : 'all';
}

function missing(scope: Scope): { missing: Scope } {
  return { missing: scope };
}

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
  /** The token an Authorization header carries, null when none matches; null when no token is needed. */
  tokenName: ((authorization: string | undefined) => TokenMatch | null) | null;
  /** /metrics answers without a token (--metrics-public). */
  metricsPublic?: boolean;
  /** Counts wrong tokens per client address and refuses one that sent too many (auth_throttle.ts). */
  throttle?: AuthThrottle;
}

export function addRequestGuards(
  app: FastifyInstance,
  { checkExposure, tokenName, metricsPublic, throttle }: RequestGuards,
): void {
  app.decorateRequest('tokenName', null);
  app.decorateRequest('ownRecordsOnly', null);
  app.decorateRequest('tokenScopes', null);
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
    // Before the token is compared: a right token answered otherwise than a wrong one would tell the guesses apart.
    const wait = throttle?.retryAfterS(req.ip) ?? 0;
    if (wait > 0) throw tooManyBadTokens(throttle as AuthThrottle, wait);
    const token = tokenName(req.headers.authorization);
    if (token === null) {
      const sent = req.headers.authorization !== undefined;
      if (sent && throttle?.fail(req.ip, req.headers.authorization as string)) {
        const { maxFailures, windowMs } = throttle;
        req.log.warn(
          { client: req.ip, wrongTokens: maxFailures, windowS: windowMs / 1000 },
          `${maxFailures} wrong API tokens from ${req.ip} within ${windowMs / 1000} s: its requests that need a ` +
            'token are refused (429) until the window ends',
        );
      }
      // RFC 6750 3.1: a token sent and refused is "invalid_token"; a request without one gets no error code.
      reply.header('WWW-Authenticate', sent ? 'Bearer realm="cxr", error="invalid_token"' : 'Bearer realm="cxr"');
      throw new HttpError(401, 'UNAUTHORIZED', unauthorized(req.headers.authorization));
    }
    const allowed = scopeCheck(token.scopes, req.method, route);
    if (typeof allowed === 'object') {
      // RFC 6750 3.1: a valid token without the scope is 403 insufficient_scope, not 401 (another token would not
      // be asked for by a browser's prompt; the holder needs one with more scopes).
      reply.header('WWW-Authenticate', `Bearer realm="cxr", error="insufficient_scope", scope="${allowed.missing}"`);
      throw new HttpError(
        403,
        'INSUFFICIENT_SCOPE',
        `the API token '${token.name}' does not have the scope '${allowed.missing}' that ${req.method} ${route} ` +
          `needs (it has: ${token.scopes?.join(', ')}); ask whoever runs the server for a token with it`,
      );
    }
    req.tokenName = token.name;
    req.tokenScopes = token.scopes;
    req.ownRecordsOnly = allowed === 'own' ? token.name : null;
  });
}

/** The 429 of an address that sent too many wrong tokens: when it may try again, in Retry-After too. */
function tooManyBadTokens(throttle: AuthThrottle, waitS: number): HttpError {
  return new HttpError(
    429,
    'TOO_MANY_BAD_TOKENS',
    `too many wrong API tokens from this address (${throttle.maxFailures} within ${throttle.windowMs / 1000} s): ` +
      `requests that need a token are refused for ${waitS} s more, a right token's too; check the token, or ask ` +
      'whoever runs the server for a valid one',
    waitS,
  );
}

/**
 * Whether the request may see an audit record logged for `requestedBy`: any, unless its token lacks `audit` (it
 * reads the history through `predict`, or a job's images through `jobs`: then its own). The routes answer 404
 * for another's, as for none, so that a limited token learns nothing of the rest of the log.
 */
export function mayRead(req: FastifyRequest, record: { requestedBy: string | null } | null): boolean {
  return record !== null && (req.ownRecordsOnly === null || record.requestedBy === req.ownRecordsOnly);
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
    /** The scopes of that token; null when it has every scope, or the server needs none. */
    tokenScopes: readonly Scope[] | null;
    /**
     * The token's name when it lacks the `audit` scope on a route that answers only its own records (scopeCheck's
     * 'own'): the history routes answer only the predictions it made (requestedBy), the jobs routes only the jobs
     * it queued or offered; null when it may read them all.
     */
    ownRecordsOnly: string | null;
  }
}
