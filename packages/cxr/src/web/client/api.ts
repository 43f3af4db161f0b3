// Talks to /api/v1. When the server wants a bearer token, the page asks for it once and keeps it
// in sessionStorage: it lasts as long as the tab and is never written to disk or sent elsewhere. A token the
// server takes but that lacks the scope an action needs (403 INSUFFICIENT_SCOPE) is asked to be replaced too.
// The answers' types come from the JSON schemas the server serializes them with.
import type { ModelInfo, OperatingPointInfo } from '../../predict/model_info_schema';
import type { ApiPrediction, HistoryPage } from '../../predict/prediction_schema';
import type { Problem, TokenInfo } from '../../serve/schemas';

export type { HistoryPage, ModelInfo };
export type Prediction = ApiPrediction;
export type OperatingPoint = OperatingPointInfo;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** A refusal as too large: the server's largest accepted upload, in bytes, where its answer says it. */
    readonly maxUploadBytes: number | null = null,
    /** A refusal for now (503, 429): the seconds its Retry-After asks to wait before sending again, where it says. */
    readonly retryAfterS: number | null = null,
  ) {
    super(message);
  }
}

/** `n` as a byte limit: a positive integer, else null. */
function byteLimit(n: unknown): number | null {
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : null;
}

const TOKEN_KEY = 'cxr.apiToken';

/**
 * Why the token is asked for: the server wants one and none was sent, it did not accept the one sent, or the one
 * sent lacks the scope the action needs (the prompt is then given the server's words, which name the scope).
 */
export type TokenWant = 'missing' | 'refused' | 'scope';
export type TokenPrompt = (why: TokenWant, detail?: string) => Promise<string>;
let askToken: TokenPrompt | null = null;

export function setTokenPrompt(prompt: TokenPrompt): void {
  askToken = prompt;
}

export function authHeaders(): Record<string, string> {
  const t = sessionStorage.getItem(TOKEN_KEY);
  return t ? { Authorization: `Bearer ${t}` } : {};
}

/**
 * The name of the token the tab holds, as the server says it (GET /token, asked as soon as a token is entered or
 * found held; an older server without that route names it only in an answer's requestedBy). Kept beside the
 * token and dropped with it: a name outliving its token would show the previous clinician's.
 */
const TOKEN_NAME_KEY = 'cxr.apiTokenName';

/** Whether the tab holds a token, and its name where an answer has told it. */
export interface TokenState {
  held: boolean;
  name: string | null;
}

export function tokenState(): TokenState {
  const held = sessionStorage.getItem(TOKEN_KEY) !== null;
  return { held, name: held ? sessionStorage.getItem(TOKEN_NAME_KEY) : null };
}

const tokenListeners: ((state: TokenState) => void)[] = [];

/** `listener` is told of every change of the token held (entered, named by an answer, forgotten). */
export function onTokenChange(listener: (state: TokenState) => void): void {
  tokenListeners.push(listener);
}

function tokenChanged(): void {
  for (const l of tokenListeners) l(tokenState());
}

function storeToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
  sessionStorage.removeItem(TOKEN_NAME_KEY);
  tokenChanged();
  // Asked once, without the token loop: the request the token was entered for is sent again with it and asks
  // anew if it is refused (two loops would open the dialog twice for one wrong token).
  void send('/api/v1/token', { headers: authHeaders(), cache: 'no-store' }).then(
    (res) => takeName(res, token),
    () => undefined,
  );
}

/** Whether the server has GET /token: false after a 404 (a server from before it), null until it has answered. */
let tokenRoute: boolean | null = null;

/** The name the server gives the token `sentWith`, kept if the tab still holds that token. */
async function takeName(res: Response, sentWith: string | null): Promise<void> {
  // 404: a server from before GET /token; the name then comes with an answer (predict's requestedBy).
  if (res.status === 404) tokenRoute = false;
  if (!res.ok) return;
  tokenRoute = true;
  const info = (await res.json().catch(() => null)) as Partial<TokenInfo> | null;
  if (sentWith === null || sentWith !== sessionStorage.getItem(TOKEN_KEY) || typeof info?.name !== 'string') return;
  if (sessionStorage.getItem(TOKEN_NAME_KEY) === info.name) return;
  sessionStorage.setItem(TOKEN_NAME_KEY, info.name);
  tokenChanged();
}

