// One reader of the job queue's depth for whatever asks it (a /metrics scrape, a /health answer, the health
// route's background watch). Redis that is down or unreachable never answers, and BullMQ waits for it to come
// back: an asker must not wait for it, and asking again must not pile up commands waiting for it.
import { LATE, orLate } from '../deadline';

/** A read that settled: its value, or why it failed (the error's message). */
export type ProbeRead<T> = { ok: true; value: T } | { ok: false; reason: string };

/**
 * `read` asked one at a time: a call while a read is pending waits for that one rather than starting
 * another. Each call waits at most `waitMs`; past it, it gets LATE (and the read goes on, for the next call
 * to share). A failed read is an answer (`ok: false`), not a throw. `onSettled` sees each read once, when it
 * settles, however many calls waited for it (a change of state is said once, not once per asker).
 */
export function queueProbe<T>(
  read: () => Promise<T>,
  waitMs: number,
  onSettled?: (r: ProbeRead<T>) => void,
): () => Promise<ProbeRead<T> | typeof LATE> {
  let pending: Promise<ProbeRead<T>> | null = null;
  const settle = (r: ProbeRead<T>) => {
    onSettled?.(r);
    return r;
  };
  return async () => {
    pending ??= read()
      .then(
        (value) => settle({ ok: true, value }),
        (e: unknown) => settle({ ok: false, reason: e instanceof Error ? e.message : String(e) }),
      )
      .finally(() => {
        pending = null;
      });
    return orLate(pending, waitMs);
  };
}
