// The Analyze view's films, one at a time (the order stays readable and the server's queue short), each with a
// "Cancel" while it waits or is being sent: a 23 MB DICOM on a slow link took a minute, and every film dropped
// meanwhile waited for it. A film cancelled while it waits is said at once and skipped at its turn; one cancelled
// on its way stops its upload (api.ts xhrPost), and the next starts at once. The status line counts a cancelled
// film as cancelled, not as one that failed; clear() ends them all (a forgotten token's results).
import * as api from './api';
import { fileName, setPending } from './card';
import { $, el } from './dom';
import { announce, BatchProgress, type Outcome, ServerWait } from './status_line';

/** A film in the queue: its card, and whatever its analysis needs. */
export interface QueuedFilm {
  card: HTMLElement;
}

/**
 * Analyzes a film; resolves 'cancelled' once `signal` has stopped it (its card is left to the queue) and says any
 * other outcome on its card. `retry` queues it again (the card's "Try again").
 */
export type Analysis<F> = (film: F, signal: AbortSignal, retry: (film: F) => void) => Promise<Outcome>;

export class FilmQueue<F extends QueuedFilm> {
  private queue = Promise.resolve();
  /** The films not finished yet, each with its way to cancel. */
  private readonly unfinished = new Set<AbortController>();
  /** Changed by clear(): a film of an earlier era counts no more (its card is gone). */
  private era = 0;
  private readonly wait: ServerWait<F>;
  private readonly progress: BatchProgress;

  constructor(private readonly analyze: Analysis<F>) {
    this.wait = new ServerWait<F>(
      () => this.progress.pending === 0,
      api.serverAnswers,
      (films) => this.again(films),
    );
    this.progress = new BatchProgress(this.wait);
  }

  enqueue(films: F[]): void {
    this.progress.add(films.length);
    const era = this.era;
    for (const film of films) {
      const abort = new AbortController();
      this.unfinished.add(abort);
      let started = false;
      offerCancel(film.card, () => {
        abort.abort();
        if (started) return; // said once the upload has stopped (analyze resolves 'cancelled')
        this.unfinished.delete(abort);
        this.cancelled(film, 'before it was sent');
        this.progress.withdraw();
      });
      this.queue = this.queue.then(async () => {
        if (abort.signal.aborted) return;
        started = true;
        const outcome = await this.analyze(film, abort.signal, this.retry);
        this.unfinished.delete(abort);
        if (era !== this.era) return;
        if (outcome === 'cancelled')
          this.cancelled(film, film.card.dataset.state === 'waiting' ? 'while it waited' : 'while it was being sent');
        if (outcome === 'unreachable') this.wait.add(film.card, film);
        this.progress.done(outcome);
      });
    }
  }

  /** `film` analyzed again: its card's "Try again", or the status line's "Try all again". */
  readonly retry = (film: F): void => {
    // The button goes away: focus stays on its card, not on the page's start.
    film.card.focus({ preventScroll: true });
    this.again([film]);
  };

  /** `films` analyzed again, as one batch. */
  private again(films: F[]): void {
    for (const film of films) {
      this.wait.remove(film.card);
      setPending(film.card);
    }
    this.enqueue(films);
  }

  /** Cancels every film waiting or on its way; none is counted or offered again, and the status line is left. */
  clear(): void {
    this.era += 1;
    for (const abort of this.unfinished) abort.abort();
    this.unfinished.clear();
    this.wait.clear();
    this.progress.reset();
  }

  /**
   * `film`'s card cancelled (`when`: before it was sent, while it waited for a server that refused it for now, or
   * while being sent): said on it and to screen readers;
   * nothing is said of a card the view no longer holds (cleared with a forgotten token: its name is the last
   * reader's).
   */
  private cancelled(film: F, when: 'before it was sent' | 'while it waited' | 'while it was being sent'): void {
    if (!film.card.isConnected) return;
    // A Cancel just after the server had the whole body cannot stop its analysis (api.ts xhrPost): not promised.
    // One that waited for the server (server_busy.ts) was refused by it: no answer was given.
    const why =
      when === 'before it was sent'
        ? `Cancelled ${when}: not analyzed, and nothing was recorded.`
        : when === 'while it waited'
          ? 'Cancelled while it waited for the server, which had refused it for now: not analyzed.'
          : `Cancelled ${when}: if the server had already received it, it may still appear in History.`;
    showCancelled(film.card, why, () => this.retry(film));
    announce(`${fileName(film.card)}: cancelled.`);
  }
}

/** The card's "Cancel" (`cancel` runs on a click; null takes it away). card.ts showProgress hides it. */
function offerCancel(card: HTMLElement, cancel: (() => void) | null): void {
  const button = $('.cancel', card) as HTMLButtonElement;
  button.setAttribute('aria-label', `Cancel ${fileName(card)}`);
  button.hidden = cancel === null;
  button.onclick = cancel;
}

/** The card cancelled before an answer: `why`, and "Try again" (`retry`), which takes focus from the gone Cancel. */
function showCancelled(card: HTMLElement, why: string, retry: () => void): void {
  const focused = card.contains(document.activeElement) && document.activeElement?.classList.contains('cancel');
  offerCancel(card, null);
  $('.progress', card).hidden = true;
  card.dataset.state = 'cancelled';
  const badge = $('.label-badge', card);
  badge.className = 'label-badge pending';
  badge.textContent = 'Cancelled';
  $('.warnings', card).replaceChildren(el('li', { textContent: why }));
  const button = $('.retry', card) as HTMLButtonElement;
  button.textContent = 'Try again';
  button.hidden = false;
  button.onclick = retry;
  if (focused) button.focus();
}
