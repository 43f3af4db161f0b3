// Bounded concurrency for I/O and sharp work: more in flight than libuv has threads only
// queues, and fewer leaves the two cores idle while one image waits on the disk.

/** Runs fn over items with at most `limit` calls in flight; resolves when all have settled. */
export async function forEachConcurrent<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  const n = Math.max(1, Math.min(limit, items.length));
  await Promise.all(Array.from({ length: n }, worker));
}
