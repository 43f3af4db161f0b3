// The lines `cxr orthanc sync` writes about the films it handles: a pass's (and with --queue a batch's) summary,
// and with --queue the films queued, found done or skipped, counted rather than said one by one.
import type { InstanceOutcome, OrthancClient, SyncStats } from '../pacs';
import { type JobQueue, type JobSpec, syncHandler } from '../queue';

/**
 * `own`: how many of the skipped were cxr's own results, which get no line each (a restart meets one per result);
 * `why`: with --queue, the skipped by reason.
 */
export function summary(s: SyncStats, queued: boolean, own = 0, why?: Map<string, number>, cursor = true): string {
  const reasons = why && why.size > 0 ? ` (${reasonsText(why)})` : '';
  return (
    `${s.instances} new instances: ${s.processed} ${queued ? 'queued' : 'predicted and stored'}, ` +
    `${s.alreadyDone} already ${queued ? 'queued or done' : 'done'}, ` +
    `${s.skipped} skipped${own > 0 ? ` (${own} of them cxr's own results)` : reasons}, ${s.failed} failed` +
    (cursor ? ` (cursor at change ${s.cursor})` : '')
  );
}

/** The commonest reasons first, three at most: a summary line stays one line. */
function reasonsText(why: Map<string, number>): string {
  const sorted = [...why].sort((a, b) => b[1] - a[1]);
  const shown = sorted.slice(0, 3).map(([reason, n]) => `${n}: ${reason}`);
  const rest = sorted.slice(3).reduce((n, [, k]) => n + k, 0);
  return [...shown, ...(rest > 0 ? [`${rest}: other reasons`] : [])].join('; ');
}

export const emptyStats = (cursor = 0): SyncStats => ({
  instances: 0,
  processed: 0,
  alreadyDone: 0,
  skipped: 0,
  failed: 0,
  cursor,
});

/**
 * With --queue, each new instance queued, found done, or skipped. A line per film (every SR and SC the workers
 * store comes back through the feed as a skipped "cxr result") buried the rest of the log: now the skips are
 * counted by reason for the summaries, and `say` (--verbose) gets the line per film.
 */
export function queueFilms(
  queue: JobQueue,
  client: OrthancClient,
  spec: JobSpec,
  skipped: (reason: string) => void,
  say: ((line: string) => void) | null,
): (id: string) => Promise<InstanceOutcome> {
  return syncHandler(queue, client, spec, (id, r) => {
    if (r.outcome === 'skipped') {
      const reason = r.reason ?? 'not a chest film';
      skipped(reason);
      say?.(`skip ${id}: ${reason}`);
    } else say?.(`${r.outcome} ${id}${r.id ? ` (job ${r.id})` : ''}`);
  });
}

/** How often a lasting Orthanc outage is said again while the sync keeps polling. */
export const OUTAGE_REMINDER_MS = 60_000;

/**
 * What a polling sync says of an Orthanc outage. It said "unreachable; retrying in N s" on every poll (every 2 s,
 * hundreds of lines in an hour) and never when Orthanc answered again: now the outage is said once with its error,
 * then once a minute with when it began and how many polls failed, and its end in one line. Polling keeps its
 * rate, so the end is seen within one interval. `now` is the clock (a test's own).
 */
export class OutageLines {
  private since: number | null = null;
  private lastSaid = 0;
  private tries = 0;

  constructor(
    private readonly log: (line: string) => void,
    private readonly intervalS: number,
    private readonly now: () => number = Date.now,
    private readonly reminderMs = OUTAGE_REMINDER_MS,
  ) {}

  /** A poll (or the start's check: `next` says when it tries again) that found Orthanc away, with the error. */
  failed(message: string, next?: string): void {
    const t = this.now();
    this.tries++;
    if (this.since === null) {
      this.since = t;
      this.lastSaid = t;
      this.log(
        `${message}; ${next ?? `retrying in ${this.intervalS} s`}, and every ${this.intervalS} s until Orthanc ` +
          `answers (said again every ${Math.round(this.reminderMs / 1000)} s while it does not)`,
      );
    } else if (t - this.lastSaid >= this.reminderMs) {
      this.lastSaid = t;
      this.log(
        `Orthanc still unreachable since ${clockTime(this.since)} (${this.tries} tries, ` +
          `${seconds(t - this.since)}); last error: ${message}`,
      );
    }
  }

  /** Orthanc answered: the end of an outage said once (nothing when there was none). */
  answered(): void {
    if (this.since === null) return;
    this.log(
      `Orthanc answers again after ${seconds(this.now() - this.since)} ` +
        `(unreachable since ${clockTime(this.since)}, ${this.tries} tries)`,
    );
    this.since = null;
    this.tries = 0;
  }
}

/** HH:MM:SS in the machine's time zone, as a reader compares it with the clock or the journal. */
function clockTime(ms: number): string {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

const seconds = (ms: number): string => `${Math.round(ms / 1000)} s`;
