// POST /predictions: read the upload within the memory budget, predict in the work queue, write
// the audit record, then answer. Reading past predictions is in history.ts.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { performance } from 'node:perf_hooks';
import { auditRecordOf } from '../../predict/audit_record';
import type { AuditRecord } from '../audit';
import type { AuditGuard } from '../audit_guard';
import { DecodeWorkerError } from '../decode_pool';
import { PREDICTION_ERROR_CODES, type PredictionErrorCode, type ServeMetrics, WORKER_FAILED } from '../metrics';
import { isClientInputError, type ServePredictor } from '../predictor_port';
import { problemOf } from '../problem';
import type { WorkQueue } from '../queue';
import type { RecentImages } from '../recent_images';
import { compactImages } from '../retention';
import { predictQuery, problemResponse } from '../schemas';
import { clientGone, notMultipart, readUpload, UploadBudget, UploadTicket } from '../upload';
import { API_ERRORS, noStore, toApi } from './common';

export interface PredictionRouteOptions {
  predictor: ServePredictor;
  audit: AuditGuard;
  queue: WorkQueue;
  uploads: UploadBudget;
  /** Heat maps of predictions whose images the audit log does not keep (storeImages false). */
  recent: RecentImages;
  metrics: ServeMetrics;
  storeImages: boolean;
  maxUploadBytes: number;
}

interface PredictQuery {
  operatingPoint?: string;
  heatmap: boolean;
  patientAge?: number;
}

const SERVER_CODES = new Set<string>(PREDICTION_ERROR_CODES);

/**
 * What the body parser (JSON, text) refuses before the route runs: this route takes multipart/form-data only, so a
 * body of another type is its 415 NOT_MULTIPART (docs/api.md), not a 400 "the JSON body cannot be read" or a 413
 * of the parser's limit, which sent the client to fix a JSON body the route never reads.
 */
const OTHER_BODY_ERRORS = new Set([
  'FST_ERR_CTP_INVALID_MEDIA_TYPE',
  'FST_ERR_CTP_INVALID_JSON_BODY',
  'FST_ERR_CTP_EMPTY_JSON_BODY',
  'FST_ERR_CTP_BODY_TOO_LARGE',
]);

/**
 * The code a failure is answered with when it is the server's (5xx, as problem.ts answers it: problemOf), for
 * cxr_prediction_errors_total; null for the client's (4xx, a client that hung up). A 5xx code the metric does not
 * list is counted as OTHER.
 */
export function serverFailureCode(e: unknown): PredictionErrorCode | null {
  const { status, code } = problemOf(e);
  if (status < 500) return null;
  return SERVER_CODES.has(code) ? (code as PredictionErrorCode) : 'OTHER';
}

export function predictionRoutes(api: FastifyInstance, opts: PredictionRouteOptions): void {
  const { predictor, audit, queue, uploads, recent, metrics, storeImages, maxUploadBytes } = opts;
  const operatingPoints = Object.keys(predictor.model.meta.operatingPoints);

  type PredictRequest = FastifyRequest<{ Querystring: PredictQuery }>;
  // Upload, prediction, audit row, answer; the route below counts its failures.
  const answer = async (req: PredictRequest, reply: FastifyReply) => {
    const received = performance.now();
    const gone = clientGone(reply);
    const ticket = new UploadTicket(uploads);
    let result: Awaited<ReturnType<typeof predictor.predict>>;
    try {
      const bytes = await readUpload(req, { maxBytes: maxUploadBytes, budget: uploads }, ticket);
      // During an outage of the audit log, its answer first: no model time for a prediction that
      // could not be answered.
      await audit.ensure('nothing was predicted; send the image again');
      const { operatingPoint, heatmap, patientAge } = req.query;
      result = await queue.run(() => {
        // A client that hung up while this request waited for its slot gets nothing from the work: it is
        // dropped before its decode starts (clientGone). One that hangs up later is still predicted and
        // audited, as the prediction may be under way or done: its row is written whether or not the
        // answer arrives.
        gone.throwIfAborted();
        return predictor
          .predict(bytes, { operatingPoint, heatmap, patientAge, thumbnail: storeImages })
          .catch((e: unknown) => {
            // Only the prediction's own failures: upload and busy errors are in the HTTP counts.
            if (isClientInputError(e)) metrics.inputFailure(e.code);
            else if (e instanceof DecodeWorkerError) metrics.inputFailure(WORKER_FAILED);
            throw e;
          });
      });
    } finally {
      ticket.release(); // the upload's bytes are no longer needed (the result holds its hash)
    }
    const record: AuditRecord = auditRecordOf(result, {
      model: predictor.model,
      latencyMs: performance.now() - received,
      requestedBy: req.tokenName,
      hasHeatmap: storeImages && result.heatmapPng !== undefined,
      hasThumbnail: storeImages && result.thumbnailPng !== undefined,
    });
    const images = storeImages
      ? await compactImages({ thumbnailPng: result.thumbnailPng, heatmapPng: result.heatmapPng })
      : null;
    // A row that could not be written is an answer that cannot be given. One that timed out may still
    // be committed: a row without an answer is harmless, an answer without a row is not.
    await audit.insert(
      record,
      images,
      'the prediction was not answered, as none is without its audit row; send the image again',
    );
    if (!storeImages && result.heatmapPng) recent.set(record.id, result.heatmapPng);
    metrics.prediction(result, performance.now() - received);
    noStore(reply);
    // The age the verdict took is the answer's alone: the audit log keeps no patient data (prediction_schema.ts).
    return {
      ...toApi(record, result.heatmapPng !== undefined, record.hasThumbnail),
      verdict: result.verdict,
      age: result.age,
    };
  };

  api.post<{ Querystring: PredictQuery }>(
    '/predictions',
    {
      schema: {
        summary: 'Predict from one image',
        operationId: 'createPrediction',
        description:
          'Send the image as multipart/form-data in a field named "image". The prediction is written to ' +
          'the audit log before the answer is sent.',
        tags: ['predictions'],
        consumes: ['multipart/form-data'],
        querystring: predictQuery(operatingPoints),
        response: {
          200: { description: 'The prediction, already written to the audit log', $ref: 'Prediction#' },
          ...API_ERRORS,
          413: problemResponse('Upload over the byte limit, or an image over the pixel limit'),
          415: problemResponse('Not multipart/form-data, or not a JPEG, PNG or DICOM image'),
          422: problemResponse(
            'The image cannot be read, or was refused as not a chest X-ray; or it was being predicted each of the ' +
              'two times the engine stopped (ENGINE_FAULT: not predicted again for now)',
          ),
          503: problemResponse(
            'Busy (too many predictions or uploads at once), shutting down, the audit log unavailable ' +
              '(AUDIT_UNAVAILABLE: nothing is answered without its audit row), or the model engine restarting ' +
              '(ENGINE_RESTARTING: send the image again) or unable to load the model (ENGINE_UNAVAILABLE); see ' +
              'Retry-After',
          ),
        },
      },
      errorHandler: (err, req) => {
        throw OTHER_BODY_ERRORS.has(err.code) && !req.isMultipart() ? notMultipart(req) : err;
      },
    },
    async (req, reply) => {
      try {
        return await answer(req, reply);
      } catch (e) {
        // The server's failures by their answer's code: the HTTP counts have only the status.
        const code = serverFailureCode(e);
        if (code) metrics.predictionError(code);
        throw e;
      }
    },
  );
}
