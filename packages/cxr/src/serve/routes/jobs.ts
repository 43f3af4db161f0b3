// The asynchronous batch API: POST /jobs queues films for `cxr worker` (uploaded, or Orthanc
// instances by id) and answers 202 at once; GET /jobs/:id says how a job stands and, when it is
// done, gives its prediction in the same shape as POST /predictions. The queue itself is behind
// JobsPort (queue/api.ts implements it), so the server runs, and answers 503 here, without one.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { HttpError } from '../http_error';
import { jobStateSchema, jobSubmittedSchema, predictQuery, problemResponse } from '../schemas';
import { clientGone, type UploadBudget, withMediaTypeDetail } from '../upload';
import { API_ERRORS, API_PREFIX, noStore, notFound } from './common';
import { JobTicket, readFiles } from './job_files';

export interface JobOptions {
  operatingPoint?: string;
  heatmap: boolean;
  requestedBy: string | null;
  /** Years, for uploaded films whose header gives none (as POST /predictions takes it). */
  patientAge?: number;
}

/** What happened to one film offered: queued now, or an existing job's (same film, model, operating point). */
export type SubmitStatus = 'queued' | 'already-queued' | 'already-done' | 'requeued' | 'skipped';

export interface Submitted {
  id: string | null;
  status: SubmitStatus;
  /** Why a film was not queued (skipped: not a chest film), or is done though queued now (results in the PACS). */
  reason?: string;
}

export interface JobState {
  id: string;
  status: 'waiting' | 'active' | 'completed' | 'failed';
  outcome: string | null;
  /** The prediction (POST /predictions' shape) once completed; null before, or when there is none. */
  prediction: Record<string, unknown> | null;
  error: string | null;
  /** Why the film was refused, as a code (CORRUPT, TRUNCATED, READ_FAILED, ...); null for any other failure. */
  errorCode: string | null;
  /** The name of the token that queued it (null: none, or the command line); not answered. */
  requestedBy?: string | null;
  /** The names of the tokens that offered its film since, the first included (job_offers.ts); not answered. */
  offeredBy?: readonly string[];
}

export interface JobsPort {
  /**
   * The sha256 of the model whose queue this is: a job id names its model's (queue/job.ts jobIdFor), and a job of
   * another model is never in this queue. Without it, such an id is answered as any unknown one.
   */
  modelSha256?: string;
  /**
   * Bytes of uploaded films the queue holds for its workers, all together: a film over it alone can never be
   * queued (413, not the 503 of a full store). Without it, only the store's own refusal applies.
   */
  uploadCapBytes?: number;
  /** The id as the queue knows it (hex digests in lower case), or null when it is not a job id; asked first. */
  canonicalId(id: string): string | null;
  /**
   * Throws HttpError 503 when the held uploads are over their cap, 413 when the film alone is (overJobUploadCap).
   */
  submitUpload(bytes: Buffer, name: string, o: JobOptions): Promise<Submitted>;
  /** Throws HttpError 503 when the server has no Orthanc configured. As submitOrthancAll for `signal`. */
  submitOrthanc(instanceId: string, o: JobOptions, signal?: AbortSignal): Promise<Submitted>;
  /**
   * Every instance or none: all looked up in the PACS first (HttpError 422 UNKNOWN_INSTANCE naming the ids
   * it does not have, 503 PACS_UNAVAILABLE when it is away, refuses the login or is not under the URL's
   * path), then queued. When `signal` aborts (the request answered, or its client gone), the lookups under
   * way are cut off and nothing more is queued.
   */
  submitOrthancAll(instanceIds: readonly string[], o: JobOptions, signal?: AbortSignal): Promise<Submitted[]>;
  status(id: string): Promise<JobState | null>;
  /** Jobs of this model's queue waiting to start and running now (for /metrics). */
  depth(): Promise<{ waiting: number; active: number; failed: number }>;
}

export interface JobRouteOptions {
  jobs: JobsPort | undefined;
  operatingPoints: string[];
  maxUploadBytes: number;
  uploads: UploadBudget;
  /** Films per request (default 32). */
  maxFiles?: number;
}

/**
 * An Orthanc instance id, as the body's schema checks it and the OpenAPI document states it (openapi.ts), so that a
 * client validating its request against the document is refused nothing the server takes.
 */
