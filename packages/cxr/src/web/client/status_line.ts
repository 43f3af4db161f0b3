// The Analyze view's status line and what a screen reader is told.
//
// The visible line (#status) says where the work stands: "Analyzing 3 of 12…", then a true summary
// once nothing is pending ("Done: 9 analyzed, 3 not analyzed."), counted over every batch taken since
// the queue was last idle: a batch dropped while another runs joins it, and no batch says "Done"
// while a later one is still analyzing.
//
// Screen readers hear #announcer, a polite live region that gets one short message per finished card
// and one per summary. Each message is a new element: a message that repeats the last one (the same
// film twice, "Done: 1 analyzed." after each of two batches) is an addition and is still read, where
// setting the same text again would not be; and a card's message followed at once by the summary does
// not replace it before it is read.
import { $, el } from './dom';

/** Older messages are dropped: the region only needs what has not been read yet. */
const KEEP = 20;

/** Tells screen readers `text` (politely), even when it repeats the last message. */
export function announce(text: string): void {
  const region = $('#announcer');
  region.append(el('p', { textContent: text }));
  while (region.childElementCount > KEEP) region.firstElementChild?.remove();
}

/** Sets the visible status line; `say` also announces it. */
export function showStatus(text: string, say = true): void {
  $('#status').textContent = text;
  if (say) announce(text);
}

export type Outcome = 'analyzed' | 'failed' | 'unreachable';

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The files of every batch since the queue was last idle, and what became of them. */
export class BatchProgress {
  private total = 0;
  private finished = 0;
  private analyzed = 0;
  private failed = 0;
  private unreachable = 0;

  get pending(): number {
    return this.total - this.finished;
  }

  /** Files taken: a new run when nothing was pending, else they join the one under way. */
  add(n: number): void {
    if (this.pending === 0) this.total = this.finished = this.analyzed = this.failed = this.unreachable = 0;
    this.total += n;
    announce(`Analyzing ${plural(n, 'file')}.`);
    this.show();
  }

  /** The next file's turn: the line says which of how many. */
  show(): void {
    const waiting = this.pending - 1;
    showStatus(`Analyzing ${this.finished + 1} of ${this.total}…${waiting > 0 ? ` ${waiting} waiting.` : ''}`, false);
  }

  done(outcome: Outcome): void {
    this.finished += 1;
    if (outcome === 'analyzed') this.analyzed += 1;
    else this.failed += 1;
    if (outcome === 'unreachable') this.unreachable += 1;
    if (this.pending > 0) {
      this.show();
      return;
    }
    const parts = [`${this.analyzed} analyzed`];
    if (this.failed) parts.push(`${this.failed} not analyzed`);
    const why = this.unreachable
      ? ` The server could not be reached for ${plural(this.unreachable, 'file')}: check that it is running, then ` +
        'use "Try again" on the card.'
      : '';
    showStatus(`Done: ${parts.join(', ')}.${why}`);
  }
}
