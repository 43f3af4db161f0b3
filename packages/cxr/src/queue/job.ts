// One queued prediction: what to read (a file, an Orthanc instance or an uploaded film), for which
// model and operating point, with or without a heat map. What the worker answers, the job result, is
// here too: both come back out of Redis, which other programs (and other versions of cxr) write to, so
// the worker validates job data, and the API a job's result, with its schema before use.
//
// The job id is the result's identity: the film, the model's sha256 and the operating point. BullMQ
// adds a job only when no job with its id exists, so the same film queued twice is one job, and a
// finished job is found, not redone. For a file or upload the film is the sha256 of its bytes: two
// different files may carry one SOP Instance UID (a copy edited, a faulty modality, a forged file), and
// a job named by the UID would answer the second with the first's result. The result key (and the
// audit row's) stays the UID; a row found by it answers only a film of the same bytes (film_rows.ts).
// An Orthanc job does more than a file or upload job of the same film (it stores the SR and Secondary
// Capture in the PACS), so its id starts with `orthanc-`: a finished file job must not stand for
// results that the PACS does not have. The id is not in the job data, so workers of any version
// read these jobs.
// A stated patient age (for JPEG and PNG films, which carry none) changes a result only when it is
// outside the intended population (predict/verdict.ts: over 10 or under 1 year), so the result key
// says that and nothing more: the same film without an age, with one over 10 and with one under 1 is
// three results, with ages 3 and 7 one. The suffix for over 10 is the one keys had before the lower
// bound, so that their jobs and audit rows are still found.
import { z } from 'zod';
import * as dicomParser from 'dicom-parser';
import { FILM_HEADER_BYTES, filmFormat } from '../data/dicom';
import { HEAD_INFLATE_BYTES, headInflater } from '../data/dicom_data_set';
import { DicomError } from '../data/dicom_parse';
import { bareDataSetSyntax, hasPart10Preamble } from '../data/dicom_syntax';
import { readHeader } from '../dicom_out/part10';
import { isUid } from '../dicom_out/uids';
import { type ApiPrediction, predictionSchema } from '../predict/prediction_schema';
import { isStatedAge } from '../predict/verdict';
import { MAX_AGE_YEARS, MIN_AGE_YEARS, sideOf } from '../predict/verdict';
import { sha256Of } from '../hash';

/**
 * The BullMQ queue of one model: `cxr enqueue` and the API feed it, every `cxr worker` serving
 * that model consumes it. One queue per model, so that workers moving to a new model (a rolling
 * upgrade) never take a job meant for the other one.
 */
export function queueNameFor(modelSha256: string): string {
  return `cxr-predict.${modelSha256.slice(0, 16)}`;
}

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 in lower-case hex');

/** What a result key adds when the age stated with the film is over the intended population's upper bound. */
export const AGE_OVER_BOUND = `+age-over-${MAX_AGE_YEARS}`;
/** What a result key adds when the age stated with the film is under the intended population's lower bound. */
export const AGE_UNDER_BOUND = `+age-under-${MIN_AGE_YEARS}`;
const AGE_SUFFIXES = [AGE_OVER_BOUND, AGE_UNDER_BOUND] as const;

/** The suffix a stated age gives a result key: one for each side outside the population, none within it. */
function ageSuffixFor(patientAge?: number): string {
  if (patientAge === undefined) return '';
  // The verdict's own rule of which side an age falls on, so that the key follows it.
  const side = sideOf(patientAge);
  return side === 'over' ? AGE_OVER_BOUND : side === 'under' ? AGE_UNDER_BOUND : '';
}

/** The age suffix a result key ends in, or ''. */
const ageSuffixOf = (resultKey: string) => AGE_SUFFIXES.find((s) => resultKey.endsWith(s)) ?? '';

/** A film's key: a SOP Instance UID, or `sha256:` and the hex digest of the file's bytes. */
const isFilmKey = (k: string) => isUid(k) || /^sha256:[0-9a-f]{64}$/.test(k);