/**
 * Asks the server whose token the tab holds (at the start, for a token kept from before a reload), so that the
 * header names it before any film is sent. A token it refuses is asked for again as for any request (apiFetch).
 */
export async function learnTokenName(): Promise<void> {
  if (sessionStorage.getItem(TOKEN_KEY) === null) return;
  let sentWith: string | null = null;
  const res = await withToken(() => {
    sentWith = sessionStorage.getItem(TOKEN_KEY);
    return send('/api/v1/token', { headers: authHeaders(), cache: 'no-store' });
  });
  await takeName(res, sentWith);
}

/**
 * Forgets the token (and its name): on a shared workstation the next clinician's requests are then asked for
 * their own, not logged under the previous one's name.
 */
export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(TOKEN_NAME_KEY);
  tokenChanged();
}

/** Said instead of the browser's "Failed to fetch" (or "NetworkError when attempting…"). */
export const UNREACHABLE =
  'Cannot reach the cxr server. It may be stopped or restarting, or the network is down. ' +
  'Check that it is running, then try again.';

/** fetch, with a network failure (server down, connection refused) as an ApiError people can read. */
async function send(url: string, init: RequestInit = {}): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    if (isAbort(e)) throw e;
    throw new ApiError(0, 'UNREACHABLE', UNREACHABLE);
  }
}

/** Whether `e` is the browser's own failure to reach the server (fetch's TypeError), not an answer. */
export function isNetworkFailure(e: unknown): boolean {
  return e instanceof TypeError && /fetch|network/i.test(e.message);
}

/** Said instead of the server's 401 ("send Authorization: Bearer <token>" is for API clients, not people). */
export const TOKEN_WORDS: Record<TokenWant, string> = {
  missing:
    'This server asks for an API token, and none was entered. Use "Enter token" and type the token you were ' +
    'given (ask whoever runs this cxr server if you have none).',
  refused:
    'This server did not accept the API token entered. Use "Enter token" to type it again (ask whoever runs ' +
    'this cxr server for the right one).',
  scope:
    'The API token entered may not do this. Use "Enter token" to type one that may (ask whoever runs this cxr ' +
    'server for it).',
};

/**
 * Whether `e` is the server's refusal for want of a (valid) token, or of one with the scope the action needs: the
 * page can ask for another and try again.
 */
export function needsToken(e: unknown): boolean {
  return e instanceof ApiError && (e.status === 401 || (e.status === 403 && e.code === INSUFFICIENT_SCOPE));
}

const INSUFFICIENT_SCOPE = 'INSUFFICIENT_SCOPE';

/** A 403 for a token without the scope the request needs: the server's words (they name the scope); else null. */
async function insufficientScope(res: Response): Promise<string | null> {
  if (res.status !== 403) return null;
  // A copy: the answer's body is still the caller's to read.
  const body = (await res
    .clone()
    .json()
    .catch(() => null)) as Partial<Problem> | null;
  return body?.code === INSUFFICIENT_SCOPE ? (body.detail ?? '') : null;
}

/** An error's message for the page: never the browser's bare "Failed to fetch". */
export function humanError(e: unknown): string {
  if (isNetworkFailure(e)) return UNREACHABLE;
  return e instanceof Error ? e.message : String(e);
}

/**
 * The one token loop of every request: `request` sends with the stored token (authHeaders(), read anew each
 * time); on 401, or 403 INSUFFICIENT_SCOPE (a token the server takes, kept for the tab, that may not do this), a
 * token is asked for (once per failure) and the request sent again, at most three times, after which the refusal
 * is the answer; a cancelled dialog ends it at once.
 */
async function withToken(request: () => Promise<Response>): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    const res = await request();
    const scope = await insufficientScope(res);
    if ((res.status !== 401 && scope === null) || !askToken || attempt >= 3) return res;
    // A dialog closed without a token is the user's "I have none": the 401 is the answer, the film is not
    // sent again (it was sent three more times, each with no token, each asking again).
    const token = await (scope === null ? askToken(tokenWant()) : askToken('scope', scope));
    if (!token) return res;
    storeToken(token);
  }
}

