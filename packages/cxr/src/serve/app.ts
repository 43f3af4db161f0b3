// The HTTP application: security headers, optional bearer token, the v1 JSON API, its OpenAPI
// document and the web page. Built from already-open parts (predictor, audit log) so that tests
// can inject requests without a port, and so that start-up order stays in server.ts. Each part
// lives in its own module; this file only puts them together, in the order fastify needs:
// plugins and hooks first, then the routes (so the OpenAPI generator sees every one).
import Fastify, { type FastifyBaseLogger, FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import * as path from 'node:path';
import type { AuditStore } from './audit';
import { honourAccept } from './accept';
import { AuditGuard } from './audit_guard';
import { NamedToken, serverTokens, TokenSet } from './auth';
import { AuthThrottle, type AuthThrottleOptions } from './auth_throttle';
import { closeKeepAliveOnShutdown } from './closing';
import { type CountDropped, watchDroppedRequests } from './dropped';
import { exposureCheck } from './exposure';
import { HttpError } from './http_error';
import { type Logger, silentLogger } from '../log';
import { methodTable } from './methods';
import { ServeMetrics } from './metrics';
import { routeLabels } from './metrics_routes';
import { openApiDocumentRoute, registerOpenApi } from './openapi';
import type { ServePredictor } from './predictor_port';
import { answerWithProblems, clientErrorResponse, problem, sendProblem } from './problem';
import { WorkQueue } from './queue';
import { RecentImages } from './recent_images';
import { requestLogController } from './request_log';
import { strictQueryParams } from './schemas_query';
import { API_PREFIX } from './routes/common';
import { healthRoute } from './routes/health';
import { metricsRoute } from './routes/metrics';
import { historyRoutes } from './routes/history';
import { JOB_FILES_MAX, jobRoutes, type JobsPort } from './routes/jobs';
import { modelRoutes } from './routes/model';
import { predictionRoutes } from './routes/predictions';
import { tokenRoute } from './routes/token';
import { trustedProxies } from './trust_proxy';
import { webRoutes } from './routes/web';
import { addRequestGuards, CSP_DIRECTIVES, registerSecurityHeaders } from './security';
import { MULTIPART_OVERHEAD, tooLarge, UploadBudget } from './upload';
import { BODY_DEFAULTS, type BodyRules, ClientShares, lingerAfterAnswer, watchBody } from './upload_watch';

export interface AppOptions {
  predictor: ServePredictor;
  audit: AuditStore;
  /**
   * When set, every /api/v1 route except health and the OpenAPI document needs `Authorization: Bearer <token>`.
   * 8-512 printable characters without spaces, as CXR_API_TOKEN (an error otherwise).
   */
  apiToken?: string;
  /**
   * Named tokens (the audit log records the name); apiToken, when also set, is one more named "default". A
   * TokenSet can be replaced while the server runs (apiToken then unset).
   */
  tokens?: NamedToken[] | TokenSet;
  /** The --host the server listens on: accepted in the Host header besides localhost and IP literals. */
  boundHost?: string;
  /** More names accepted in Host and Origin headers (--allowed-host). */
  allowedHosts?: string[];
  /** Keep thumbnails and heat maps in the audit log (default true). */
  storeImages?: boolean;
  /** Largest accepted upload in bytes (default 32 MiB). */
  maxUploadBytes?: number;
  /** Upload bytes held in memory by all requests together before 503 (default: concurrency + 2 largest uploads). */
  uploadBudgetBytes?: number;
  /** Refuse (408) an upload whose body stops arriving for this long (default 10 s). */
  uploadIdleMs?: number;
  /** Refuse (408) an upload that brings less than uploadMinBytesPerS × this in a window this long (10 s). */
  uploadRateWindowMs?: number;
  /** Default 32 KiB/s (upload_watch.ts says why). */
  uploadMinBytesPerS?: number;
  /**
   * Folder of the built web page (index.html, app.js, ...). Default: the package's own (defaultWebDir()), as
   * startServer and `cxr serve` serve it; null: no page (`/` says so). A folder without index.html (a source
   * checkout not built yet) serves no page either, and `/` says how to build it.
   */
  webDir?: string | null;
  /** Predictions running at once, and waiting beyond that before 503 (defaults 2 and 64). */
  concurrency?: number;
  maxWaiting?: number;
  /** Fastify's logger (the server's pino instance); default: none. */
  logger?: Logger;
  /** A line per request on that logger (default true); false: only failed requests. */
  requestLog?: boolean;
  /** What /metrics reports (default: a new registry); one per app. */
  metrics?: ServeMetrics;
  /** /metrics answers without the API token (--metrics-public). */
  metricsPublic?: boolean;
  /** The job queue behind POST/GET /jobs (queue/api.ts); without it those routes answer 503. */
  jobs?: JobsPort;
  /** How long a request's headers may take to arrive before 408 and the connection closed (default 20 s). */
  headersTimeoutMs?: number;
  /** How long a whole request may take to arrive before 408 and the connection closed (default 120 s). */
  requestTimeoutMs?: number;
  /** Wrong tokens one client address may send before 429 (auth_throttle.ts; default 10 different ones a minute). */
  authThrottle?: AuthThrottleOptions;
  /**
   * The IP addresses or CIDR ranges of the proxies whose X-Forwarded-For is believed (--trust-proxy; default none):
   * a request from one of them counts as from the client it names, for the throttle, the upload share and the log.
   * A bad entry throws TrustProxyError (trust_proxy.ts).
   */
  trustProxy?: string[];
}

export { API_PREFIX, CSP_DIRECTIVES, HttpError };

/** The built page: dist/src/web/static next to this compiled file (the package's build puts it there). */
export function defaultWebDir(): string {
  return path.join(__dirname, '..', 'web', 'static');
}

/** How long a whole request may take to arrive (Node's requestTimeout); the body watch's deadline too. */
const REQUEST_TIMEOUT_MS = 120_000;

/**
 * How long the headers may take (Node's headersTimeout, 60 s by default, checked every 30 s): a client that
 * dribbles them (slowloris) holds a connection no longer than this. A real client sends them in one packet;
 * 20 s leaves a slow mobile link room. Checked at a quarter of it, 2 s at most, so that the bound is kept.
 */
const HEADERS_TIMEOUT_MS = 20_000;

/**
 * How long an idle keep-alive connection is kept (Node's keepAliveTimeout): longer than the 60 s a load
 * balancer keeps its idle connections, so that the server never closes one the balancer is about to reuse.
 * Fastify 5's own default; test/serve-hostile checks the server keeps it.
 */
const KEEP_ALIVE_TIMEOUT_MS = 72_000;

/** Node's test for the one expectation it meets (100-continue), as its http server applies it. */
const CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i;

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { predictor, audit } = opts;
  // The same default as startServer's: a program building the app alone gets the page too.
  const webDir = opts.webDir === undefined ? defaultWebDir() : opts.webDir;
  const startedAt = Date.now();
  const storeImages = opts.storeImages ?? true;
  const maxUploadBytes = opts.maxUploadBytes ?? 32 * 1024 * 1024;
  const queue = new WorkQueue(opts.concurrency ?? 2, opts.maxWaiting ?? 64);
  // Memory follows the concurrency limit: room for the uploads being predicted and two more arriving.
  const uploads = new UploadBudget(opts.uploadBudgetBytes ?? ((opts.concurrency ?? 2) + 2) * maxUploadBytes);
  const recent = new RecentImages();
  const tokenSet = opts.tokens instanceof TokenSet ? opts.tokens : new TokenSet(serverTokens(opts));
  // Read at each request: a set replaced while the server runs (SIGHUP) is used from the next request on.
  const tokenName = tokenSet.size ? (authorization: string | undefined) => tokenSet.match(authorization) : null;
  const proxies = trustedProxies(opts.trustProxy ?? []);
  const checkExposure = exposureCheck({ boundHost: opts.boundHost ?? '127.0.0.1', allowedHosts: opts.allowedHosts });
  const metrics = opts.metrics ?? new ServeMetrics();
  metrics.addGauge('cxr_predictions_running', 'Predictions being computed now', () => queue.running);
  metrics.addGauge('cxr_predictions_waiting', 'Predictions waiting for a free slot', () => queue.queued);
  metrics.addGauge(
    'cxr_upload_bytes_held',
    'Upload bytes held in memory by requests in flight',
    () => uploads.inFlight,
  );
  const { decodeStats, engineState, engineRestarts } = predictor;
  if (decodeStats) metrics.watchDecodePool(decodeStats);
  if (engineState && engineRestarts) metrics.watchEngine(engineState, engineRestarts);
  const logger = opts.logger ?? silentLogger();
  // The routes use the audit log through the guard: bounded waits, 503 AUDIT_UNAVAILABLE when it is away.
  const guard = new AuditGuard(audit, logger);
  metrics.watchAudit(guard);

  const headersTimeout = opts.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
  const requestTimeout = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  // Connections Node cut for its request timeout (answered 408 by clientErrorHandler): the request they carried
  // is then logged as the server's 408, not as a client that hung up.
  const timedOut = new WeakSet<object>();
  const app = Fastify({
    // Widened to Fastify's logger type, so that the instance keeps the default FastifyInstance type.
    loggerInstance: logger as FastifyBaseLogger,
    logController: requestLogController(opts.requestLog ?? true),
    bodyLimit: 1024 * 1024,
    // A JSON body (POST /jobs) with a __proto__ or constructor.prototype key anywhere is refused (400), never
    // stripped: stripped, the rest would pass the body's schema as if the key had never been sent. Pinned:
    // Fastify 5's default, kept explicit so that what the API promises (test/serve-hostile) does not follow a
    // later Fastify's default.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Job ids (a UID or sha256, the model's sha256, the operating point) are longer than the default 100.
    routerOptions: { maxParamLength: 300 },
    // Only the listed proxies, never `true`: a client believed could give itself any address (trust_proxy.ts).
    // It makes request.ip the client a listed proxy names; request.host and .protocol then read X-Forwarded-Host
    // and -Proto, which nothing here uses: the Host/Origin check reads the headers themselves (exposure.ts).
    trustProxy: proxies.length ? proxies : false,
    requestTimeout,
    // Pinned as the two above: Fastify 5's default (72 s), kept explicit for the reason KEEP_ALIVE_TIMEOUT_MS gives.
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // On close: stop accepting, drop idle keep-alive sockets, let in-flight requests finish.
    forceCloseConnections: 'idle',
    // closing.ts answers those as a problem instead.
    return503OnClosing: false,
    // A URL the router cannot take (bad escapes, a path segment over maxParamLength): still a problem.
    frameworkErrors: (err, _req, reply) =>
      sendProblem(
        reply,
        problem(
          400,
          'INVALID_REQUEST',
          err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path segment is too long' : err.message,
        ),
      ),
    // Answered, then closed: a half-open socket would outlive the request timeout and hold close() up.
    // A socket already sending a response (a bad request pipelined behind it) is only closed.
    clientErrorHandler: (err, socket) => {
      if ((err as { code?: string }).code === 'ERR_HTTP_REQUEST_TIMEOUT') timedOut.add(socket);
      const sending = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
      if (socket.writable && !sending)
        socket.end(clientErrorResponse(err as { code?: string }), () => socket.destroy());
      else socket.destroy();
    },
    // A misspelt filter must be an error, not silently dropped (fastify's default removes it).
    ajv: { customOptions: { removeAdditional: false } },
    // Node answers an HTTP/1.1 request without Host with a bare 400 of its own: the hook below answers it.
    http: {
      requireHostHeader: false,
      headersTimeout,
      connectionsCheckingInterval: Math.max(10, Math.min(2_000, Math.floor(headersTimeout / 4))),
    },
  });
  // Node answers an Expect other than 100-continue with a bare 417 unless this event has a listener: the
  // request goes on to fastify, whose hook below answers it as a problem.
  app.server.on('checkExpectation', (req, res) => app.server.emit('request', req, res));
  // First of all hooks: a request answered before its body's end by any of them (a 401, a 403 CROSS_ORIGIN) has the
  // rest read for 2 s at most, as an upload refused by its body watch (upload_watch.ts), not for as long as it comes.
  app.addHook('onRequest', async (req, reply) => lingerAfterAnswer(req.raw, reply.raw));

  // Before any route is added: it records them all, and the page's files (webDir) as GET and HEAD.
  const allowedMethods = methodTable(app, webDir);
  const routeLabel = routeLabels(allowedMethods);
  await registerSecurityHeaders(app);
  app.addHook('onRequest', async (req, reply) => {
    if (req.raw.httpVersion !== '1.1') return;
    if (req.headers.host === undefined)
      throw new HttpError(400, 'INVALID_REQUEST', 'an HTTP/1.1 request needs a Host header (RFC 9112, 3.2)');
    const expect = req.headers.expect;
    if (expect === undefined || CONTINUE.test(expect)) return;
    reply.header('Connection', 'close');
    const detail = `cannot meet "Expect: ${expect.slice(0, 100)}"; only 100-continue is supported (or send no Expect)`;
    return sendProblem(reply, problem(417, 'EXPECTATION_FAILED', detail));
  });
  await app.register(multipart, {
    // files: 2 so that a second file reaches readUpload, which refuses it with a clear 400. These are POST
    // /predictions' limits (one film); POST /jobs lifts files and parts for its films per request (routes/jobs.ts).
    limits: { fileSize: maxUploadBytes, files: 2, fields: 8, parts: 10, fieldSize: 1024, headerPairs: 100 },
  });
  await registerOpenApi(app, { authRequired: tokenName !== null, maxUploadBytes });
  const throttle = tokenName ? new AuthThrottle(opts.authThrottle) : undefined;
  addRequestGuards(app, { checkExposure, tokenName, metricsPublic: opts.metricsPublic, throttle });
  // A request that ends without its answer delivered: logged and counted once (dropped.ts).
  const countDropped = watchDroppedRequests(app, { metrics, routeLabel, requestTimeout, timedOut });
  watchUploadBodies(app, opts, { maxUploadBytes, requestTimeout }, uploads, countDropped);
  // Every answer, errors included, by the route pattern that matched (never the raw URL: unbounded); a 405 by
  // the pattern of the route that has its path.
  app.addHook('onResponse', async (req, reply) => {
    metrics.httpRequest(req.method, routeLabel(req, reply.statusCode), reply.statusCode, reply.elapsedTime / 1000);
  });
  // An upload refused for the shutdown is a prediction the server failed, as the route counts a full queue's BUSY:
  // counted here, as it never reaches the route.
  const predictPath = `${API_PREFIX}/predictions`;
  closeKeepAliveOnShutdown(app, (req) => {
    if (req.method === 'POST' && req.routeOptions.url === predictPath) metrics.predictionError('BUSY');
  });
  answerWithProblems(app, maxUploadBytes, allowedMethods);

  // The routes in the order the OpenAPI document lists them.
  await app.register(
    async (api) => {
      // Before the routes: query strings read strictly, unknown parameters refused (schemas_query.ts).
      strictQueryParams(api);
      // And the Accept header: 406 for a client that takes none of an operation's types (accept.ts).
      honourAccept(api);
      predictionRoutes(api, {
        predictor,
        audit: guard,
        queue,
        uploads,
        recent,
        metrics,
        storeImages,
        maxUploadBytes,
      });
      jobRoutes(api, {
        jobs: opts.jobs,
        operatingPoints: Object.keys(predictor.model.meta.operatingPoints),
        maxUploadBytes,
        maxFiles: JOB_FILES_MAX,
        uploads,
      });
      historyRoutes(api, {
        audit: guard.store,
        recent,
        operatingPoints: Object.keys(predictor.model.meta.operatingPoints),
        jobs: opts.jobs !== undefined,
      });
      modelRoutes(api, predictor);
      tokenRoute(api);
      healthRoute(api, {
        predictor,
        audit: guard,
        authRequired: tokenName !== null,
        startedAt,
        jobs: opts.jobs,
        maxUploadBytes,
      });
      openApiDocumentRoute(api, app);
    },
    { prefix: API_PREFIX },
  );
  metricsRoute(app, metrics);
  await webRoutes(app, webDir);
  return app;
}

