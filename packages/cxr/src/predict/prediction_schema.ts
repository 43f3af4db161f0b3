// The prediction's shape, written once. These JSON schemas are what Fastify serializes answers
// with and what the OpenAPI document shows; the TypeScript types of the Predictor's result, the
// audit record and the web page's API client are derived from them (json-schema-to-ts), so a
// field added here reaches every one of them, and a field missing here reaches none.
// No Node imports: the web page imports the types of this module.
import type { FromSchema } from 'json-schema-to-ts';
import type { AnswerAge, Verdict } from './verdict';

export const LABELS = ['NORMAL', 'PNEUMONIA'] as const;
export const INPUT_KINDS = ['jpeg', 'png', 'dicom'] as const;
export const VERDICT_STATUSES = ['assessed', 'cannot-assess', 'outside-population'] as const;
/** Where the age an answer took came from (predict/verdict.ts patientAge, most trusted first). */
export const AGE_SOURCES = ['header', 'dates', 'stated'] as const;

/**
 * An answer's label: the finding, null when the verdict is cannot-assess (predict/verdict.ts shownLabel), as
 * Predictor.predict, the API, `cxr predict` and `cxr history` give it.
 */
const labelSchema = {
  type: ['string', 'null'],
  enum: [...LABELS, null],
  description:
    "PNEUMONIA when probability >= threshold, else NORMAL; null when the verdict is 'cannot-assess' (the model's " +
    'label of an image it cannot read is no finding). An outside-population answer keeps it, for reference only.',
} as const;

/**
 * The audit log's label column: the model's label of every answer (probability >= threshold), a cannot-assess
 * one's too, as the log has always kept it; whoever shows a row shows it through shownLabel (null for such an
 * answer), as the API's history and `cxr history` do.
 */
const storedLabelSchema = {
  type: 'string',
  enum: LABELS,
  description:
    "the model's label (PNEUMONIA when probability >= threshold), kept for every row: for a 'cannot-assess' " +
    'answer it is no finding, and the API and `cxr history` show null (predict/verdict.ts shownLabel)',
} as const;

export const oodSchema = {
  type: ['object', 'null'],
  description:
    'the statistical OOD gate (how unlike the training films the image is): a reason quotes score as "gate ' +
    'score" and threshold as "limit"; null when the model folder has no (valid) ood.json',
  properties: { score: { type: 'number' }, threshold: { type: 'number' }, outOfDistribution: { type: 'boolean' } },
  required: ['score', 'threshold', 'outOfDistribution'],
  additionalProperties: false,
} as const;

export const inputSchema = {
  type: 'object',
  properties: {
    kind: { type: 'string', enum: INPUT_KINDS },
    width: { type: 'integer' },
    height: { type: 'integer' },
    sha256: { type: 'string' },
    bytes: { type: 'integer' },
  },
  required: ['kind', 'width', 'height', 'sha256', 'bytes'],
  additionalProperties: false,
} as const;

export const timingsSchema = {
  type: 'object',
  properties: {
    decodeMs: { type: 'number' },
    inferMs: { type: 'number' },
    heatmapMs: { type: 'number' },
    totalMs: { type: 'number' },
  },
  required: ['decodeMs', 'inferMs', 'totalMs'],
  additionalProperties: false,
} as const;

export const modelRefSchema = {
  type: 'object',
  properties: { name: { type: 'string' }, version: { type: 'string' }, sha256: { type: 'string' } },
  required: ['name', 'version', 'sha256'],
  additionalProperties: false,
} as const;

export const verdictSchema = {
  type: 'object',
  description:
    'what the result may be used for: assessed; cannot-assess (the label is not a finding); outside-population ' +
    '(not the children aged 1–5 the model was made for). Stored with every prediction since v4 of the audit log; ' +
    'rows logged before it have none.',
  properties: {
    status: { type: 'string', enum: VERDICT_STATUSES },
    reasons: {
      type: 'array',
      items: {
        type: 'object',
        properties: { code: { type: 'string' }, message: { type: 'string' } },
        required: ['code', 'message'],
        additionalProperties: false,
      },
    },
  },
  required: ['status', 'reasons'],
  additionalProperties: false,
} as const;

/**
 * The patient's age the verdict took (predict/verdict.ts patientAge), so that a reader sees which age an answer
 * was judged at and where it came from. Only the age and its source: never the header's dates. Not kept in the
 * audit log (no column: the log keeps no patient data, only the bounds its reasons name), so only the answer to
 * POST /predictions carries it.
 */
export const ageSchema = {
  type: ['object', 'null'],
  description:
    "the patient's age the verdict took, in years, and where it came from: 'header' (the DICOM's PatientAge), " +
    "'dates' (its PatientBirthDate to its StudyDate or another date of the film), 'stated' (the patientAge sent " +
    'with the request); of ages that disagree, the one outside the intended population is taken (the AGE reason ' +
    'says so). null when the film comes with no age. Only in the answer to POST /predictions: the audit log keeps ' +
    'no patient data, so a prediction read back (GET, history, a job) has none',
  properties: {
    years: {
      type: 'number',
      minimum: 0,
      description: 'the age in years with its fraction, as the verdict compared it with the bounds (round it to show)',
    },
    untilYears: {
      type: 'number',
      description:
        "only for a PatientAge, which counts completed units ('003Y': 3 years and up to one more; '052W': 52 " +
        'weeks and up to six days more): the age lies from years up to, not including, this',
    },
    source: { type: 'string', enum: AGE_SOURCES },
  },
  required: ['years', 'source'],
  additionalProperties: false,
} as const;

