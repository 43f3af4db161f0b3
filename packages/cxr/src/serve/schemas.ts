// JSON schemas of the v1 API. Fastify validates requests and serializes responses with them
// (fields not in a response schema are never sent), and @fastify/swagger turns them into the
// OpenAPI document, so the document cannot drift from what the server does.
import type { FromSchema } from 'json-schema-to-ts';
import { modelRefSchema, VERDICT_STATUSES } from '../predict/prediction_schema';
import { STATED_AGE_RANGE, VERDICT_REASON_CODES } from '../predict/verdict';
import { SCOPES } from './auth';
import { DATE_TIME_PATTERN } from './date_time';

export { historyPageSchema, predictionSchema } from '../predict/prediction_schema';
export { modelInfoSchema } from '../predict/model_info_schema';

export const problemSchema = {
  $id: 'Problem',
  type: 'object',
  description: 'RFC 9457 problem details: every 4xx/5xx answer, as application/problem+json',
  properties: {
    type: {
      type: 'string',
      format: 'uri',
      description: 'urn:cxr:problem:<code>, e.g. urn:cxr:problem:too-many-pixels',
    },
    title: { type: 'string', description: "the HTTP status's reason phrase" },
    status: { type: 'integer', description: 'the HTTP status code' },
    detail: { type: 'string', description: 'what went wrong with this request, for people' },
    code: {
      type: 'string',
      description: 'machine-readable cause, e.g. TOO_MANY_PIXELS, UNSUPPORTED_FORMAT, INVALID_REQUEST',
    },
    maxUploadBytes: {
      type: 'integer',
      minimum: 1,
      description:
        'only with 413 TOO_LARGE for a file over the byte limit: the largest file the server accepts, in bytes ' +
        "(GET /health's maxUploadBytes as it is now), so that a client need not read it out of the detail",
    },
    reasons: {
      type: 'array',
      // No enum: the codes are a vocabulary that grows, as verdict.reasons' (prediction_schema.ts), and a client
      // generated from an older document must not reject a new one. Today's are listed from the one list.
      items: {
        type: 'string',
        description: `a reason code; today one of ${VERDICT_REASON_CODES.join(', ')} (accept new ones)`,
      },
      description:
        "only with 422 NOT_A_CHEST_XRAY (a server started with --ood-policy refuse): the gate's reason codes, the " +
        "ones a prediction's verdict.reasons carries under 'warn' (e.g. OOD, AGE, COLOUR, BLANK, LATERAL), so that " +
        "a client tells an adult's film from a photo without reading the detail",
    },
  },
  required: ['type', 'title', 'status', 'detail', 'code'],
  additionalProperties: false,
} as const;

/** A problem as the server sends it and clients read it (the web page's API client types it with this). */
export type Problem = FromSchema<typeof problemSchema>;

/** A response entry for an error status: problem+json with the Problem schema. */
export function problemResponse(description: string) {
  return { description, content: { 'application/problem+json': { schema: { $ref: 'Problem#' } } } } as const;
}

export const idParams = {
  type: 'object',
  properties: { id: { type: 'string', format: 'uuid' } },
  required: ['id'],
} as const;

export function predictQuery(operatingPoints: string[]) {
  return {
    type: 'object',
    properties: {
      operatingPoint: {
        type: 'string',
        enum: operatingPoints,
        description: "threshold to apply; default: the model's",
      },
      heatmap: { type: 'boolean', default: true, description: 'false skips the Grad-CAM heat map (faster)' },
      patientAge: {
        type: 'number',
        minimum: STATED_AGE_RANGE.min,
        maximum: STATED_AGE_RANGE.max,
        description:
          "the patient's age in years, in decimal digits (7, 3.5), for films whose header gives none (JPEG, PNG); " +
          "under 1 or over 10 the answer is 'outside-population', as when a DICOM's own age (PatientAge, or " +
          'from its dates) is: of ages that disagree the one outside the intended population is taken. Not in ' +
          'the audit log, which keeps only the bound; a queued job (POST /jobs) holds it with its other data ' +
          'until the job is removed.',
      },
    },
    additionalProperties: false,
  } as const;
}

