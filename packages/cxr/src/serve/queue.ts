// Bounds the work the server takes on: at most `concurrency` predictions run at once (inference
// holds the event loop, so more would only add latency), and at most `maxWaiting` wait. Beyond
// that the server answers 503 at once instead of queueing without limit and running out of memory.

export class BusyError extends Error {
  readonly code = 'BUSY';
  readonly statusCode = 503;
  constructor(waiting: number) {
    super(`the server is busy (${waiting} requests waiting); retry shortly`);
    this.name = 'BusyError';
  }
}

export class WorkQueue {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly concurrency: number,
    private readonly maxWaiting: number,
  ) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.concurrency) {
      if (this.waiting.length >= this.maxWaiting) throw new BusyError(this.waiting.length);
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    try {
      return await task();
    } finally {
      // Hand the slot straight to the next waiter, so active never drops below what is running.
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }

  get pending(): number {
    return this.active + this.waiting.length;
  }

  /** Predictions running now. */
  get running(): number {
    return this.active;
  }

  /** Predictions waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }
}
