// A film the server refused for now, with the time to come back (503 with Retry-After: its prediction engine
// restarting, its audit log away, shutting down; a 429): the page waits as told, says on the card when it sends
// the film again (with Cancel), and sends it, a few times at most; then the card says when to try again. Before
// this the card said "Not analyzed" at once, and "Try again" pressed at once was refused the same way.
import * as api from './api';
import { fileName, setPending } from './card';
import { $ } from './dom';
import { announce } from './status_line';

/** Waits taken for one film before the refusal is its answer: a server that stays away is said, not hidden. */
export const MAX_WAITS = 3;
/** The longest wait taken unasked: a server that asks for more is told on the card, for the user to decide. */
export const LONGEST_WAIT_S = 60;

/** The seconds a refusal asks the page to wait before sending again; null for any other failure. */
export function askedWait(e: unknown): number | null {
  if (!(e instanceof api.ApiError) || (e.status !== 503 && e.status !== 429) || e.retryAfterS === null) return null;
  return Math.max(1, e.retryAfterS);
}

/** A clock time `seconds` from now, as the card says it ("17:03:12"). */
function clockIn(seconds: number): string {
  return new Date(Date.now() + seconds * 1000).toLocaleTimeString([], { hour12: false });
}

/** What the refusal means for the film, in words (the server's detail of a known code is for its operator). */
function whyRefused(e: api.ApiError): string {
  switch (e.code) {
    case 'ENGINE_RESTARTING':
      return "The server's prediction engine is restarting: nothing was analyzed.";
    case 'AUDIT_UNAVAILABLE':
      return (
        'The server cannot write its audit log just now, and gives no answer without its record: no answer was ' +
        'given.'
      );
    case 'BUSY':
      return 'The server is busy or shutting down: nothing was analyzed.';
    default:
      // A proxy's refusal (api.ts notProblem) is already in words; another is the server's own.
      return api.humanError(e).replace(/\.?$/, '.');
  }
}

/**
 * The refusal's message with when to send the film again (`action`, e.g. 'choose "balanced" again'): the card's
 * error once the page stops waiting.
 */
export function whenAgain(e: api.ApiError, seconds: number, waited: number, action = 'use "Try again"'): api.ApiError {
  const tried = waited ? ` It was sent ${waited + 1} times, waiting as the server asked.` : '';
  const message = `${whyRefused(e)}${tried} The server asks to wait: ${action} from ${clockIn(seconds)}.`;
  return new api.ApiError(e.status, e.code, message, e.maxUploadBytes, e.retryAfterS);
}

/** Until `seconds` have passed, the card saying when the film is sent again; rejects if `signal` cancels it. */
function waitOnCard(card: HTMLElement, e: api.ApiError, seconds: number, signal: AbortSignal): Promise<void> {
  // film_queue.ts: a wait cancelled is a film the server did not take, nothing of it recorded.
  card.dataset.state = 'waiting';
  const badge = $('.label-badge', card);
  badge.className = 'label-badge pending';
  badge.textContent = 'Waiting for the server…';
  $('.progress', card).hidden = false;
  $('.upload', card).hidden = true;
  // Cancel stays: the film has not been analyzed, and the user may not want to wait.
  $('.cancel', card).hidden = false;
  const text = $('.progress-text', card);
  const at = clockIn(seconds);
  const why = whyRefused(e);
  const until = Date.now() + seconds * 1000;
  const show = () => {
    const left = Math.max(1, Math.ceil((until - Date.now()) / 1000));
    text.textContent = `${why} Sending it again in ${left} s (at ${at}), as the server asked.`;
  };
  show();
  // Said once: a count each second would drown a screen reader.
  announce(`${fileName(card)}: ${why} Sending it again in ${seconds} seconds.`);
  return new Promise((resolve, reject) => {
    const tick = setInterval(show, 1000);
    const done = setTimeout(() => {
      clearInterval(tick);
      signal.removeEventListener('abort', stop);
      resolve();
    }, seconds * 1000);
    const stop = () => {
      clearInterval(tick);
      clearTimeout(done);
      reject(signal.reason ?? new DOMException('cancelled', 'AbortError'));
    };
    signal.addEventListener('abort', stop, { once: true });
  });
}

/**
 * `attempt` (a film sent to the server), sent again after the wait each refusal for now asks (askedWait), at most
 * MAX_WAITS times and never a wait over LONGEST_WAIT_S; then the refusal, saying when to try again (whenAgain).
 */
export async function patiently<T>(card: HTMLElement, signal: AbortSignal, attempt: () => Promise<T>): Promise<T> {
  for (let waited = 0; ; waited++) {
    try {
      return await attempt();
    } catch (e) {
      const seconds = askedWait(e);
      if (seconds === null || signal.aborted) throw e;
      const refusal = e as api.ApiError;
      if (waited >= MAX_WAITS || seconds > LONGEST_WAIT_S) throw whenAgain(refusal, seconds, waited);
      await waitOnCard(card, refusal, seconds, signal);
      setPending(card, 'Analyzing…');
    }
  }
}