/**
 * How since/until are read (date_time.ts readDateTime, which `cxr history --since` shares). Not `format:
 * date-time`: that is RFC 3339's alone, which refuses a date without a time and a time without its seconds,
 * both taken here; the pattern states the forms taken, exactly (date_time.ts DATE_TIME_PATTERN).
 */
const TIME =
  'a date alone (2026-11-01) is its first moment in UTC; a date-time is RFC 3339 with its zone, in the forms the ' +
  "pattern gives, e.g. 2026-11-01T08:00:00Z or 2026-11-01 09:00+01:00: 'T' or one space between date and time " +
  '(t and z in either case), the seconds (with any fraction) optional, Z or an offset written ±hh:mm, ±hhmm or ' +
  '±hh. A time without its zone, or with a leap second (:60), is refused, as is a day its month does not have ' +
  '(2026-02-30), which no pattern can say';

/** A since/until query parameter: `what` says which end of the range. */
function timeParam(what: string) {
  return { type: 'string', pattern: DATE_TIME_PATTERN, description: `${what}; ${TIME}` } as const;
}

export function historyQuery(operatingPoints: string[]) {
  return {
    type: 'object',
    properties: {
      label: {
        type: 'string',
        enum: ['NORMAL', 'PNEUMONIA'],
        description:
          "answers with this label as a finding: 'cannot-assess' answers have none and never match (see verdict)",
      },
      verdict: {
        type: 'string',
        enum: VERDICT_STATUSES,
        description:
          'answers with this verdict status, e.g. cannot-assess; rows logged before verdicts were kept count as ' +
          'cannot-assess when they carry warnings, else assessed',
      },
      operatingPoint: {
        type: 'string',
        enum: operatingPoints,
        description: "one of the served model's operating points",
      },
      since: timeParam('only predictions made at or after this time'),
      until: timeParam('only predictions made at or before this time'),
      hasWarnings: { type: 'boolean' },
      // Bounded so that the row offset stays an exact integer in SQL (a page past the end is simply empty).
      page: { type: 'integer', minimum: 1, maximum: 1_000_000_000, default: 1 },
      limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 },
    },
    additionalProperties: false,
  } as const;
}

export const healthSchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ok'] },
    model: modelRefSchema,
    uptimeSeconds: { type: 'number' },
    predictions: {
      type: ['integer', 'null'],
      description:
        'rows in the audit log, counted within the last 5 s; where counting takes longer than 250 ms (a large ' +
        'log), the latest count that finished; null until a first count finishes',
    },
    authRequired: { type: 'boolean' },
    audit: { type: 'string', enum: ['ok'], description: 'the audit log answers' },
    maxUploadBytes: {
      type: 'integer',
      description: 'the largest file an upload may carry (--max-upload-mb): the page checks a file before sending it',
    },
    engine: {
      type: 'string',
      enum: ['ready'],
      description: 'the model answers (it runs in a process of its own; see the 503 answer for its other states)',
    },
    queue: {
      type: 'string',
      enum: ['available', 'unavailable'],
      description:
        'only when the server was started with a job queue (Redis): whether it answered within 1 s. Unavailable, ' +
        'the /jobs routes answer 503 QUEUE_UNAVAILABLE; predictions do not need it, so the status is not changed',
    },
  },
  required: ['status', 'model', 'uptimeSeconds', 'predictions', 'authRequired', 'audit', 'maxUploadBytes', 'engine'],
} as const;

