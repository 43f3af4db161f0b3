// Waiting, in the tests of the queue, for what Redis and a worker do in their own time.

/** Resolves once `ok()` holds, asking every 50 ms; throws `timed out: WHAT` after `ms`. */
export async function until(ok: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