/** What the model says about one image: the fields the Predictor, the audit log and the API share. */
const resultProperties = {
  probability: {
    type: 'number',
    minimum: 0,
    maximum: 1,
    description: 'calibrated probability of pneumonia: sigmoid(logit)',
  },
  logit: {
    type: 'number',
    description:
      'mean logit over ensemble members and test-time views, divided by the temperature, plus the logit bias',
  },
  label: labelSchema,
  operatingPoint: { type: 'string' },
  threshold: { type: 'number' },
  warnings: {
    type: 'array',
    items: { type: 'string' },
    description: "the verdict's reasons, then notes about the input (e.g. multi-frame DICOM)",
  },
  ood: oodSchema,
  input: inputSchema,
  timings: timingsSchema,
} as const;
const resultRequired = [
  'probability',
  'logit',
  'label',
  'operatingPoint',
  'threshold',
  'warnings',
  'ood',
  'input',
  'timings',
] as const;

/** What a served prediction is besides the model's result: its identity, model and asker. */
const recordProperties = {
  id: { type: 'string', format: 'uuid' },
  createdAt: { type: 'string', format: 'date-time' },
  model: modelRefSchema,
  requestedBy: {
    type: ['string', 'null'],
    description: 'name of the API token that asked; null when the server needs no token',
  },
  resultKey: {
    type: ['string', 'null'],
    description:
      'what a queued prediction was about (DICOM SOP Instance UID, else sha256:<hex of the file>; then ' +
      "'+age-over-10' when the age stated with it was over 10, '+age-under-1' when under 1); null for a direct " +
      'upload',
  },
} as const;
const recordRequired = ['id', 'createdAt', 'model', 'requestedBy'] as const;

/** Predictor.predict's result, less the PNG buffers (predict/predictor.ts adds them). */
export const predictionResultSchema = {
  type: 'object',
  properties: { ...resultProperties, verdict: verdictSchema, age: ageSchema },
  required: [...resultRequired, 'verdict', 'age'],
  additionalProperties: false,
} as const;

/** One row of the audit log (serve/audit.ts maps each field to its SQL column). */
export const auditRecordSchema = {
  type: 'object',
  properties: {
    ...recordProperties,
    ...resultProperties,
    label: storedLabelSchema,
    hasHeatmap: { type: 'boolean', description: 'whether the heat map is stored in the log' },
    hasThumbnail: { type: 'boolean', description: 'whether the thumbnail is stored in the log' },
    latencyMs: { type: 'number', description: 'wall time in the server from receiving the request to writing the row' },
    verdict: verdictSchema,
  },
  required: [...recordRequired, ...resultRequired, 'resultKey', 'hasHeatmap', 'hasThumbnail', 'latencyMs'],
  additionalProperties: false,
} as const;

/** A prediction as the HTTP API answers it (POST, GET one, each history item). */
export const predictionSchema = {
  $id: 'Prediction',
  type: 'object',
  properties: {
    ...recordProperties,
    ...resultProperties,
    heatmapUrl: {
      type: ['string', 'null'],
      description: 'Grad-CAM heat map PNG (same aspect as the input), null when not made',
    },
    thumbnailUrl: { type: ['string', 'null'] },
    verdict: verdictSchema,
    age: ageSchema,
  },
  required: [...recordRequired, ...resultRequired, 'heatmapUrl', 'thumbnailUrl'],
  additionalProperties: false,
} as const;

export const historyPageSchema = {
  type: 'object',
  properties: {
    items: { type: 'array', items: { $ref: 'Prediction#' } },
    total: { type: 'integer' },
    page: { type: 'integer' },
    limit: { type: 'integer' },
  },
  required: ['items', 'total', 'page', 'limit'],
  additionalProperties: false,
} as const;

/**
 * The schema's verdict with the reason codes of predict/verdict.ts (the schema says string: the
 * codes are a vocabulary that grows, and clients must accept new ones).
 */
type WithVerdict<T extends { verdict?: unknown }> = Omit<T, 'verdict'> &
  (undefined extends T['verdict'] ? { verdict?: Verdict } : { verdict: Verdict });

export type PredictionResult = WithVerdict<FromSchema<typeof predictionResultSchema>>;
export type AuditRecord = FromSchema<typeof auditRecordSchema>;
export type ApiPrediction = WithVerdict<FromSchema<typeof predictionSchema>>;
export type HistoryPage = Omit<FromSchema<typeof historyPageSchema>, 'items'> & { items: ApiPrediction[] };
export type PredictionLabel = (typeof LABELS)[number];
export type InputKind = (typeof INPUT_KINDS)[number];

// Compile-time proof that verdict.ts's Verdict is a value of the schema's verdict.
type Assert<T extends true> = T;
export type VerdictFitsSchema = Assert<Verdict extends FromSchema<typeof verdictSchema> ? true : false>;
// And that the age verdict.ts takes is the schema's, both ways (a source added there is one here).
export type AgeFitsSchema = Assert<
  [AnswerAge | null] extends [FromSchema<typeof ageSchema>]
    ? [FromSchema<typeof ageSchema>] extends [AnswerAge | null]
      ? true
      : false
    : false
>;
