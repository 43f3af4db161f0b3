// The few Orthanc REST and DICOMweb calls the sync needs, over Node's built-in fetch. Every
// answer is validated before use; any failure is an OrthancError (the sync stops and resumes
// later from its saved cursor, rather than skipping films while the PACS is unreachable).
import { z } from 'zod';
import { type OrthancConfig, redactOrthanc, splitCredentials } from './config';
import { stowBody } from './multipart';

/** Answers of a proxy in front of Orthanc, or of an Orthanc starting up: the PACS is away, not refusing. */
const AWAY_STATUSES = new Set([502, 503, 504]);

/**
 * What kind of failure an OrthancError is, for callers that decide what to do next (queue/retry.ts, the
 * worker's start-up check): ORTHANC_AUTH, the login refused (HTTP 401/403: wrong or missing user or
 * password, an account without the rights), is a configuration fault that no retry mends;
 * ORTHANC_UNAVAILABLE is the PACS away (worth waiting for); ORTHANC_HTTP any other refusal (404...);
 * ORTHANC_BAD_ANSWER an answer that is not what Orthanc gives; ORTHANC_STORE_FAILED a STOW-RS that
 * stored not every instance; ORTHANC_BAD_URL a URL that fetch cannot use; ORTHANC_BAD_PATH a URL whose server
 * answers but has no Orthanc at its path (GET /system is a 404 or not Orthanc's: a proxy's prefix left out).
 */
export type OrthancErrorCode =
  | 'ORTHANC_AUTH'
  | 'ORTHANC_UNAVAILABLE'
  | 'ORTHANC_HTTP'
  | 'ORTHANC_BAD_ANSWER'
  | 'ORTHANC_STORE_FAILED'
  | 'ORTHANC_BAD_URL'
  | 'ORTHANC_BAD_PATH';

export class OrthancError extends Error {
  /**
   * The PACS is away (unreachable, timed out, or a gateway says so) rather than refusing: worth
   * retrying until it is back (queue/retry.ts), where a refusal (401, 404) is not.
   */
  readonly outage: boolean;
  readonly code: OrthancErrorCode;

  constructor(
    message: string,
    readonly status?: number,
    opts: { unreachable?: boolean; cause?: unknown; code?: OrthancErrorCode } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'OrthancError';
    this.outage = !!opts.unreachable || (status !== undefined && AWAY_STATUSES.has(status));
    this.code =
      opts.code ??
      (status === 401 || status === 403
        ? 'ORTHANC_AUTH'
        : this.outage
          ? 'ORTHANC_UNAVAILABLE'
          : status !== undefined
            ? 'ORTHANC_HTTP'
            : 'ORTHANC_BAD_ANSWER');
  }
}

/** Whether `err` is Orthanc refusing cxr's login: fix the configuration, retrying will not help. */
export function isOrthancAuthError(err: unknown): err is OrthancError {
  return err instanceof OrthancError && err.code === 'ORTHANC_AUTH';
}

const ChangesSchema = z.object({
  Changes: z.array(
    z.object({ ChangeType: z.string(), ID: z.string(), Seq: z.number().int(), ResourceType: z.string().optional() }),
  ),
  Done: z.boolean(),
  Last: z.number().int(),
});
export type ChangePage = z.infer<typeof ChangesSchema>;

// GET /system: what every Orthanc answers (1.0 and later); cxr needs nothing else from it.
const SystemSchema = z.object({ Name: z.string(), Version: z.string() }).passthrough();
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
/** Where cxr stores its results: the DICOMweb plugin's STOW-RS at its default root. */
const STOW_ROUTE = '/dicom-web/studies';

export interface OrthancClientOptions {
  /**
   * Stops every request of this client when it aborts (POST /jobs answered within its bound): a request under
   * way is cut off, a later one is not made; either throws the signal's reason, not an OrthancError.
   */
  signal?: AbortSignal;
}

export class OrthancClient {
  readonly config: OrthancConfig;
  private readonly auth: string | undefined;
  private readonly signal: AbortSignal | undefined;

