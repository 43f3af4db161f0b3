// Waiting with a bound. BullMQ and ioredis wait for Redis to come back when it goes away, which is right
// for a worker riding out a restart and wrong for a request, a shutdown or a command's first connection;
// those race the work against a timer here.

/** What `orLate` gives when the work has not settled in time. */
export const LATE: unique symbol = Symbol('late');

/**
 * `work`'s value, or LATE when it has not settled within `ms`. A failure before then is thrown; one after
 * is handled (Promise.race listens to `work`), never left unhandled.
 */
export async function orLate<T>(work: Promise<T>, ms: number): Promise<T | typeof LATE> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof LATE>((resolve) => {
    timer = setTimeout(() => resolve(LATE), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `work` settled (resolved or failed: for a close, either means it is over) within `ms`. */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  const over = () => true;
  return (await orLate(work.then(over, over), ms)) !== LATE;
}