/** A result key: a film's key, followed by an age suffix when the age stated with it is outside the population. */
export const ResultKeySchema = z
  .string()
  .refine(
    (k) => isFilmKey(filmKeyOf(k)),
    `a SOP Instance UID or sha256:<hex>, optionally followed by ${AGE_OVER_BOUND} or ${AGE_UNDER_BOUND}`,
  );

export const JobSourceSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('file'), path: z.string().min(1).max(4096) }).strict(),
  // Orthanc's ids are SHA-1 digests in five dash-separated groups.
  z.object({ kind: z.literal('orthanc'), instanceId: z.string().regex(/^[0-9a-f]{8}(-[0-9a-f]{8}){4}$/) }).strict(),
  // An upload to POST /api/v1/jobs: its bytes wait in Redis under this digest (queue/uploads.ts). Its file name
  // is not kept (''), as the audit log keeps none: nothing reads it, and Redis keeps job data for days. Older
  // versions wrote it, and their workers require the field.
  z.object({ kind: z.literal('upload'), sha256: sha256Hex, name: z.string().max(255) }).strict(),
]);
export type JobSource = z.infer<typeof JobSourceSchema>;

export const JobDataSchema = z
  .object({
    source: JobSourceSchema,
    resultKey: ResultKeySchema,
    /** The model the result is for: a worker serving another model refuses the job. */
    model: z.object({ sha256: sha256Hex }).strict(),
    operatingPoint: z.string().min(1).max(64),
    heatmap: z.boolean(),
    /** The API token's name for uploads; null from the command line. */
    requestedBy: z.string().max(128).nullable(),
    /** Years, stated with the film (used where its header gives none, as POST /predictions uses it). */
    patientAge: z.number().refine(isStatedAge, 'a number of years from 0 to 130').optional(),
  })
  .strict()
  .superRefine((d, ctx) => {
    const suffix = ageSuffixOf(d.resultKey);
    if (suffix === ageSuffixFor(d.patientAge)) return;
    let message =
      `ends in ${AGE_OVER_BOUND} exactly when the stated patientAge is over ${MAX_AGE_YEARS}, ` +
      `in ${AGE_UNDER_BOUND} exactly when it is under ${MIN_AGE_YEARS}`;
    // Such a job is no corruption but one still waiting from a cxr before the lower bound, whose key without a
    // suffix then meant the film's answer without an age: say so, and what the operator does about it.
    if (suffix === '' && d.patientAge !== undefined && sideOf(d.patientAge) === 'under') {
      message +=
        `: this job (an age under ${MIN_AGE_YEARS}, no ${AGE_UNDER_BOUND}) was queued by a cxr from before ` +
        `the ${AGE_UNDER_BOUND} key, whose key would store an infant's answer as the film's answer without an age; ` +
        'queue the film again (cxr enqueue --patient-age, or POST /api/v1/jobs?patientAge=)';
    }
    ctx.addIssue({ code: 'custom', path: ['resultKey'], message });
  });
export type JobData = z.infer<typeof JobDataSchema>;

/** Job data from Redis, or an error that says which field is wrong. */
export function parseJobData(data: unknown): JobData {
  const r = JobDataSchema.safeParse(data);
  if (!r.success) {
    throw new Error(
      `malformed job data: ${r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`,
    );
  }
  return r.data;
}

/** A JSON schema without its `additionalProperties: false`, at every depth: it then takes unknown fields. */
function takingUnknownFields(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(takingUnknownFields);
  if (schema === null || typeof schema !== 'object') return schema;
  return Object.fromEntries(
    Object.entries(schema)
      .filter(([k, v]) => !(k === 'additionalProperties' && v === false))
      .map(([k, v]) => [k, takingUnknownFields(v)]),
  );
}

/**
 * A prediction as a job result holds it: the API's Prediction schema (predict/prediction_schema.ts, the one
 * contract), taking fields a newer worker adds (the API's answer drops them, as its serializer drops any).
 * zod calls fromJSONSchema semi-experimental: test/queue-unit.test.ts holds what it must take and refuse.
 */