export const ORTHANC_ID_PATTERN = '^[0-9a-fA-F]{8}(-[0-9a-fA-F]{8}){4}$';

/** The most instance ids one request may name. */
export const ORTHANC_IDS_MAX = 1000;

const OrthancBody = z
  .object({
    orthancInstances: z
      .array(
        // Orthanc writes its ids in lower case and looks them up as written; a pasted upper-case id is the same one.
        z
          .string()
          .regex(new RegExp(ORTHANC_ID_PATTERN), 'an Orthanc instance id (five groups of 8 hex digits)')
          .transform((id) => id.toLowerCase()),
      )
      .min(1)
      .max(ORTHANC_IDS_MAX),
  })
  .strict();

/**
 * 413 for a film larger than all the bytes the queue may hold for its workers (cxr serve --job-uploads-mb): it
 * would never fit, however long the client waits, so it is not the 503 (retry later) of a store that is full.
 */
export function overJobUploadCap(name: string, bytes: number, capBytes: number): HttpError {
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  return new HttpError(
    413,
    'TOO_LARGE',
    `${name.slice(0, 100)} (${mib(bytes)}) is larger than this server's whole budget for uploaded films waiting ` +
      `for a worker (${mib(capBytes)}, cxr serve --job-uploads-mb), so it can never be queued: send it to POST ` +
      '/api/v1/predictions, or ask the administrator to raise --job-uploads-mb (nothing in this request was queued)',
  );
}

/**
 * Retry-After of NO_QUEUE: a server started without a queue has none until it is restarted with one, a configuration
 * to fix, as a refused PACS login or a Redis database that does not exist (queue/api.ts PACS_LOGIN_RETRY_AFTER_S,
 * not imported: it imports this file). The usual 1 s had a client that honours Retry-After ask every second.
 */
const NO_QUEUE_RETRY_AFTER_S = 300;

function noQueue(): HttpError {
  return new HttpError(
    503,
    'NO_QUEUE',
    'this server has no job queue: start cxr serve with CXR_REDIS_URL set (docs/deployment.md, "Many workers"), ' +
      'or use POST /api/v1/predictions',
    NO_QUEUE_RETRY_AFTER_S,
  );
}

/** Films one POST /jobs request may carry (JobRouteOptions.maxFiles' default). */
export const JOB_FILES_MAX = 32;

/**
 * A stated age is for uploaded JPEG and PNG films; a film in the PACS is named by its SR and SC, one result per
 * instance, and its header's PatientAge is read.
 */
const AGE_NOT_FOR_PACS =
  "query parameter 'patientAge' is for uploaded films: films in the PACS are read with their DICOM header's " +
  'PatientAge';

/** What a JSON body of POST /jobs is, for the words of a 400. */
const ORTHANC_BODY_SHAPE = 'the JSON body is {"orthancInstances": [Orthanc instance ids]}';

/**
 * A JSON body that does not fit OrthancBody, in words a client can act on (what is expected), as the other 400s of
 * the API say it (problem.ts validationDetail), rather than zod's ("Invalid input: expected array, received
 * undefined"). An id that is not one keeps its place and the pattern (orthancInstances.2: an Orthanc instance id).
 */
function orthancBodyDetail(body: unknown, issues: readonly z.core.$ZodIssue[]): string {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return `expected a JSON object: ${ORTHANC_BODY_SHAPE}`;
  const said = issues.map((i) => {
    if (i.code === 'unrecognized_keys') {
      const names = i.keys.map((k) => `'${k}'`).join(', ');
      return `unknown field${i.keys.length === 1 ? '' : 's'} ${names}: ${ORTHANC_BODY_SHAPE}`;
    }
    if (i.path.length > 1)
      return `${i.path.join('.')}: an Orthanc instance id (a string of five groups of 8 hex digits)`;
    if (i.code === 'too_small') return "field 'orthancInstances' is empty: name at least one Orthanc instance id";
    if (i.code === 'too_big')
      return `field 'orthancInstances' names more than ${ORTHANC_IDS_MAX} ids: send fewer per request`;
    const wrong = Object.hasOwn(body, 'orthancInstances') ? 'must be a list of Orthanc instance ids' : 'is missing';
    return `field 'orthancInstances' ${wrong}: ${ORTHANC_BODY_SHAPE}`;
  });
  return [...new Set(said)].join('; ');
}

