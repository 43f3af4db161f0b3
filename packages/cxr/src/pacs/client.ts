// The few Orthanc REST and DICOMweb calls the sync needs, over Node's built-in fetch. Every
// answer is validated before use; any failure is an OrthancError (the sync stops and resumes
// later from its saved cursor, rather than skipping films while the PACS is unreachable).
import { z } from 'zod';
import type { OrthancConfig } from './config';
import { stowBody } from './multipart';

/** Answers of a proxy in front of Orthanc, or of an Orthanc starting up: the PACS is away, not refusing. */
const AWAY_STATUSES = new Set([502, 503, 504]);

export class OrthancError extends Error {
  /**
   * The PACS is away (unreachable, timed out, or a gateway says so) rather than refusing: worth
   * retrying until it is back (queue/retry.ts), where a refusal (401, 404) is not.
   */
  readonly outage: boolean;

  constructor(
    message: string,
    readonly status?: number,
    opts: { unreachable?: boolean; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'OrthancError';
    this.outage = !!opts.unreachable || (status !== undefined && AWAY_STATUSES.has(status));
  }
}

const ChangesSchema = z.object({
  Changes: z.array(
    z.object({ ChangeType: z.string(), ID: z.string(), Seq: z.number().int(), ResourceType: z.string().optional() }),
  ),
  Done: z.boolean(),
  Last: z.number().int(),
});
export type ChangePage = z.infer<typeof ChangesSchema>;

const TagsSchema = z.record(z.string(), z.unknown());
const IdListSchema = z.array(z.string());
// STOW-RS response (PS3.18 10.5.3): FailedSOPSequence (0008,1198), ReferencedSOPSequence (0008,1199).
const StowResponseSchema = z
  .object({
    '00081198': z.object({ Value: z.array(z.record(z.string(), z.unknown())).optional() }).optional(),
    '00081199': z.object({ Value: z.array(z.record(z.string(), z.unknown())).optional() }).optional(),
  })
  .passthrough();

const TIMEOUT_MS = 60_000;

export class OrthancClient {
  private readonly auth: string | undefined;

  constructor(readonly config: OrthancConfig) {
    this.auth =
      config.user !== undefined
        ? `Basic ${Buffer.from(`${config.user}:${config.password}`).toString('base64')}`
        : undefined;
  }

  private async request(
    method: string,
    route: string,
    init: { body?: Buffer | string; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.auth) headers.authorization = this.auth;
    let res: Response;
    try {
      const body =
        typeof init.body === 'string' || init.body === undefined
          ? init.body
          : new Uint8Array(init.body.buffer as ArrayBuffer, init.body.byteOffset, init.body.length);
      res = await fetch(this.config.url + route, { method, headers, body, signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (e) {
      const cause = (e as { cause?: { message?: string } }).cause?.message;
      throw new OrthancError(
        `${method} ${route}: Orthanc at ${this.config.url} is unreachable (${cause ?? (e as Error).message})`,
        undefined,
        { unreachable: true, cause: e },
      );
    }
    if (!res.ok) {
      const text = (await res.text().catch(() => '')).slice(0, 300);
      const hint = res.status === 401 ? ' (check CXR_ORTHANC_USER and CXR_ORTHANC_PASSWORD)' : '';
      throw new OrthancError(`${method} ${route}: HTTP ${res.status}${hint}${text ? `: ${text}` : ''}`, res.status);
    }
    return res;
  }

  private async json<T>(
    schema: z.ZodType<T>,
    method: string,
    route: string,
    init?: { body?: Buffer | string; headers?: Record<string, string> },
  ): Promise<T> {
    const res = await this.request(method, route, init);
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      throw new OrthancError(`${method} ${route}: the answer is not JSON`);
    }
    const r = schema.safeParse(body);
    if (!r.success)
      throw new OrthancError(
        `${method} ${route}: unexpected answer (${r.error.issues[0].path.join('.')}: ${r.error.issues[0].message})`,
      );
    return r.data;
  }

  /** Changes with Seq > since, oldest first. */
  changes(since: number, limit: number): Promise<ChangePage> {
    return this.json(ChangesSchema, 'GET', `/changes?since=${since}&limit=${limit}`);
  }

  /** The Seq of the newest change (0 for an empty PACS). */
  async lastChange(): Promise<number> {
    return (await this.json(ChangesSchema, 'GET', '/changes?last')).Last;
  }

  /** One page of every instance id in the PACS (Orthanc's order), for a backfill. */
  instances(since: number, limit: number): Promise<string[]> {
    return this.json(IdListSchema, 'GET', `/instances?since=${since}&limit=${limit}`);
  }

  instanceTags(id: string): Promise<Record<string, unknown>> {
    return this.json(TagsSchema, 'GET', `/instances/${encodeURIComponent(id)}/simplified-tags`);
  }

  async instanceFile(id: string): Promise<Buffer> {
    const res = await this.request('GET', `/instances/${encodeURIComponent(id)}/file`);
    return Buffer.from(await res.arrayBuffer());
  }

  /** Orthanc ids of the instances with this SOP Instance UID (none, or one). */
  findInstance(sopInstanceUid: string): Promise<string[]> {
    const body = JSON.stringify({ Level: 'Instance', Query: { SOPInstanceUID: sopInstanceUid } });
    return this.json(IdListSchema, 'POST', '/tools/find', { body, headers: { 'content-type': 'application/json' } });
  }

  /** Stores Part-10 instances with STOW-RS; throws unless every one was accepted. */
  async stow(instances: Buffer[]): Promise<void> {
    const { body, contentType } = stowBody(instances);
    const r = await this.json(StowResponseSchema, 'POST', '/dicom-web/studies', {
      body,
      headers: { 'content-type': contentType, accept: 'application/dicom+json' },
    });
    const failed = r['00081198']?.Value?.length ?? 0;
    const stored = r['00081199']?.Value?.length ?? 0;
    if (failed > 0 || stored !== instances.length) {
      throw new OrthancError(
        `STOW-RS: ${stored} of ${instances.length} instances stored, ${failed} failed: ` +
          JSON.stringify(r['00081198']?.Value ?? []).slice(0, 300),
      );
    }
  }
}