const StoredPrediction = z.fromJSONSchema(
  takingUnknownFields(predictionSchema) as z.core.JSONSchema.JSONSchema,
) as unknown as z.ZodType<ApiPrediction>;

/** What a worker answers for a job (queue/process.ts): BullMQ keeps it in Redis as the job's return value. */
export const JobResultSchema = z.object({
  /**
   * predicted: made now; reused: the audit log had it; already-done: the PACS had its results;
   * skipped: not a chest film.
   */
  outcome: z.enum(['predicted', 'reused', 'already-done', 'skipped']),
  resultKey: ResultKeySchema,
  /** As POST /api/v1/predictions answers it; null when skipped, or done by a run that kept no audit row. */
  prediction: StoredPrediction.nullable(),
});
export type JobResult = z.infer<typeof JobResultSchema>;

/**
 * A finished job's result as Redis gives it back, or an error that says which field does not match: a result
 * written by another version of cxr (one that lacked a field this one answers with), or by another program.
 */
export function parseJobResult(value: unknown): JobResult {
  const r = JobResultSchema.safeParse(value);
  if (!r.success) {
    const issues = r.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`);
    throw new Error(`malformed job result: ${issues.join('; ')}`);
  }
  return r.data;
}

/** The SOP Instance UID of a DICOM file's bytes, or null (not DICOM, no valid UID). */
export function sopInstanceUid(bytes: Uint8Array): string | null {
  // The decoder's own test: a data set without its preamble and DICM is keyed by its UID too.
  if (filmFormat(bytes.subarray(0, FILM_HEADER_BYTES)) !== 'dicom') return null;
  const byTag = uidByTag(bytes);
  if (byTag !== undefined) return byTag;
  try {
    const uid = String(readHeader(bytes, { text: false }).SOPInstanceUID ?? '').trim();
    return isUid(uid) ? uid : null;
  } catch {
    return null;
  }
}

/**
 * The UID as dicom-parser reads it, up to its tag and no further, no text decoded: dcmjs reads and splits every
 * value of the header first (seconds for megabytes of delimiters in a name, on the request thread of POST /jobs,
 * which keys each film by it: bench/serve/job-key.js). Null when the header reads and has no valid UID: final, as
 * dcmjs's read of such a header (a hostile one without a UID) would cost the seconds this read saves. Undefined
 * where dicom-parser cannot read the header (damaged): dcmjs decides. A deflated data set is read from its head
 * alone (data/dicom_data_set.ts headInflater: inflating all of one under the decoder's cap, ~100 MB, held the
 * request thread 200-300 ms); its UID is there or not at all, so for it null is final too (dcmjs would inflate
 * the whole), and one that inflates past the decoder's cap is keyed by its UID like any other (the worker
 * refuses it).
 */
function uidByTag(bytes: Uint8Array): string | null | undefined {
  let ds: dicomParser.DataSet;
  let deflated = false;
  try {
    const bare = hasPart10Preamble(bytes) ? null : bareDataSetSyntax(bytes);
    const fail = (code: DicomError['code'], detail: string) => new DicomError(code, 'film', detail);
    const head = headInflater(HEAD_INFLATE_BYTES, fail);
    const inflater = (arr: Uint8Array, position: number) => {
      deflated = true;
      return head(arr, position);
    };
    ds = dicomParser.parseDicom(bytes, {
      untilTag: 'x00080018',
      inflater: inflater as unknown as (arr: Uint8Array, position: number) => void,
      ...(bare ? { TransferSyntaxUID: bare } : {}),
    });
  } catch {
    return deflated ? null : undefined;
  }
  try {
    const uid = (ds.string('x00080018') ?? '').trim();
    return isUid(uid) ? uid : null;
  } catch {
    // The tag was reached but its value runs past the end of the bytes: a cut file (or, deflated, past the head).
    return deflated ? null : undefined;
  }
}

/**
 * The film's result key: its SOP Instance UID, else `sha256:` of its bytes; followed by AGE_OVER_BOUND
 * when the age stated with it is over the population's upper bound, AGE_UNDER_BOUND when under its lower.
 */
export function resultKeyOf(bytes: Uint8Array, patientAge?: number): string {
  const film = sopInstanceUid(bytes) ?? `sha256:${sha256Of(bytes)}`;
  return film + ageSuffixFor(patientAge);
}

/**
 * The result key of a film by its bytes: `sha256:` and their digest, with `resultKey`'s age suffix. What a DICOM
 * film is keyed by when its UID's key already names another film's bytes (film_rows.ts), and the film part of a
 * file or upload job's id.
 */
export function byteKeyOf(resultKey: string, sha256: string): string {
  return `sha256:${sha256}${ageSuffixOf(resultKey)}`;
}

/** The film's key within a result key (the SOP Instance UID or sha256, without the age suffix). */
export function filmKeyOf(resultKey: string): string {
  return resultKey.slice(0, resultKey.length - ageSuffixOf(resultKey).length);
}

/** What starts the film part of an Orthanc job's id (see the top of this file). */
export const ORTHANC_JOB_PREFIX = 'orthanc-';

/**
 * The job id for a result: key, model and operating point joined by `~` (BullMQ refuses `:` in
 * ids, so `sha256:` becomes `sha256-`; UIDs are digits and dots, and the age suffix has no `~`, so
 * the id stays unambiguous; clients are given it URL-encoded). An Orthanc job's film part starts
 * with ORTHANC_JOB_PREFIX; file and upload jobs share their ids (both make an audit row, nothing more), and are
 * given a byte key here (byteKeyOf, queue.ts jobIdOf): those before that used the UID, and are still found.
 */
export function jobIdFor(
  resultKey: string,
  modelSha256: string,
  operatingPoint: string,
  kind: JobSource['kind'] = 'file',
): string {
  const film = resultKey.replace(/^sha256:/, 'sha256-');
  return [kind === 'orthanc' ? ORTHANC_JOB_PREFIX + film : film, modelSha256, opIdPart(operatingPoint)].join('~');
}

/**
 * The operating point as its job id carries it: URL-encoded, and `!'()*~` too, which encodeURIComponent leaves as
 * they are: a `~` split the id into more than three parts, and any of them made an id that canonicalJobId (GET
 * /api/v1/jobs/:id) refused as "not a job id", for a job the server had just queued (an operating point named
 * `sens(0.95)` in a model's cxr.json). Names without them keep the ids they had.
 */
const opIdPart = (operatingPoint: string) =>
  encodeURIComponent(operatingPoint).replace(/[!'()*~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

const AGE_SUFFIX = AGE_SUFFIXES.map((s) => s.replace('+', '\\+')).join('|');
/**
 * The film part of a job id: an Orthanc job's `orthanc-` and UID, or a UID or `sha256-` digest then an age
 * suffix or nothing.
 */
const FILM_ID = `(${ORTHANC_JOB_PREFIX}[0-9.]{1,64}|([0-9.]{1,64}|sha256-[0-9a-f]{64})(${AGE_SUFFIX})?)`;
/** A job id as clients send it back (GET /api/v1/jobs/:id): the same three parts, nothing else. */
export const JOB_ID_PATTERN = `^${FILM_ID}~[0-9a-f]{64}~[A-Za-z0-9._%-]{1,96}$`;
const JOB_ID = new RegExp(JOB_ID_PATTERN);

/**
 * A job id as a client sends it back, in the form the queue knows it by; null when it is not one. Its
 * digests are hex, which is case-insensitive (RFC 4648; RFC 9562 says the same of UUIDs), so a client
 * or proxy that upper-cases them still names the job. The operating point keeps its case.
 */
export function canonicalJobId(id: string): string | null {
  const parts = id.split('~');
  if (parts.length !== 3) return null;
  const canonical = [parts[0].toLowerCase(), parts[1].toLowerCase(), parts[2]].join('~');
  return JOB_ID.test(canonical) ? canonical : null;
}
