// GET /api/v1/model: the served model's facts. Fastify serializes the answer with this schema and
// the web page's client types it with FromSchema, so the two cannot drift.
// No Node imports: the web page imports the type of this module.
import type { FromSchema } from 'json-schema-to-ts';
import { NORMALIZE_MODES } from '../data/preprocess';
import { TTA_VIEWS } from '../models/tta_views';

export const operatingPointSchema = {
  type: 'object',
  properties: {
    threshold: { type: 'number' },
    sensitivity: { type: ['number', 'null'] },
    specificity: { type: ['number', 'null'] },
    rule: { type: 'string' },
  },
  required: ['threshold'],
  additionalProperties: false,
} as const;

export const modelInfoSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    version: { type: 'string' },
    sha256: { type: 'string' },
    inputSize: { type: 'integer' },
    normalize: {
      type: 'string',
      enum: NORMALIZE_MODES,
      description: 'per-image intensity normalisation after the resize',
    },
    defaultOperatingPoint: { type: 'string' },
    operatingPoints: { type: 'object', additionalProperties: operatingPointSchema },
    temperature: { type: 'number' },
    logitBias: { type: 'number', description: 'calibrated probability = sigmoid(logit / temperature + logitBias)' },
    tta: { type: 'array', items: { type: 'string', enum: TTA_VIEWS } },
    meta: {
      type: 'object',
      additionalProperties: true,
      description:
        "the model folder's cxr.json, where it was made left out: data.root, ensemble.members[].from and any " +
        'absolute path or URL in it are reduced to their last component (/mnt/films/chest_xray: chest_xray)',
    },
    validation: {
      type: ['object', 'null'],
      additionalProperties: true,
      description: 'validation metrics from training',
    },
    modelCard: {
      type: ['string', 'null'],
      description:
        'MODEL_CARD.md (markdown) when the folder has one, its absolute paths reduced to their last component',
    },
    files: {
      type: 'object',
      description: 'for loading the model in a browser (tf.loadLayersModel): one model.json per ensemble member',
      properties: {
        members: { type: 'array', items: { type: 'string' } },
        ood: {
          type: ['string', 'null'],
          description: "the OOD gate's parameters (ood.json), null when the server runs without a gate",
        },
      },
      required: ['members', 'ood'],
      additionalProperties: false,
    },
  },
  required: [
    'name',
    'version',
    'sha256',
    'inputSize',
    'normalize',
    'defaultOperatingPoint',
    'operatingPoints',
    'temperature',
    'logitBias',
    'tta',
    'meta',
    'validation',
    'modelCard',
    'files',
  ],
  additionalProperties: false,
} as const;

export type ModelInfo = FromSchema<typeof modelInfoSchema>;
export type OperatingPointInfo = FromSchema<typeof operatingPointSchema>;