/** fetch with the token; on 401 or 403 INSUFFICIENT_SCOPE asks for a token and retries (withToken). */
export function apiFetch(url: string, init: RequestInit = {}): Promise<Response> {
  return withToken(() =>
    send(url, { ...init, headers: { ...(init.headers as Record<string, string> | undefined), ...authHeaders() } }),
  );
}

/** Why a 401 came: the tab holds a token (it was sent and refused), or none (none was sent). */
function tokenWant(): TokenWant {
  return sessionStorage.getItem(TOKEN_KEY) ? 'refused' : 'missing';
}

async function json<T>(res: Response): Promise<T> {
  // Errors are RFC 9457 problem details (the server's Problem schema).
  const body = (await res.json().catch(() => null)) as (Partial<Problem> & T) | null;
  // A 401 in words for people, with what to do on the page; the code stays the server's.
  if (res.status === 401) throw new ApiError(401, body?.code ?? 'UNAUTHORIZED', TOKEN_WORDS[tokenWant()]);
  if (!res.ok) {
    if (typeof body?.detail !== 'string') throw notProblem(res);
    const wait = retryAfter(res);
    throw new ApiError(res.status, body?.code ?? 'HTTP', body.detail, byteLimit(body?.maxUploadBytes), wait);
  }
  // A 200 that is no JSON (a proxy's sign-in page, its session over): the card said "Cannot read properties of null
  // (reading 'input')". Said in words; worth another try once signed in again (analyze.ts retryable).
  if (body === null || typeof body !== 'object') throw new ApiError(res.status, NOT_JSON, NOT_JSON_WORDS);
  return body as T;
}

/** The code of an answer that is not the API's JSON (json). */
export const NOT_JSON = 'NOT_JSON';

const NOT_JSON_WORDS =
  "The server's answer could not be read: it was not an answer of the cxr API (a sign-in page of a proxy in front " +
  'of it, or the wrong address?). Reload the page or sign in again, then try again.';

/**
 * An error answer that is no problem document of this server: a proxy's (api.md: a TLS proxy in front of it beyond
 * one machine), as an HTML page. It was said as "413 Request Entity Too Large" (nginx's own body limit, 1 MB by
 * default: no "export a smaller copy", as the server's TOO_LARGE gets) or "502 Bad Gateway" (cxr restarting behind
 * it), and over HTTP/2, which has no reason phrase, as a bare "502 ". Said in words, a 413 as too large.
 */
