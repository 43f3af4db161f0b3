// The HTTP application: security headers, optional bearer token, the v1 JSON API, its OpenAPI
// document and the web page. Built from already-open parts (predictor, audit log) so that tests
// can inject requests without a port, and so that start-up order stays in server.ts.
import Fastify, { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import helmet from '@fastify/helmet';
import multipart from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import swagger from '@fastify/swagger';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { AuditLog, AuditRecord } from './audit';
import { NamedToken, tokenMatcher } from './auth';
import { exposureCheck } from './exposure';
import { listModelFiles } from './model_files';
import type { ServePredictor } from './predictor_port';
import { RecentImages } from './recent_images';
import { WorkQueue } from './queue';
import { HttpError } from './http_error';
import { readUpload, UploadBudget, UploadTicket } from './upload';
import { problem, sendProblem, toProblem } from './problem';
import { compactImages } from './retention';
import {
  problemResponse, problemSchema, healthSchema, historyPageSchema, historyQuery, idParams, modelInfoSchema, predictionSchema, predictQuery,
} from './schemas';

export interface AppOptions {
  predictor: ServePredictor;
  audit: AuditLog;
  /** When set, every /api/v1 route except health and the OpenAPI document needs `Authorization: Bearer <token>`. */
  apiToken?: string;
  /** Named tokens (the audit log records the name); apiToken, when also set, is one more named "default". */
  tokens?: NamedToken[];
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
  /** Drop an upload whose body stops arriving for this long (default 10 s). */
  uploadIdleMs?: number;
  /** Folder of the built web page (index.html, app.js, ...); the page is not served when absent. */
  webDir?: string | null;
  /** Predictions running at once, and waiting beyond that before 503 (defaults 2 and 64). */
  concurrency?: number;
  maxWaiting?: number;
  logger?: boolean | { level: string };
}

export const API_PREFIX = '/api/v1';
const PUBLIC_API_ROUTES = new Set([`${API_PREFIX}/health`, `${API_PREFIX}/openapi.json`]);

export { HttpError };

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

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { predictor, audit } = opts;
  const storeImages = opts.storeImages ?? true;
  const maxUploadBytes = opts.maxUploadBytes ?? 32 * 1024 * 1024;
  const meta = predictor.model.meta;
  const operatingPoints = Object.keys(meta.operatingPoints);
  const modelFiles = listModelFiles(predictor.model.dir, meta);
  const cardPath = path.join(predictor.model.dir, 'MODEL_CARD.md');
  const modelCard = fs.existsSync(cardPath) ? fs.readFileSync(cardPath, 'utf8') : null;
  const queue = new WorkQueue(opts.concurrency ?? 2, opts.maxWaiting ?? 64);
  // Memory follows the concurrency limit: room for the uploads being predicted and two more arriving.
  const uploads = new UploadBudget(opts.uploadBudgetBytes ?? ((opts.concurrency ?? 2) + 2) * maxUploadBytes);
  const recent = new RecentImages();
  const tokens = [...(opts.tokens ?? []), ...(opts.apiToken ? [{ name: 'default', token: opts.apiToken }] : [])];
  const tokenName = tokens.length ? tokenMatcher(tokens) : null;
  const checkExposure = exposureCheck({ boundHost: opts.boundHost ?? '127.0.0.1', allowedHosts: opts.allowedHosts });
  const startedAt = Date.now();

  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: 1024 * 1024,
    requestTimeout: 120_000,
    // On close: stop accepting, drop idle keep-alive sockets, let in-flight requests finish.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // A misspelt filter must be an error, not silently dropped (fastify's default removes it).
    ajv: { customOptions: { removeAdditional: false } },
  });

  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: true, directives: CSP_DIRECTIVES },
    // Plain HTTP on localhost: HSTS would be wrong here (terminate TLS in a proxy and set it there).
    strictTransportSecurity: false,
  });
  await app.register(multipart, {
    // files: 2 so that a second file reaches readUpload, which refuses it with a clear 400.
    limits: { fileSize: maxUploadBytes, files: 2, fields: 8, parts: 10, fieldSize: 1024, headerPairs: 100 },
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'cxr API',
        version: '1.0.0',
        description: 'Pneumonia probability from pediatric chest X-rays (JPEG, PNG or DICOM), with Grad-CAM heat maps '
          + 'and an audit log of every prediction. A decision aid, not a diagnosis.',
      },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http', scheme: 'bearer',
            description: 'The API token (CXR_API_TOKEN, CXR_API_TOKENS or --tokens-file) when the server is started with one',
          },
        },
      },
      // Health and this document are public (their routes say security: []); the rest needs the
      // token when one is configured, and nothing otherwise ({} = no requirement).
      security: tokenName ? [{ bearer: [] }] : [{ bearer: [] }, {}],
    },
    // Name shared schemas after their $id, so the document reads components/schemas/Prediction.
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
    transformObject: (doc) => {
      // The upload is streamed (not validated by a body schema), so its shape is described here.
      const openapi = 'openapiObject' in doc ? doc.openapiObject : null;
      const post = (openapi?.paths?.[`${API_PREFIX}/predictions`] as Record<string, Record<string, unknown>> | undefined)?.post;
      if (post) {
        post.requestBody = {
          required: true,
          content: {
            'multipart/form-data': {
              schema: {
                type: 'object',
                properties: { image: { type: 'string', format: 'binary', description: `JPEG, PNG or DICOM, at most ${maxUploadBytes} bytes` } },
                required: ['image'],
              },
            },
          },
        };
      }
      return openapi ?? {};
    },
  });
  app.addSchema(problemSchema);
  app.addSchema(predictionSchema);

  app.decorateRequest('tokenName', null);
  app.addHook('onRequest', async (req) => checkExposure(req));
  app.addHook('onRequest', async (req, reply) => {
    if (!tokenName) return;
    // Decide on the route that matched (its pattern, after the router decoded the path), never on
    // the raw URL: '/%61pi/v1/predictions' reaches the same handler as '/api/v1/predictions'.
    // Unmatched requests have no pattern and fall through to the 404 handler.
    const route = req.routeOptions.url;
    if (route === undefined || !route.startsWith('/api/') || PUBLIC_API_ROUTES.has(route)) return;
    const name = tokenName(req.headers.authorization);
    if (name === null) {
      reply.header('WWW-Authenticate', 'Bearer realm="cxr"');
      throw new HttpError(401, 'UNAUTHORIZED', 'this server needs an API token: send "Authorization: Bearer <token>"');
    }
    req.tokenName = name;
  });

  // Keep-alive sockets that finish a request after close() began would hold the server open
  // until their idle timeout: tell those clients to disconnect.
  let closing = false;
  app.addHook('preClose', async () => { closing = true; });
  app.addHook('onSend', async (_req, reply) => {
    if (closing) reply.header('Connection', 'close');
  });

  app.setErrorHandler((err: FastifyError, req, reply) => sendProblem(reply, toProblem(err, req, maxUploadBytes)));
  app.setNotFoundHandler((req, reply) => {
    sendProblem(reply, problem(404, 'NOT_FOUND', `no such resource: ${req.method} ${req.url.split('?')[0].slice(0, 200)}`));
  });

  const errors = {
    400: problemResponse('Invalid request: a query or path parameter is wrong (the detail names it)'),
    401: problemResponse('An API token is required and was missing or wrong'),
    403: problemResponse('Host not allowed, or a cross-origin request'),
    404: problemResponse('No such prediction, image or file'),
  };

  const toApi = (r: AuditRecord, heatmapAvailable: boolean, thumbnailAvailable: boolean) => ({
    ...r,
    heatmapUrl: heatmapAvailable ? `${API_PREFIX}/predictions/${r.id}/heatmap.png` : null,
    thumbnailUrl: thumbnailAvailable ? `${API_PREFIX}/predictions/${r.id}/thumbnail.png` : null,
  });

  await app.register(async (api) => {
    api.post<{ Querystring: { operatingPoint?: string; heatmap: boolean } }>('/predictions', {
      schema: {
        summary: 'Predict from one image',
        description: 'Send the image as multipart/form-data in a field named "image". The prediction is written to '
          + 'the audit log before the answer is sent.',
        tags: ['predictions'],
        consumes: ['multipart/form-data'],
        querystring: predictQuery(operatingPoints),
        response: {
          200: { description: 'The prediction, already written to the audit log', $ref: 'Prediction#' },
          ...errors,
          413: problemResponse('Upload over the byte limit, or an image over the pixel limit'),
          415: problemResponse('Not multipart/form-data, or not a JPEG, PNG or DICOM image'),
          422: problemResponse('The image cannot be read, or was refused as not a chest X-ray'),
          503: problemResponse('Busy (too many predictions or uploads at once), or shutting down; see Retry-After'),
        },
      },
    }, async (req, reply) => {
      const received = performance.now();
      const ticket = new UploadTicket(uploads);
      let result: Awaited<ReturnType<typeof predictor.predict>>;
      try {
        const bytes = await readUpload(req, { maxBytes: maxUploadBytes, budget: uploads, idleMs: opts.uploadIdleMs }, ticket);
        const { operatingPoint, heatmap } = req.query;
        result = await queue.run(() => predictor.predict(bytes, { operatingPoint, heatmap, thumbnail: storeImages }));
      } finally {
        ticket.release(); // the upload's bytes are no longer needed (the result holds its hash)
      }
      const record: AuditRecord = {
        id: crypto.randomUUID(),
        createdAt: new Date().toISOString(),
        input: result.input,
        model: { name: predictor.model.name, version: predictor.model.version, sha256: predictor.model.sha256 },
        probability: result.probability,
        logit: result.logit,
        threshold: result.threshold,
        operatingPoint: result.operatingPoint,
        label: result.label,
        warnings: result.warnings,
        ood: result.ood,
        hasHeatmap: storeImages && result.heatmapPng !== undefined,
        hasThumbnail: storeImages && result.thumbnailPng !== undefined,
        timings: result.timings,
        latencyMs: performance.now() - received,
        requestedBy: req.tokenName,
      };
      audit.insert(record, storeImages ? await compactImages({ thumbnailPng: result.thumbnailPng, heatmapPng: result.heatmapPng }) : null);
      if (!storeImages && result.heatmapPng) recent.set(record.id, result.heatmapPng);
      noStore(reply);
      return { ...toApi(record, result.heatmapPng !== undefined, record.hasThumbnail), verdict: result.verdict };
    });

    api.get<{ Querystring: { label?: string; operatingPoint?: string; since?: string; until?: string; hasWarnings?: boolean; page: number; limit: number } }>(
      '/predictions', {
        schema: {
          summary: 'Past predictions, newest first',
          tags: ['predictions'],
          querystring: historyQuery(operatingPoints),
          response: { 200: { description: 'One page of the audit log', ...historyPageSchema }, ...errors },
        },
      }, async (req, reply) => {
        noStore(reply);
        const page = audit.list(req.query);
        return { ...page, items: page.items.map((r) => toApi(r, r.hasHeatmap || recent.get(r.id) !== null, r.hasThumbnail)) };
      });

    api.get<{ Params: { id: string } }>('/predictions/:id', {
      schema: { summary: 'One past prediction', tags: ['predictions'], params: idParams, response: { 200: { description: 'The prediction as it was answered', $ref: 'Prediction#' }, ...errors } },
    }, async (req, reply) => {
      noStore(reply);
      const r = audit.get(req.params.id);
      if (!r) throw new HttpError(404, 'NOT_FOUND', `no prediction with id ${req.params.id}`);
      return toApi(r, r.hasHeatmap || recent.get(r.id) !== null, r.hasThumbnail);
    });

    for (const which of ['heatmap', 'thumbnail'] as const) {
      api.get<{ Params: { id: string } }>(`/predictions/:id/${which}.png`, {
        schema: {
          summary: which === 'heatmap' ? 'The prediction\'s Grad-CAM heat map (PNG)' : 'A small copy of the input (PNG)',
          tags: ['predictions'],
          params: idParams,
          produces: ['image/png'],
          response: {
            200: { description: `The ${which} (PNG)`, content: { 'image/png': { schema: { type: 'string', format: 'binary' } } } },
            ...errors,
          },
        },
      }, async (req, reply) => {
        const png = audit.image(req.params.id, which) ?? (which === 'heatmap' ? recent.get(req.params.id) : null);
        if (!png) throw new HttpError(404, 'NOT_FOUND', `no ${which} for prediction ${req.params.id}`);
        // A prediction's images never change; only the token holder may cache them.
        return reply.type('image/png').header('Cache-Control', 'private, max-age=86400, immutable').send(png);
      });
    }

    api.get('/model', {
      schema: { summary: 'The served model: cxr.json, validation metrics, model card', tags: ['model'], response: { 200: { description: 'The model\'s facts, metrics and card', ...modelInfoSchema }, ...errors } },
    }, async () => ({
      name: predictor.model.name,
      version: predictor.model.version,
      sha256: predictor.model.sha256,
      inputSize: meta.inputSize,
      normalize: meta.preprocessing.normalize ?? 'none',
      defaultOperatingPoint: meta.defaultOperatingPoint,
      operatingPoints: meta.operatingPoints,
      temperature: meta.temperature,
      tta: meta.tta,
      meta,
      validation: meta.validation ?? null,
      modelCard,
      files: {
        members: modelFiles.members.map((m) => `${API_PREFIX}/model/files/${m}`),
        ood: modelFiles.ood && `${API_PREFIX}/model/files/${modelFiles.ood}`,
      },
    }));

    api.get<{ Params: { '*': string } }>('/model/files/*', {
      schema: {
        summary: 'Model files for running the model in the browser (TF.js Layers format)',
        tags: ['model'],
        params: { type: 'object', properties: { '*': { type: 'string' } } },
        produces: ['application/json', 'application/octet-stream'],
        response: {
          200: {
            description: 'model.json (application/json) or a weight shard (application/octet-stream)',
            content: {
              'application/json': { schema: { type: 'object', additionalProperties: true } },
              'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
            },
          },
          ...errors,
        },
      },
    }, async (req, reply) => {
      const rel = req.params['*'];
      const file = modelFiles.files.get(rel);
      if (!file) throw new HttpError(404, 'NOT_FOUND', `no model file '${rel}'`);
      reply.type(rel.endsWith('.json') ? 'application/json' : 'application/octet-stream');
      reply.header('Cache-Control', 'private, no-cache');
      return reply.send(fs.createReadStream(file));
    });

    api.get('/health', {
      schema: { summary: 'Liveness and the served model (no token needed)', tags: ['service'], security: [],
        response: { 200: { description: 'The server is up and the model is loaded', ...healthSchema } } },
    }, async () => ({
      status: 'ok' as const,
      model: { name: predictor.model.name, version: predictor.model.version, sha256: predictor.model.sha256 },
      uptimeSeconds: (Date.now() - startedAt) / 1000,
      predictions: audit.count(),
      authRequired: tokenName !== null,
    }));

    api.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  }, { prefix: API_PREFIX });

  if (opts.webDir && fs.existsSync(path.join(opts.webDir, 'index.html'))) {
    await app.register(fastifyStatic, {
      root: opts.webDir,
      prefix: '/',
      index: 'index.html',
      dotfiles: 'deny',
      // The bundle's names do not change between builds: make the browser revalidate.
      cacheControl: true,
      maxAge: 0,
    });
  } else {
    app.get('/', { schema: { hide: true } }, async (_req, reply) =>
      reply.type('text/plain; charset=utf-8').send('cxr API server. The web page is not built: run `npm run build` in packages/cxr.\n'));
  }
  return app;
}

/** Predictions are medical results: no browser or proxy may keep a copy. */
function noStore(reply: FastifyReply): void {
  reply.header('Cache-Control', 'no-store');
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The name of the API token the request carried; null when the server needs none. */
    tokenName: string | null;
  }
}

