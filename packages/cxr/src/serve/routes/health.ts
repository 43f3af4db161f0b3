// GET /health: liveness and the served model, public even when the server needs a token.
import type { FastifyInstance } from 'fastify';
import type { AuditStore } from '../audit';
import type { ServePredictor } from '../predictor_port';
import { healthSchema } from '../schemas';

export interface HealthRouteOptions {
  predictor: ServePredictor;
  audit: AuditStore;
  authRequired: boolean;
  /** When the app was built (Date.now()): the uptime counts from there. */
  startedAt: number;
}

/** How long /health reuses the audit log's row count: a probe every second must not scan the table each time. */
export const HEALTH_COUNT_TTL_MS = 5_000;

export function healthRoute(
  api: FastifyInstance,
  { predictor, audit, authRequired, startedAt }: HealthRouteOptions,
): void {
  // One count in flight at a time, reused for HEALTH_COUNT_TTL_MS; a failed count is not kept.
  let counted: { at: number; n: Promise<number> } | null = null;
  const predictions = (): Promise<number> => {
    const now = Date.now();
    if (!counted || now - counted.at > HEALTH_COUNT_TTL_MS) {
      const n = audit.count();
      counted = { at: now, n };
      n.catch(() => {
        if (counted?.n === n) counted = null;
      });
    }
    return counted.n;
  };
  api.get(
    '/health',
    {
      schema: {
        summary: 'Liveness and the served model (no token needed)',
        tags: ['service'],
        security: [],
        response: { 200: { description: 'The server is up and the model is loaded', ...healthSchema } },
      },
    },
    async () => ({
      status: 'ok' as const,
      model: { name: predictor.model.name, version: predictor.model.version, sha256: predictor.model.sha256 },
      uptimeSeconds: (Date.now() - startedAt) / 1000,
      predictions: await predictions(),
      authRequired,
    }),
  );
}