function notProblem(res: Response): ApiError {
  const status = `${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
  if (res.status === 413) return new ApiError(413, 'TOO_LARGE', `The file was refused as too large (${status}).`);
  const words =
    res.status === 502 || res.status === 503 || res.status === 504
      ? `The cxr server did not answer (${status}, from a proxy in front of it): it may be stopped or restarting. ` +
        'Try again in a moment.'
      : res.status === 429
        ? `Too many requests for now (${status}): wait a moment, then try again.`
        : `The server refused the request (${status}) without saying why.`;
  return new ApiError(res.status, 'HTTP', words, null, retryAfter(res));
}

/** The seconds an answer's Retry-After asks to wait (a number of seconds, or an HTTP date), or null. */
function retryAfter(res: Response): number | null {
  const v = res.headers.get('Retry-After')?.trim();
  if (!v) return null;
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/** How long serverAnswers waits for /health before taking the server for away. */
const HEALTH_POLL_TIMEOUT_MS = 4000;

/** Whether the server answers /health with 200 (up, its audit log and model too); never throws. */
export async function serverAnswers(): Promise<boolean> {
  // A poll that hangs (a server stopped mid-answer) would stop the polling for good: it gives up instead.
  return send('/api/v1/health', { signal: AbortSignal.timeout(HEALTH_POLL_TIMEOUT_MS) }).then(
    (res) => res.ok,
    () => false,
  );
}

/** The server's largest accepted upload in bytes, from /health; null when this server does not say it. */
export async function uploadLimit(): Promise<number | null> {
  const body = (await (await send('/api/v1/health')).json().catch(() => null)) as { maxUploadBytes?: unknown } | null;
  return byteLimit(body?.maxUploadBytes);
}

/** Bytes sent of an upload so far; `sent === total` once the whole body is out and the server is working. */
export type UploadProgress = (sent: number, total: number) => void;

/** The error of a request cancelled through its AbortSignal (as fetch's). */
function aborted(): DOMException {
  return new DOMException('upload aborted', 'AbortError');
}

/** Whether `e` is a request cancelled through its AbortSignal (the card's "Cancel"), not a failure. */
export function isAbort(e: unknown): boolean {
  return e instanceof DOMException && e.name === 'AbortError';
}

/**
 * A POST through XMLHttpRequest, which reports upload progress (fetch cannot): on a slow link a film of
 * a few MB takes seconds to send. Network failures read as fetch's do (ApiError UNREACHABLE). `signal` aborts it
 * (an AbortError): a body cut short never reaches the server's handler, so nothing is analyzed or logged; one
 * cancelled just after the server had it all may still be analyzed and logged (the page cannot tell).
 */
function xhrPost(url: string, body: FormData, onProgress?: UploadProgress, signal?: AbortSignal): Promise<Response> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(aborted());
    const xhr = new XMLHttpRequest();
    signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.open('POST', url);
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.responseType = 'blob';
    if (onProgress) xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : e.loaded);
    if (onProgress) xhr.upload.onload = (e) => onProgress(e.total || e.loaded, e.total || e.loaded);
    xhr.onload = () => {
      const headers = new Headers();
      // The headers json() reads: the body's type, and how long a refusal for now asks to wait.
      for (const name of ['Content-Type', 'Retry-After']) {
        const value = xhr.getResponseHeader(name);
        if (value) headers.set(name, value);
      }
      // A Response, so that one reader (json) serves both paths. A status without a body takes none.
      const body = [204, 205, 304].includes(xhr.status) ? null : (xhr.response as Blob);
      resolve(new Response(body, { status: xhr.status, statusText: xhr.statusText, headers }));
    };
    xhr.onerror = () => reject(new ApiError(0, 'UNREACHABLE', UNREACHABLE));
    xhr.onabort = () => reject(aborted());
    xhr.send(body);
  });
}

export async function predict(
  file: Blob,
  name: string,
  opts: {
    operatingPoint: string;
    patientAge?: number;
    heatmap?: boolean;
    onProgress?: UploadProgress;
    /** Cancels the upload (api.ts xhrPost): predict then rejects with an AbortError (isAbort). */
    signal?: AbortSignal;
  },
): Promise<Prediction> {
  const form = new FormData();
  form.append('image', file, name);
  const query = new URLSearchParams({ operatingPoint: opts.operatingPoint });
  if (opts.heatmap === false) query.set('heatmap', 'false');
  // The API takes decimal digits only: String(1e-7) would be '1e-7'. Six places are 30 seconds of age.
  if (opts.patientAge !== undefined) query.set('patientAge', opts.patientAge.toFixed(6).replace(/\.?0+$/, ''));
  const url = `/api/v1/predictions?${query}`;
  // On 401 (or a token without the predict scope) a token is asked for and the film sent again, as for every request.
  let sentWith: string | null = null;
  const p = await json<Prediction>(
    await withToken(() => {
      sentWith = sessionStorage.getItem(TOKEN_KEY);
      return xhrPost(url, form, opts.onProgress, opts.signal);
    }),
  );
  // The answer names the token it was sent with: the tab's, unless another was entered meanwhile. Only a server
  // without GET /token needs it: one with it has named the token already.
  if (tokenRoute !== true && p.requestedBy && sentWith !== null && sentWith === sessionStorage.getItem(TOKEN_KEY)) {
    if (sessionStorage.getItem(TOKEN_NAME_KEY) !== p.requestedBy) {
      sessionStorage.setItem(TOKEN_NAME_KEY, p.requestedBy);
      tokenChanged();
    }
  }
  return p;
}

export async function history(query: URLSearchParams): Promise<HistoryPage> {
  return json(await apiFetch(`/api/v1/predictions?${query}`));
}

export async function modelInfo(): Promise<ModelInfo> {
  return json(await apiFetch('/api/v1/model'));
}

/** An API image (heat map, thumbnail) as an object URL: <img> cannot send the token itself. */
export async function imageUrl(url: string, signal?: AbortSignal): Promise<string> {
  const res = await apiFetch(url, { signal });
  if (!res.ok) throw new ApiError(res.status, 'IMAGE', `${url}: ${res.status}`);
  return URL.createObjectURL(await res.blob());
}
