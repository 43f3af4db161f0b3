// Brings a new result card into view when it would start below the fold (a laptop screen, 200 % zoom):
// the card is scrolled to the top of the window, below the status line. A card that is still small
// cannot be scrolled up on a short page, so the card is followed while it grows (its answer, then its
// image) until it is in place, the reader scrolls or clicks or types, or another card takes its place.
import { reducedMotion } from './dom';

let target: HTMLElement | null = null;
let watch: ResizeObserver | null = null;

function stop(): void {
  watch?.disconnect();
  watch = null;
  target = null;
}

// The reader takes over: nothing moves under them after this.
for (const type of ['wheel', 'touchstart', 'keydown', 'mousedown'])
  window.addEventListener(type, stop, { capture: true, passive: true });

/** Whether the card starts in the window's upper half (room for its answer below): nothing to do then. */
function inView(card: HTMLElement): boolean {
  const top = card.getBoundingClientRect().top;
  return top >= 0 && top <= window.innerHeight * 0.5;
}

function scroll(card: HTMLElement): void {
  if (inView(card)) return;
  card.scrollIntoView({ block: 'start', behavior: reducedMotion() ? 'auto' : 'smooth' });
}

/**
 * Scrolls `card` into view; `moveFocus` (files from the file picker) also moves focus to it, so that
 * the keyboard user goes on from the card, which is named by its file, not from a control out of sight.
 */
export function reveal(card: HTMLElement, moveFocus: boolean): void {
  stop();
  if (moveFocus) card.focus({ preventScroll: true });
  if (inView(card)) return;
  target = card;
  scroll(card);
  watch = new ResizeObserver(() => {
    if (target === card) scroll(card);
  });
  watch.observe(card);
  // Long enough for a slow answer and its image; not to pull the page about minutes later.
  setTimeout(() => {
    if (target === card) stop();
  }, 60_000);
}
