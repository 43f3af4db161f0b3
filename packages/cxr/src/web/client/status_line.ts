// The Analyze view's status line and what a screen reader is told.
//
// The visible line (#status) says where the work stands: "Analyzing 3 of 12…", then a true summary
// once nothing is pending ("Done: 6 files assessed, 1 outside the intended population, 2 cannot be
// assessed, 1 cancelled, 3 not analyzed: see their cards."), counted over every batch taken since the
// queue was last idle: a batch dropped while another runs joins it, and no batch says "Done" while a
// later one is still analyzing. A film that cannot be assessed got an answer but no finding: it is not
// counted with the films that got one; a film cancelled is not counted as one that failed.
//
// Screen readers hear #announcer, a polite live region that gets one short message per finished card
// and one per summary; it is outside the views, so that what is said on any view (a forgotten token) is
// heard. Each message is a new element: a message that repeats the last one (the same film twice,
// "Done: 1 file assessed." after each of two batches) is an addition and is still read, where setting
// the same text again would not be; and a card's message followed at once by the summary does not
// replace it before it is read. Only the latest messages stay: a reader going through the page line by
// line would hear every old one.
import { $, el } from './dom';

/** Messages kept: the last card's and the summary. */
const KEEP = 2;
/** An older message goes this long after it came: Chromium passes additions on asynchronously, and a
 * message removed in the moment it was added might never reach the screen reader. */
const READ_MS = 1000;
let pruneDue = false;

/** Drops the messages before the latest KEEP once each has had READ_MS to be passed on. */
function prune(): void {
  pruneDue = false;
  const region = $('#announcer');
  const now = performance.now();
  for (const p of Array.from(region.children).slice(0, -KEEP))
    if (now - Number((p as HTMLElement).dataset.at) >= READ_MS) p.remove();
  if (region.childElementCount > KEEP) schedulePrune();
}

function schedulePrune(): void {
  if (pruneDue) return;
  pruneDue = true;
  setTimeout(prune, READ_MS);
}

/** Tells screen readers `text` (politely), even when it repeats the last message. */
export function announce(text: string): void {
  const p = el('p', { textContent: text });
  p.dataset.at = String(performance.now());
  $('#announcer').append(p);
  schedulePrune();
}

/** Empties #announcer (a forgotten token): its last messages name the previous clinician's films and findings. */
export function clearAnnouncements(): void {
  $('#announcer').replaceChildren();
}

/** A button beside the status line: what the line asks the reader to do ("Try again", "Enter token"). */
export interface StatusAction {
  label: string;
  run: () => void;
}

/**
 * Sets the visible status line; `say` also announces it. `action` is the button beside it, where the line names
 * one: a line that says 'Use "Enter token"' without the button sent people looking for it. Any other line hides it.
 */
export function showStatus(text: string, say = true, action: StatusAction | null = null): void {
  const line = $('#status');
  line.textContent = text;
  const button = $('#status-action') as HTMLButtonElement;
  const had = document.activeElement === button;
  button.hidden = action === null;
  button.textContent = action?.label ?? '';
  button.onclick = action ? () => action.run() : null;
  // The button pressed ("Enter token", "Try all again") hidden under the focus: focus fell to the page's start.
  // It goes to the line that says what came of it, or, the line emptied (the model loaded), to the file picker.
  if (had && button.hidden) (text ? line : $('#file-input')).focus();
  if (say) announce(text);
}

/** What became of a file: its answer's verdict (as its card shows it), or why it got none. */
export type Outcome = 'assessed' | 'outside-population' | 'cannot-assess' | 'cancelled' | 'failed' | 'unreachable';

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** How often the server is asked whether it answers again while a film waits for it: a cheap GET. */
export const SERVER_POLL_MS = 5000;

/**
 * The films the server could not be reached for, each with its card's way to try again: the status line offers
 * them all at once ("Try all again": a server restarted under a batch left a "Try again" on every card), and the
 * server is asked every SERVER_POLL_MS whether it answers again (only while a film waits for it), which the line
 * then says. `idle`: whether no batch is under way (its line is not overwritten; its summary offers them).
 */