function unsupportedBody(req: FastifyRequest): HttpError {
  return new HttpError(
    415,
    'UNSUPPORTED_MEDIA_TYPE',
    'expected multipart/form-data (films) or application/json (Orthanc instance ids), ' +
      `got ${(req.headers['content-type'] ?? 'no Content-Type').slice(0, 100)}`,
  );
}

/**
 * Whether a request limited to the jobs of token `own` (security.ts; null: every job) may follow the job: it
 * queued it, or offered its film since (a film already queued or done gets the existing job).
 */
function mayFollow(own: string | null, state: JobState): boolean {
  return own === null || state.requestedBy === own || (state.offeredBy ?? []).includes(own);
}

/**
 * The job as answered to a request limited to token `own`'s jobs: a prediction another token's request made (the
 * film was queued or predicted before this token offered it) without that token's name, nor the URLs of its
 * images, which are that token's to read (security.ts).
 */
function answerFor(own: string | null, { requestedBy, offeredBy, ...state }: JobState): JobState {
  const p = state.prediction;
  if (own === null || p === null || p.requestedBy === own) return state;
  return { ...state, prediction: { ...p, requestedBy: null, heatmapUrl: null, thumbnailUrl: null } };
}

export function jobRoutes(api: FastifyInstance, o: JobRouteOptions): void {
  const statusUrl = (id: string | null) => (id ? `${API_PREFIX}/jobs/${encodeURIComponent(id)}` : null);

  api.post<{ Querystring: { operatingPoint?: string; heatmap: boolean; patientAge?: number } }>(
    '/jobs',
    {
      schema: {
        summary: 'Queue films for prediction (asynchronous)',
        description:
          'Either multipart/form-data with one or more films in fields named "image", or JSON ' +
          '{"orthancInstances": [ids]} naming instances in the PACS the server is configured with. Answers 202 ' +
          'at once; each job is then followed at its statusUrl. A film already queued or done for this model ' +
          'and operating point (an uploaded film by its bytes, a PACS instance by its SOP Instance UID, and a stated ' +
          'patientAge over 10, under 1 ' +
          'or neither) gets the existing job. patientAge is for uploaded films only.',
        tags: ['jobs'],
        consumes: ['multipart/form-data', 'application/json'],
        querystring: predictQuery(o.operatingPoints),
        response: {
          202: {
            description: 'Queued (or found queued or done)',
            type: 'object',
            properties: { jobs: { type: 'array', items: jobSubmittedSchema } },
            required: ['jobs'],
            additionalProperties: false,
          },
          ...API_ERRORS,
          413: problemResponse(
            `A film over the byte limit or over the whole budget for films waiting for workers (--job-uploads-mb), ` +
              `more than ${JOB_FILES_MAX} films in one request, or films together over what the server holds in ` +
              'memory for uploads at once (TOO_LARGE: send fewer per request)',
          ),
          415: problemResponse(
            'Neither multipart/form-data nor JSON, or a film that is not a JPEG, PNG or DICOM image or is a ' +
              'variant the decoder cannot read (12-bit, lossless, hierarchical or JPEG-LS JPEG, animated PNG), as ' +
              'POST /predictions answers it: nothing of the request is queued',
          ),
          422: problemResponse(
            'An Orthanc instance id the PACS does not have (UNKNOWN_INSTANCE, naming them), or a film that cannot ' +
              'be read: nothing of the request is queued',
          ),
          503: problemResponse(
            'No job queue configured (or no Orthanc for instance ids), the upload store is full, the job queue ' +
              '(QUEUE_UNAVAILABLE) or the PACS (PACS_UNAVAILABLE: away, or refusing the login) does not answer; ' +
              'Retry-After',
          ),
        },
      },
      errorHandler: withMediaTypeDetail(unsupportedBody),
    },
    async (req, reply) => {
      const jobs = o.jobs;
      if (!jobs) throw noQueue();
      const opts: JobOptions = { ...req.query, requestedBy: req.tokenName };
      const out: Record<string, unknown>[] = [];
      if (req.isMultipart()) {
        const ticket = new JobTicket(o.uploads);
        try {
          const files = await readFiles(
            req,
            { maxFiles: o.maxFiles ?? JOB_FILES_MAX, maxUploadBytes: o.maxUploadBytes },
            ticket,
          );
          // Before any film is queued, as a film that is no image: the request is refused whole.
          const cap = jobs.uploadCapBytes;
          const over = cap === undefined ? undefined : files.find((f) => f.bytes.length > cap);
          if (over && cap !== undefined) throw overJobUploadCap(over.name, over.bytes.length, cap);
          for (const f of files) {
            const s = await jobs.submitUpload(f.bytes, f.name, opts);
            out.push({ ...s, statusUrl: statusUrl(s.id), file: f.name });
          }
        } finally {
          ticket.release();
        }
      } else if ((req.headers['content-type'] ?? '').toLowerCase().startsWith('application/json')) {
        // Lower-cased: a media type is case-insensitive (RFC 9110, 8.3.1), and fastify parsed `Application/JSON` as
        // JSON, which a case-sensitive test here then refused with 415.
        const body = OrthancBody.safeParse(req.body);
        if (!body.success) {
          throw new HttpError(400, 'INVALID_REQUEST', orthancBodyDetail(req.body, body.error.issues));
        }
        if (opts.patientAge !== undefined) throw new HttpError(400, 'INVALID_REQUEST', AGE_NOT_FOR_PACS);
        // All checked before any is queued: a refused id leaves nothing half-queued behind a 4xx/5xx.
        const ids = body.data.orthancInstances;
        (await jobs.submitOrthancAll(ids, opts, clientGone(reply, 'nothing more of this request is queued'))).forEach(
          (s, i) => out.push({ ...s, statusUrl: statusUrl(s.id), orthancInstance: ids[i] }),
        );
      } else {
        throw unsupportedBody(req);
      }
      noStore(reply);
      return reply.code(202).send({ jobs: out });
    },
  );

  api.get<{ Params: { id: string } }>(
    '/jobs/:id',
    {
      schema: {
        summary: 'How a queued job stands, and its prediction once done',
        description:
          'A token with the jobs scope but not audit follows the jobs it queued, and those whose film it offered ' +
          "after another token had (POST /jobs answered it the existing job): in those, a prediction another token's " +
          'request made is answered without its requestedBy and image URLs.',
        tags: ['jobs'],
        params: {
          type: 'object',
          properties: { id: { type: 'string', maxLength: 300 } },
          required: ['id'],
        },
        response: {
          200: { description: 'The job', ...jobStateSchema },
          ...API_ERRORS,
          ...notFound(
            'No such job (finished jobs are kept 7 days), a job of a model this server does not serve, or, for a ' +
              'token without the audit scope, a job it neither queued nor offered the film of (answered alike)',
          ),
          503: problemResponse(
            'No job queue configured (NO_QUEUE), or the job queue (Redis) does not answer (QUEUE_UNAVAILABLE); ' +
              'Retry-After',
          ),
        },
      },
    },
    async (req, reply) => {
      const jobs = o.jobs;
      if (!jobs) throw noQueue();
      const id = jobs.canonicalId(req.params.id);
      if (!id) {
        throw new HttpError(
          400,
          'INVALID_REQUEST',
          `path parameter 'id' is not a job id (as POST /api/v1/jobs returns)`,
        );
      }
      // The id's middle part is its model's sha256 (queue/job.ts jobIdFor), and each model has its own queue: a job
      // of the model a server ran before an upgrade still exists, where a server running that model finds it.
      const model = id.split('~')[1];
      if (jobs.modelSha256 && model !== jobs.modelSha256) {
        throw new HttpError(
          404,
          'NOT_FOUND',
          `job ${req.params.id.slice(0, 300)} belongs to model ${model.slice(0, 12)}…, which this server does not ` +
            `serve (it serves ${jobs.modelSha256.slice(0, 12)}…): ask a server running that model`,
        );
      }
      const state = await jobs.status(id);
      // A token limited to its own jobs is answered for another's as for none (the same words): job ids are
      // predictable (a film's UID or digest, the model's), and the answer would give another's result away.
      if (!state || !mayFollow(req.ownRecordsOnly, state))
        throw new HttpError(404, 'NOT_FOUND', `no job ${req.params.id} (finished jobs are kept for 7 days)`);
      noStore(reply);
      return answerFor(req.ownRecordsOnly, state);
    },
  );
}
