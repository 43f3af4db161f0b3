// Past predictions from the audit log: one page of them, one by id, and its images.
import type { FastifyInstance } from 'fastify';
import { statusOf, type VerdictStatus } from '../../predict/verdict';
import type { AuditStore } from '../audit';
import { HttpError } from '../http_error';
import type { RecentImages } from '../recent_images';
import { historyPageSchema, historyQuery, idParams, problemResponse } from '../schemas';
import { mayRead } from '../security';
import { API_ERRORS, noStore, notFound, predictionId, toApi } from './common';

/** Every route here reads the audit log, which may be away. */
const UNAVAILABLE = {
  503: problemResponse('The audit log does not answer (AUDIT_UNAVAILABLE), or shutting down; see Retry-After'),
};

export interface HistoryRouteOptions {
  audit: AuditStore;
  /** Heat maps kept in memory when the audit log keeps no images: they still count as available. */
  recent: RecentImages;
  operatingPoints: string[];
  /** Whether this server has a job queue: a prediction a job names may then be in a worker's audit log only. */
  jobs?: boolean;
}

/**
 * What the 404 of an unknown prediction adds on a server with a job queue: a job's result names the prediction its
 * worker wrote to its own audit log, and a worker on another audit log than the server's makes every such id
 * unknown here, which a bare "no prediction" left the integrator to guess.
 */
export const WORKER_AUDIT_HINT =
  "a prediction named by a job's result (GET /api/v1/jobs/ID) was written by the cxr worker that ran the job, to " +
  'its audit log: if this server does not know it, that worker writes to another audit log than this server ' +
  'reads (a server and its workers must share one, the same --db or CXR_DB: docs/deployment.md, the job queue)';

export function historyRoutes(api: FastifyInstance, o: HistoryRouteOptions): void {
  const { audit, recent, operatingPoints } = o;
  const unknown = (id: string) =>
    `no prediction with id ${id}${o.jobs ? ` in this server's audit log; ${WORKER_AUDIT_HINT}` : ''}`;
  api.get<{
    Querystring: {
      label?: string;
      verdict?: VerdictStatus;
      operatingPoint?: string;
      since?: string;
      until?: string;
      hasWarnings?: boolean;
      page: number;
      limit: number;
    };
  }>(
    '/predictions',
    {
      schema: {
        summary: 'Past predictions, newest first',
        operationId: 'listPredictions',
        tags: ['predictions'],
        querystring: historyQuery(operatingPoints),
        response: {
          200: { description: 'One page of the audit log', ...historyPageSchema },
          ...API_ERRORS,
          ...UNAVAILABLE,
        },
      },
    },
    async (req, reply) => {
      noStore(reply);
      const { since, until } = req.query;
      // Both are UTC times by now (schemas_query.ts), in one form: compared as instants. An empty range
      // answered "no predictions" and read as an empty log.
      if (since !== undefined && until !== undefined && Date.parse(since) > Date.parse(until))
        throw new HttpError(
          400,
          'INVALID_REQUEST',
          `query parameters 'since' (${since}) and 'until' (${until}) are the wrong way round: 'since' is after ` +
            "'until', so no time is in between; swap them",
        );
      const page = await audit.list({ ...req.query, requestedBy: req.ownRecordsOnly ?? undefined });
      return {
        ...page,
        items: page.items.map((r) => toApi(r, r.hasHeatmap || recent.get(r.id) !== null, r.hasThumbnail)),
      };
    },
  );

  api.get<{ Params: { id: string } }>(
    '/predictions/:id',
    {
      schema: {
        summary: 'One past prediction',
        operationId: 'getPrediction',
        tags: ['predictions'],
        params: idParams,
        response: {
          200: { description: 'The prediction as it was answered', $ref: 'Prediction#' },
          ...API_ERRORS,
          ...notFound('No prediction with this id'),
          ...UNAVAILABLE,
        },
      },
    },
    async (req, reply) => {
      noStore(reply);
      const id = predictionId(req.params.id);
      const r = await audit.get(id);
      if (!r || !mayRead(req, r)) throw new HttpError(404, 'NOT_FOUND', unknown(id));
      return toApi(r, r.hasHeatmap || recent.get(r.id) !== null, r.hasThumbnail);
    },
  );

  for (const which of ['heatmap', 'thumbnail'] as const) {
    api.get<{ Params: { id: string } }>(
      `/predictions/:id/${which}.png`,
      {
        schema: {
          summary: which === 'heatmap' ? "The prediction's Grad-CAM heat map (PNG)" : 'A small copy of the input (PNG)',
          operationId: which === 'heatmap' ? 'getPredictionHeatmap' : 'getPredictionThumbnail',
          tags: ['predictions'],
          params: idParams,
          produces: ['image/png'],
          response: {
            200: {
              description: `The ${which} (PNG)`,
              content: { 'image/png': { schema: { type: 'string', format: 'binary' } } },
            },
            ...API_ERRORS,
            ...notFound(
              `No prediction with this id, or it has no ${which === 'heatmap' ? 'heat map' : which} (none made, ` +
                'none kept, or removed after the image retention period; the detail says which)',
            ),
            ...UNAVAILABLE,
          },
        },
      },
      async (req, reply) => {
        const id = predictionId(req.params.id);
        if (req.ownRecordsOnly !== null && !mayRead(req, await audit.get(id)))
          throw new HttpError(404, 'NOT_FOUND', unknown(id));
        const png = (await audit.image(id, which)) ?? (which === 'heatmap' ? recent.get(id) : null);
        if (!png) throw new HttpError(404, 'NOT_FOUND', await whyNoImage(audit, id, which, unknown));
        // A prediction's images never change; only the token holder may cache them.
        // Made from a patient's film: kept by no cache, not even the browser's (a shared ward computer).
        return reply.type('image/png').header('Cache-Control', 'no-store').send(png);
      },
    );
  }
}

/** Why a prediction's image is not there, for the 404: no such prediction, none made, or none kept. */
async function whyNoImage(
  audit: AuditStore,
  id: string,
  which: 'heatmap' | 'thumbnail',
  unknown: (id: string) => string,
): Promise<string> {
  const r = await audit.get(id);
  if (!r) return unknown(id);
  if (which === 'heatmap' && statusOf(r) === 'cannot-assess')
    return `prediction ${id} has no heat map: the image could not be assessed, so none was made`;
  if (which === 'thumbnail')
    return (
      `prediction ${id} has no thumbnail stored ` +
      '(the server kept no images then, or removed it after the retention period)'
    );
  return `prediction ${id} has no heat map stored (not asked for with it, or removed after the image retention period)`;
}