  constructor(config: OrthancConfig, opts: OrthancClientOptions = {}) {
    this.signal = opts.signal;
    // fetch refuses a URL with credentials, and its error message repeats the URL, password and all: a
    // login in the URL (from a caller that did not use loadOrthancConfig) is sent as basic auth instead.
    const split = splitCredentials(config.url);
    // Two logins (one in the URL, one beside it) are refused, as loadOrthancConfig refuses them: which
    // one was meant cannot be guessed.
    if (
      (config.user !== undefined && split.user !== undefined && config.user !== split.user) ||
      (config.password !== undefined && split.password !== undefined && config.password !== split.password)
    )
      throw new Error(`Orthanc URL ${split.display}: a login in the URL and another beside it; give the login one way`);
    const user = config.user ?? split.user;
    const password = config.password ?? split.password;
    this.config = { url: split.url, user, password };
    this.auth = user !== undefined ? `Basic ${Buffer.from(`${user}:${password ?? ''}`).toString('base64')}` : undefined;
  }

  /** The same Orthanc and login, every request stopped when `signal` aborts (OrthancClientOptions.signal). */
  withSignal(signal: AbortSignal): OrthancClient {
    return new OrthancClient(this.config, { signal });
  }

  /** `text` safe to print: URLs and the password shown as *****. */
  private safe(text: string): string {
    return redactOrthanc(text, this.config.password);
  }

  private async request(
    method: string,
    route: string,
    init: { body?: Buffer | string; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.auth) headers.authorization = this.auth;
    this.signal?.throwIfAborted();
    const timeout = AbortSignal.timeout(TIMEOUT_MS);
    const signal = this.signal ? AbortSignal.any([this.signal, timeout]) : timeout;
    let res: Response;
    try {
      const body =
        typeof init.body === 'string' || init.body === undefined
          ? init.body
          : new Uint8Array(init.body.buffer as ArrayBuffer, init.body.byteOffset, init.body.length);
      res = await fetch(this.config.url + route, { method, headers, body, signal });
    } catch (e) {
      // Stopped by the caller: not the PACS's failure, and not to be reported as one.
      this.signal?.throwIfAborted();
      const cause = (e as { cause?: { message?: string } }).cause?.message;
      // fetch's TypeError without a cause is a request it would not make (a malformed URL), not a network failure.
      if (e instanceof TypeError && cause === undefined) {
        throw new OrthancError(
          this.safe(`${method} ${route}: no request can be made to the Orthanc URL ${this.config.url} (${e.message})`),
          undefined,
          { cause: e, code: 'ORTHANC_BAD_URL' },
        );
      }
      throw new OrthancError(
        this.safe(
          `${method} ${route}: Orthanc at ${this.config.url} is unreachable (${cause ?? (e as Error).message})`,
        ),
        undefined,
        { unreachable: true, cause: e },
      );
    }
    if (!res.ok) {
      // One line: Orthanc describes its errors as indented JSON, and a message is one line of the log or of `cxr: ...`.
      const text = (await res.text().catch(() => '')).replace(/\s+/g, ' ').trim().slice(0, 300);
      const hint = res.status === 401 || res.status === 403 ? `: ${this.loginHint(res.status)}` : '';
      throw new OrthancError(
        this.safe(`${method} ${route}: HTTP ${res.status}${hint}${text ? `: ${text}` : ''}`),
        res.status,
      );
    }
    return res;
  }

  /** STOW-RS (or `asked`, the same route) answered 404 by an Orthanc: what is missing, and how to add it. */
  private noDicomWeb(e: OrthancError, asked = `POST ${STOW_ROUTE}`): OrthancError {
    return new OrthancError(
      this.safe(
        `${asked}: HTTP 404 from Orthanc at ${this.config.url}: its DICOMweb plugin, which cxr stores ` +
          'results with (STOW-RS), is not loaded or not at /dicom-web/: install it (Debian: orthanc-dicomweb), ' +
          'list it in the "Plugins" of Orthanc\'s configuration with "DicomWeb": {"Enable": true, "Root": ' +
          '"/dicom-web/"}, and restart Orthanc',
      ),
      404,
      { cause: e },
    );
  }

