// GET /metrics: the Prometheus text exposition (serve/metrics.ts), outside /api/v1 where scrapers
// look for it. It needs the API token like the API unless the server runs with --metrics-public
// (security.ts decides); it is left out of the OpenAPI document, which describes the clinical API.
import type { FastifyInstance } from 'fastify';
import type { ServeMetrics } from '../metrics';

export const METRICS_ROUTE = '/metrics';

export function metricsRoute(app: FastifyInstance, metrics: ServeMetrics): void {
  app.get(METRICS_ROUTE, { schema: { hide: true } }, async (_req, reply) => {
    reply.type(metrics.contentType()).header('Cache-Control', 'no-store');
    return metrics.text();
  });
}