export class ServerWait<T> {
  private readonly retries = new Map<HTMLElement, T>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly idle: () => boolean,
    private readonly answers: () => Promise<boolean>,
    /** Sends them again, in one batch: one "Analyzing 3 files." said, not "Analyzing 1 file." three times. */
    private readonly again: (films: T[]) => void,
  ) {}

  get count(): number {
    return this.retries.size;
  }

  /** `card`'s `film` waits for the server. */
  add(card: HTMLElement, film: T): void {
    this.retries.set(card, film);
    this.watch();
  }

  /** `card`'s film is sent again (its own button, or all at once): it waits no more. */
  remove(card: HTMLElement): void {
    this.retries.delete(card);
    if (!this.count) this.stop();
  }

  /** The status line's button for them: none while none waits. */
  action(): StatusAction | null {
    if (!this.count) return null;
    return { label: this.label(), run: () => this.retryAll() };
  }

  private label(): string {
    return this.count > 1 ? 'Try all again' : 'Try again';
  }

  private retryAll(): void {
    const all = [...this.retries.values()];
    this.retries.clear();
    this.stop();
    this.again(all);
  }

  /** None waits any more (the view cleared): nothing is offered, and the server is not asked. */
  clear(): void {
    this.retries.clear();
    this.stop();
  }

  private stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Asks the server again in SERVER_POLL_MS, until it answers or no film waits for it. */
  private watch(): void {
    if (this.timer !== undefined || !this.count) return;
    this.timer = setTimeout(async () => {
      const up = await this.answers();
      this.timer = undefined;
      if (!this.count) return;
      if (!up) return this.watch();
      // A batch under way says it in its own summary, which offers the button too.
      if (this.idle())
        showStatus(
          `The server answers again. Use "${this.label()}" to analyze the ${plural(this.count, 'file')} it could ` +
            'not be reached for.',
          true,
          this.action(),
        );
    }, SERVER_POLL_MS);
  }
}

/** The files of every batch since the queue was last idle, and what became of them. */
export class BatchProgress {
  private total = 0;
  private finished = 0;
  private counts: Record<Outcome, number> = BatchProgress.none();

  /** `wait`: the films that wait for the server, offered again in the summary. */
  constructor(private readonly wait: Pick<ServerWait<unknown>, 'count' | 'action'> | null = null) {}

  private static none(): Record<Outcome, number> {
    return { assessed: 0, 'outside-population': 0, 'cannot-assess': 0, cancelled: 0, failed: 0, unreachable: 0 };
  }

  get pending(): number {
    return this.total - this.finished;
  }

  /** Files taken: a new run when nothing was pending, else they join the one under way. */
  add(n: number): void {
    if (this.pending === 0) {
      this.total = this.finished = 0;
      this.counts = BatchProgress.none();
    }
    this.total += n;
    announce(`Analyzing ${plural(n, 'file')}.`);
    this.show();
  }

  /**
   * A file cancelled while it waited its turn: out of the run's count at once (the line's "of 3… 2 waiting" is
   * the work left to do), and said as cancelled in its summary.
   */
  withdraw(): void {
    this.total -= 1;
    this.counts.cancelled += 1;
    if (this.pending > 0) this.show();
  }

  /** Nothing pending and nothing counted (the view cleared): the next file starts a new run. */
  reset(): void {
    this.total = this.finished = 0;
    this.counts = BatchProgress.none();
  }

  /** The next file's turn: the line says which of how many. */
  show(): void {
    const waiting = this.pending - 1;
    showStatus(`Analyzing ${this.finished + 1} of ${this.total}…${waiting > 0 ? ` ${waiting} waiting.` : ''}`, false);
  }

  done(outcome: Outcome): void {
    this.finished += 1;
    this.counts[outcome] += 1;
    if (this.pending > 0) {
      this.show();
      return;
    }
    const c = this.counts;
    const action = this.wait?.action() ?? null;
    const button = action ? `use "${action.label}"` : 'use "Try again" on the card';
    const earlier = (this.wait?.count ?? 0) - c.unreachable;
    const why = c.unreachable
      ? ` The server could not be reached for ${plural(c.unreachable, 'file')}: check that it is running, then ` +
        `${button}.`
      : earlier > 0
        ? ` ${plural(earlier, 'earlier file')} still wait${earlier === 1 ? 's' : ''} for the server: ${button} once ` +
          'it is running.'
        : '';
    showStatus(`Done: ${summary(c)}.${why}`, true, action);
  }
}

/**
 * What became of a run's files, for a person: only what happened ("0 assessed" said nothing), the first count
 * naming its files ("3 files assessed, 1 cannot be assessed"), and where to look for why a file was not analyzed
 * (its card), unless every one waits for the server, which the line's next sentence is about.
 */
function summary(c: Record<Outcome, number>): string {
  const failed = c.failed + c.unreachable;
  const where = c.failed === 0 ? '' : failed === 1 ? ': see its card' : ': see their cards';
  const parts: [number, string][] = [
    [c.assessed, 'assessed'],
    [c['outside-population'], 'outside the intended population'],
    [c['cannot-assess'], 'cannot be assessed'],
    [c.cancelled, 'cancelled'],
    [failed, `not analyzed${where}`],
  ];
  const said = parts.filter(([n]) => n > 0);
  return said.map(([n, what], i) => (i === 0 ? `${plural(n, 'file')} ${what}` : `${n} ${what}`)).join(', ');
}