  /** What a 401/403 means for this configuration, and what to do. */
  private loginHint(status: number): string {
    const who = this.config.user === undefined ? 'no user given' : `user '${this.config.user}'`;
    const what =
      status === 403
        ? `Orthanc at ${this.config.url} does not allow this to ${who}`
        : `Orthanc at ${this.config.url} refused the login (${who})`;
    return (
      `${what}: check the login where it is given: CXR_ORTHANC_USER and CXR_ORTHANC_PASSWORD, the --config ` +
      "file's user and password, or the user:password in CXR_ORTHANC_URL or the file's url"
    );
  }

  /**
   * One cheap request (GET /system) that checks that the URL is an Orthanc and that it takes the login:
   * for a process's start-up, so a wrong password is said at once rather than by every film later. Gives
   * Orthanc's name and version; throws OrthancError: code ORTHANC_AUTH (isOrthancAuthError) for a login
   * refused, `outage` for Orthanc away, ORTHANC_HTTP or ORTHANC_BAD_ANSWER for something that is not Orthanc.
   */
  async checkConnection(): Promise<{ name: string; version: string }> {
    try {
      const system = await this.json(SystemSchema, 'GET', '/system');
      return { name: system.Name, version: system.Version };
    } catch (e) {
      throw this.wrongPath(e) ?? e;
    }
  }

  /**
   * Whether the DICOMweb route cxr stores results with answers (GET of the STOW route with limit=1: a QIDO-RS search
   * for one study, cheap on any archive): for a worker's start-up, after checkConnection, so that an Orthanc without
   * its DICOMweb plugin is said at once rather than by every Orthanc job after its tries. Throws the OrthancError of
   * a STOW-RS answered 404 (what to install, and how) when the route is not there; what the request throws
   * otherwise (Orthanc away, the login refused).
   */
  async checkDicomWeb(): Promise<void> {
    try {
      await this.request('GET', `${STOW_ROUTE}?limit=1`);
    } catch (e) {
      if (!(e instanceof OrthancError) || e.status !== 404) throw e;
      throw (await this.wrongPathError()) ?? this.noDicomWeb(e, `GET ${STOW_ROUTE}`);
    }
  }

  /**
   * After a 404 for an instance: null when an Orthanc answers at this URL (GET /system), so the instance is
   * indeed not there; else an OrthancError ORTHANC_BAD_PATH, for every route of a URL without Orthanc under
   * its path is a 404 (Orthanc behind a proxy at https://host/pacs/, configured as https://host/). One
   * request: ask once per batch of 404s, not per film. Throws what GET /system throws otherwise (Orthanc
   * away, the login refused).
   */
  async wrongPathError(): Promise<OrthancError | null> {
    try {
      await this.checkConnection();
      return null;
    } catch (e) {
      if (e instanceof OrthancError && e.code === 'ORTHANC_BAD_PATH') return e;
      throw e;
    }
  }

  /** GET /system's failure as ORTHANC_BAD_PATH when it says that no Orthanc is at the URL's path; else null. */
  private wrongPath(e: unknown): OrthancError | null {
    if (!(e instanceof OrthancError) || (e.status !== 404 && e.code !== 'ORTHANC_BAD_ANSWER')) return null;
    const got = e.status === 404 ? 'HTTP 404' : "an answer that is not Orthanc's";
    return new OrthancError(
      this.safe(
        `Orthanc URL ${this.config.url}: GET /system there gave ${got}, so no Orthanc answers under this URL: ` +
          "its path looks wrong (or it names another server). Check CXR_ORTHANC_URL (or the --config file's " +
          'url): Orthanc itself answers at the root of its port (http://host:8042), and behind a proxy the URL ' +
          'must include the path the proxy serves it under (e.g. https://host/pacs)',
      ),
      e.status,
      { cause: e, code: 'ORTHANC_BAD_PATH' },
    );
  }