/**
 * The body watch (upload_watch.ts) on every upload: within the route's byte limit, never idle or trickling,
 * and one client address sending several uploads holding at most the budget less room for one more upload, so
 * that another client's upload fits (one request alone, a POST /jobs of several films, is the budget's to
 * bound). `dropped`: a refusal that could not be answered.
 */
function watchUploadBodies(
  app: FastifyInstance,
  opts: AppOptions,
  { maxUploadBytes, requestTimeout }: { maxUploadBytes: number; requestTimeout: number },
  uploads: UploadBudget,
  dropped: CountDropped,
): void {
  const oneUpload = maxUploadBytes + MULTIPART_OVERHEAD;
  const shares = new ClientShares(Math.max(uploads.limit - oneUpload, oneUpload));
  const timing = {
    idleMs: opts.uploadIdleMs ?? BODY_DEFAULTS.idleMs,
    rateWindowMs: opts.uploadRateWindowMs ?? BODY_DEFAULTS.rateWindowMs,
    minBytesPerS: opts.uploadMinBytesPerS ?? BODY_DEFAULTS.minBytesPerS,
    deadlineMs: requestTimeout,
  };
  const jobsLimit = JOB_FILES_MAX * oneUpload;
  const routes = new Map<string, BodyRules>([
    [`${API_PREFIX}/predictions`, { ...timing, maxBytes: oneUpload, tooLarge: () => tooLarge(maxUploadBytes) }],
    [
      `${API_PREFIX}/jobs`,
      {
        ...timing,
        maxBytes: jobsLimit,
        tooLarge: () =>
          new HttpError(413, 'TOO_LARGE', `the request exceeds ${jobsLimit} bytes (${JOB_FILES_MAX} uploads at most)`),
      },
    ],
  ]);
  app.addHook('onRequest', async (req, reply) => {
    // Every request passes here (probes, page files): the upload routes' own first, the headers only for them.
    const rules = req.method === 'POST' ? routes.get(req.routeOptions.url ?? '') : undefined;
    if (!rules) return;
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length']) > 0;
    if (hasBody) watchBody(req, reply, rules, shares, (err) => dropped(req, reply, err));
  });
}
