// JSON schemas of the v1 API. Fastify validates requests and serializes responses with them
// (fields not in a response schema are never sent), and @fastify/swagger turns them into the
// OpenAPI document, so the document cannot drift from what the server does.
import { NORMALIZE_MODES } from '../data/preprocess';

export const problemSchema = {
  $id: 'Problem',
  type: 'object',
  description: 'RFC 9457 problem details: every 4xx/5xx answer, as application/problem+json',
  properties: {
    type: { type: 'string', format: 'uri', description: 'urn:cxr:problem:<code>, e.g. urn:cxr:problem:too-many-pixels' },
    title: { type: 'string', description: 'the HTTP status\'s reason phrase' },
    status: { type: 'integer', description: 'the HTTP status code' },
    detail: { type: 'string', description: 'what went wrong with this request, for people' },
    code: { type: 'string', description: 'machine-readable cause, e.g. TOO_MANY_PIXELS, UNSUPPORTED_FORMAT, INVALID_REQUEST' },
  },
  required: ['type', 'title', 'status', 'detail', 'code'],
} as const;

/** A response entry for an error status: problem+json with the Problem schema. */
export function problemResponse(description: string) {
  return { description, content: { 'application/problem+json': { schema: { $ref: 'Problem#' } } } } as const;
}

const timings = {
  type: 'object',
  properties: {
    decodeMs: { type: 'number' },
    inferMs: { type: 'number' },
    heatmapMs: { type: 'number' },
    totalMs: { type: 'number' },
  },
  required: ['decodeMs', 'inferMs', 'totalMs'],
} as const;

const modelRef = {
  type: 'object',
  properties: { name: { type: 'string' }, version: { type: 'string' }, sha256: { type: 'string' } },
  required: ['name', 'version', 'sha256'],
} as const;

export const predictionSchema = {
  $id: 'Prediction',
  type: 'object',
  properties: {
    id: { type: 'string', format: 'uuid' },
    createdAt: { type: 'string', format: 'date-time' },
    probability: { type: 'number', minimum: 0, maximum: 1, description: 'calibrated probability of pneumonia' },
    logit: { type: 'number', description: 'mean logit over ensemble members and test-time views, before calibration' },
    label: { type: 'string', enum: ['NORMAL', 'PNEUMONIA'], description: 'PNEUMONIA when probability >= threshold' },
    operatingPoint: { type: 'string' },
    threshold: { type: 'number' },
    heatmapUrl: { type: ['string', 'null'], description: 'Grad-CAM heat map PNG (same aspect as the input), null when not made' },
    thumbnailUrl: { type: ['string', 'null'] },
    warnings: { type: 'array', items: { type: 'string' } },
    verdict: {
      type: 'object',
      description: 'what the result may be used for: assessed; cannot-assess (the label is not a finding); outside-population '
        + '(not the children aged 1–5 the model was made for). Sent with new predictions; history rows do not store it.',
      properties: {
        status: { type: 'string', enum: ['assessed', 'cannot-assess', 'outside-population'] },
        reasons: {
          type: 'array',
          items: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, required: ['code', 'message'] },
        },
      },
      required: ['status', 'reasons'],
    },
    ood: {
      type: ['object', 'null'],
      properties: { score: { type: 'number' }, threshold: { type: 'number' }, outOfDistribution: { type: 'boolean' } },
      required: ['score', 'threshold', 'outOfDistribution'],
    },
    input: {
      type: 'object',
      properties: {
        kind: { type: 'string' },
        width: { type: 'integer' },
        height: { type: 'integer' },
        sha256: { type: 'string' },
        bytes: { type: 'integer' },
      },
      required: ['kind', 'width', 'height', 'sha256', 'bytes'],
    },
    model: modelRef,
    timings,
    requestedBy: { type: ['string', 'null'], description: 'name of the API token that asked; null when the server needs no token' },
  },
  required: ['id', 'createdAt', 'probability', 'logit', 'label', 'operatingPoint', 'threshold', 'heatmapUrl',
    'thumbnailUrl', 'warnings', 'ood', 'input', 'model', 'timings', 'requestedBy'],
} as const;

export const idParams = {
  type: 'object',
  properties: { id: { type: 'string', format: 'uuid' } },
  required: ['id'],
} as const;

export function predictQuery(operatingPoints: string[]) {
  return {
    type: 'object',
    properties: {
      operatingPoint: { type: 'string', enum: operatingPoints, description: 'threshold to apply; default: the model\'s' },
      heatmap: { type: 'boolean', default: true, description: 'false skips the Grad-CAM heat map (faster)' },
    },
    additionalProperties: false,
  } as const;
}

export function historyQuery(operatingPoints: string[]) {
  return {
    type: 'object',
    properties: {
      label: { type: 'string', enum: ['NORMAL', 'PNEUMONIA'] },
      operatingPoint: { type: 'string', enum: operatingPoints, description: 'one of the served model\'s operating points' },
      since: { type: 'string', format: 'date-time', description: 'only predictions made at or after this time' },
      until: { type: 'string', format: 'date-time', description: 'only predictions made at or before this time' },
      hasWarnings: { type: 'boolean' },
      page: { type: 'integer', minimum: 1, default: 1 },
      limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 },
    },
    additionalProperties: false,
  } as const;
}

export const historyPageSchema = {
  type: 'object',
  properties: {
    items: { type: 'array', items: { $ref: 'Prediction#' } },
    total: { type: 'integer' },
    page: { type: 'integer' },
    limit: { type: 'integer' },
  },
  required: ['items', 'total', 'page', 'limit'],
} as const;

export const modelInfoSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    version: { type: 'string' },
    sha256: { type: 'string' },
    inputSize: { type: 'integer' },
    normalize: { type: 'string', enum: [...NORMALIZE_MODES], description: 'per-image intensity normalisation after the resize' },
    defaultOperatingPoint: { type: 'string' },
    operatingPoints: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        properties: {
          threshold: { type: 'number' },
          sensitivity: { type: ['number', 'null'] },
          specificity: { type: ['number', 'null'] },
        },
        required: ['threshold'],
      },
    },
    temperature: { type: 'number' },
    tta: { type: 'array', items: { type: 'string' } },
    meta: { type: 'object', additionalProperties: true, description: 'the model folder\'s cxr.json' },
    validation: { type: ['object', 'null'], additionalProperties: true, description: 'validation metrics from training' },
    modelCard: { type: ['string', 'null'], description: 'MODEL_CARD.md (markdown) when the folder has one' },
    files: {
      type: 'object',
      description: 'for loading the model in a browser (tf.loadLayersModel): one model.json per ensemble member',
      properties: {
        members: { type: 'array', items: { type: 'string' } },
        ood: { type: ['string', 'null'], description: 'the OOD gate\'s parameters (ood.json), null when the server runs without a gate' },
      },
      required: ['members', 'ood'],
    },
  },
  required: ['name', 'version', 'sha256', 'inputSize', 'defaultOperatingPoint', 'operatingPoints', 'temperature',
    'tta', 'meta', 'validation', 'modelCard', 'files'],
} as const;

export const healthSchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ok'] },
    model: modelRef,
    uptimeSeconds: { type: 'number' },
    predictions: { type: 'integer', description: 'rows in the audit log' },
    authRequired: { type: 'boolean' },
  },
  required: ['status', 'model', 'uptimeSeconds', 'predictions', 'authRequired'],
} as const;