  private async json<T>(
    schema: z.ZodType<T>,
    method: string,
    route: string,
    init?: { body?: Buffer | string; headers?: Record<string, string> },
  ): Promise<T> {
    const res = await this.request(method, route, init);
    const text = await this.body(res, method, route, (r) => r.text());
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new OrthancError(`${method} ${route}: the answer is not JSON (is ${this.config.url} an Orthanc?)`);
    }
    const r = schema.safeParse(body);
    if (!r.success)
      throw new OrthancError(
        `${method} ${route}: unexpected answer (${r.error.issues[0].path.join('.')}: ${r.error.issues[0].message})`,
      );
    return r.data;
  }

  /**
   * The body of an answer whose headers came. A read cut off (the connection lost, the 60 s bound passed) is Orthanc
   * away, as a request that got no answer is. Before, JSON cut off was taken for an answer that is not Orthanc's (no
   * outage: a worker's job had only its few tries), and a film's bytes cut off threw fetch's own error (a
   * TimeoutError stopped a polling sync for good, naming neither Orthanc nor the request).
   */
  private async body<T>(res: Response, method: string, route: string, read: (r: Response) => Promise<T>): Promise<T> {
    try {
      return await read(res);
    } catch (e) {
      // Stopped by the caller: not the PACS's failure.
      this.signal?.throwIfAborted();
      const cause = (e as { cause?: { message?: string } }).cause?.message;
      throw new OrthancError(
        this.safe(
          `${method} ${route}: Orthanc at ${this.config.url} stopped answering halfway ` +
            `(${cause ?? (e as Error).message})`,
        ),
        undefined,
        { unreachable: true, cause: e },
      );
    }
  }

  /**
   * `work` on a route every Orthanc has (the change feed, the list of instances): its 404 says the URL's path
   * is wrong when GET /system agrees (ORTHANC_BAD_PATH), for `cxr orthanc sync` and `cxr enqueue --orthanc-all`.
   */
  private async onEveryOrthanc<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (e) {
      if (e instanceof OrthancError && e.status === 404) throw (await this.wrongPathError()) ?? e;
      throw e;
    }
  }

  /** Changes with Seq > since, oldest first. */
  changes(since: number, limit: number): Promise<ChangePage> {
    return this.onEveryOrthanc(this.json(ChangesSchema, 'GET', `/changes?since=${since}&limit=${limit}`));
  }

  /** The Seq of the newest change (0 for an empty PACS). */
  async lastChange(): Promise<number> {
    return (await this.onEveryOrthanc(this.json(ChangesSchema, 'GET', '/changes?last'))).Last;
  }

  /** One page of every instance id in the PACS (Orthanc's order), for a backfill. */
  instances(since: number, limit: number): Promise<string[]> {
    return this.onEveryOrthanc(this.json(IdListSchema, 'GET', `/instances?since=${since}&limit=${limit}`));
  }

  instanceTags(id: string): Promise<Record<string, unknown>> {
    return this.json(TagsSchema, 'GET', `/instances/${encodeURIComponent(id)}/simplified-tags`);
  }

  async instanceFile(id: string): Promise<Buffer> {
    const route = `/instances/${encodeURIComponent(id)}/file`;
    const res = await this.request('GET', route);
    return Buffer.from(await this.body(res, 'GET', route, (r) => r.arrayBuffer()));
  }

  /** Orthanc ids of the instances with this SOP Instance UID (none, or one). */
  findInstance(sopInstanceUid: string): Promise<string[]> {
    const body = JSON.stringify({ Level: 'Instance', Query: { SOPInstanceUID: sopInstanceUid } });
    return this.json(IdListSchema, 'POST', '/tools/find', { body, headers: { 'content-type': 'application/json' } });
  }

  /** Stores Part-10 instances with STOW-RS; throws unless every one was accepted. */
  async stow(instances: Buffer[]): Promise<void> {
    const { body, contentType } = stowBody(instances);
    const r = await this.json(StowResponseSchema, 'POST', STOW_ROUTE, {
      body,
      headers: { 'content-type': contentType, accept: 'application/dicom+json' },
    }).catch(async (e: unknown) => {
      if (!(e instanceof OrthancError) || e.status !== 404) throw e;
      // An Orthanc (GET /system answers) without the route: its DICOMweb plugin is not loaded, or not at this root.
      throw (await this.wrongPathError()) ?? this.noDicomWeb(e);
    });
    const failed = r['00081198']?.Value?.length ?? 0;
    const stored = r['00081199']?.Value?.length ?? 0;
    if (failed > 0 || stored !== instances.length) {
      throw new OrthancError(
        `STOW-RS: ${stored} of ${instances.length} instances stored, ${failed} failed: ` +
          JSON.stringify(r['00081198']?.Value ?? []).slice(0, 300),
        undefined,
        { code: 'ORTHANC_STORE_FAILED' },
      );
    }
  }
}
