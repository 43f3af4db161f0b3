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

export function healthRoute(
  api: FastifyInstance,
  { predictor, audit, authRequired, startedAt }: HealthRouteOptions,
): void {
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
      predictions: await audit.count(),
      authRequired,
    }),
  );
}