/** /health's 503: the same fields, with what is down. */
export const healthDegradedSchema = {
  type: 'object',
  properties: {
    ...healthSchema.properties,
    status: { type: 'string', enum: ['degraded'] },
    predictions: { type: ['integer', 'null'], description: 'null: the audit log cannot be counted now' },
    audit: {
      type: 'string',
      enum: ['ok', 'unavailable'],
      description: 'unavailable: the audit log does not answer (or not in time): predictions are refused with 503',
    },
    engine: {
      type: 'string',
      enum: ['ready', 'restarting', 'unavailable'],
      description:
        "restarting: the model's engine process ended and a new one is loading the model (predictions wait for it); " +
        'unavailable: that load failed (predictions are answered 503 ENGINE_UNAVAILABLE; it is tried again by itself)',
    },
    detail: { type: 'string', description: 'what is down, for people (the server log says why)' },
  },
  required: [...healthSchema.required, 'detail'],
} as const;

/** One film of a POST /jobs answer (routes/jobs.ts). */
export const jobSubmittedSchema = {
  type: 'object',
  properties: {
    id: {
      type: ['string', 'null'],
      description:
        'the job id: the film (and whether a stated age is over 10 or under 1), model and operating point ' +
        '(null if skipped)',
    },
    status: {
      type: 'string',
      enum: ['queued', 'already-queued', 'already-done', 'requeued', 'skipped'],
      description:
        'queued: a new job; already-queued, already-done, requeued: a job for the same film existed (waiting or ' +
        'running; finished; failed, and tried again); an Orthanc instance whose report and heat map are in the ' +
        'PACS is already-done too (its reason says so: nothing is predicted again, its job reads the prediction ' +
        'back from the audit log); skipped: not queued (its reason says why)',
    },
    statusUrl: { type: ['string', 'null'] },
    file: { type: 'string', description: 'the uploaded file name, for uploads' },
    orthancInstance: { type: 'string' },
    reason: {
      type: 'string',
      description:
        'why a film was skipped (not a chest film, ...), or why an Orthanc instance with a new job is already-done',
    },
  },
  required: ['id', 'status', 'statusUrl'],
  additionalProperties: false,
} as const;

/** GET /jobs/:id (routes/jobs.ts JobState). */
export const jobStateSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    status: { type: 'string', enum: ['waiting', 'active', 'completed', 'failed'] },
    outcome: {
      type: ['string', 'null'],
      description: 'predicted, reused (found in the audit log), already-done (results in the PACS), skipped',
    },
    prediction: { anyOf: [{ $ref: 'Prediction#' }, { type: 'null' }] },
    error: {
      type: ['string', 'null'],
      description:
        'why the job failed; on a completed job, why its stored result cannot be read (written by another ' +
        'version of cxr: its prediction is in the audit log); on a waiting job that an attempt failed before ' +
        '(the audit log, Orthanc or the network away: it is retried), why its last attempt failed',
    },
    errorCode: {
      type: ['string', 'null'],
      description:
        "a failed job whose film was refused (the film's fault, not retried): its code, as POST /predictions " +
        'answers it in a problem (CORRUPT, TRUNCATED, UNSUPPORTED_FORMAT, NOT_A_CHEST_XRAY, ...), or READ_FAILED ' +
        '(a file job whose file is gone or may not be read), CHANGED (the film changed since it was queued), ' +
        'UNREADABLE (a PACS instance the model cannot read). Null otherwise: a job that failed for another reason ' +
        '(its error says why), or failed on a worker older than this field',
    },
  },
  required: ['id', 'status', 'outcome', 'prediction', 'error', 'errorCode'],
  additionalProperties: false,
} as const;

/** GET /token: the token the request carried, by name and scopes; its value is never sent back. */
export const tokenInfoSchema = {
  type: 'object',
  properties: {
    name: {
      type: ['string', 'null'],
      description: "the token's name, as predictions record it in requestedBy; null when the server needs no token",
    },
    scopes: {
      type: 'array',
      items: { type: 'string', enum: SCOPES },
      description: `what the token may do: all (${SCOPES.join(', ')}) for a token named without scopes, or none needed`,
    },
  },
  required: ['name', 'scopes'],
  additionalProperties: false,
} as const;

/** What GET /token answers, typed for clients (the web page may use it). */
export type TokenInfo = FromSchema<typeof tokenInfoSchema>;
