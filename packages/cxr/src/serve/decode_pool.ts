// Decoding off the predictor's thread. Everything before the model (DICOM parsing and inflation, the
// JPEG-LS/JPEG 2000/lossless codecs, VOI and gray conversion, the resize to the model input) is plain
// CPU work on untrusted bytes: a 49-megapixel PNG held /health for 2 s. Here it runs in a small pool
// of worker threads (the server's engine process, predictor_child.ts, owns one); a decode that runs
// past its deadline has its worker terminated (and replaced), and a worker that dies (memory cap)
// fails only its own request. loadPooledPredictor keeps the model on the caller's thread (the
// reference arm of bench/serve/health.js, and tests).
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { DecodedInput, DecodeRequest, InputDecoder } from '../predict/decode_input';
import { InputError, type InputErrorCode } from '../predict/errors';
import { Predictor, type PredictorOptions } from '../predict/predictor';
import type { Logger } from '../log';
import type { DecodePoolStats, ServePredictor } from './predictor_port';

/** What the pool says: a replaced worker, a deadline passed (a pino Logger is one). */
export interface PoolLog {
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface DecodePoolOptions {
  /** Worker threads (default 2). */
  size?: number;
  /** Longest one decode may take before its worker is terminated (default 30 s). */
  timeoutMs?: number;
  /** V8 heap cap per worker, in MiB (default 512): a runaway decode ends that worker, not the server. */
  maxHeapMb?: number;
  /** Where a replaced worker is reported (default: nowhere): the server's logger, or the engine process's relay. */
  log?: PoolLog;
  /** Called after each change of what stats() says (the engine process sends it to the server's /metrics). */
  onChange?: () => void;
  /** The worker script (default: decode_worker.js beside this file). Tests only: a script that fails at load. */
  workerFile?: string;
}

interface Task {
  id: number;
  bytes: Uint8Array;
  req: DecodeRequest;
  resolve: (v: DecodedInput) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  worker: Worker;
  /** Set once the worker has loaded its modules: the deadline covers decoding, not start-up. */
  ready: boolean;
  task: Task | null;
  timer: NodeJS.Timeout | null;
}

/** A worker crashed or was ended while decoding: a fault of the server, not of the input. */
export class DecodeWorkerError extends Error {
  constructor(readonly why: string) {
    super(`decode worker: ${why}`);
    this.name = 'DecodeWorkerError';
  }
}

type Reply =
  | { id: number; ok: true; value: DecodedInput }
  | { id: number; ok: false; code?: InputErrorCode; message: string };

const WORKER_FILE = path.join(__dirname, 'decode_worker.js');
/** Workers in a row that end before saying ready: past this the script cannot load, and respawning is futile. */
const MAX_FAILED_STARTS = 3;
const CLOSED = 'the decode pool was closed';

export class DecodePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private nextId = 1;
  private closed = false;
  private restarts = 0;
  private failedStarts = 0;
  /** Why the pool gave up (its workers cannot start): every decode is refused with it. */
  private broken: string | null = null;
  private readonly workerFile: string;
  private readonly timeoutMs: number;
  private readonly maxHeapMb: number;
  private readonly log: PoolLog | undefined;
  private readonly onChange: (() => void) | undefined;

  constructor(opts: DecodePoolOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxHeapMb = opts.maxHeapMb ?? 512;
    this.log = opts.log;
    this.onChange = opts.onChange;
    this.workerFile = opts.workerFile ?? WORKER_FILE;
    // 0, a negative, a string or past setTimeout's 2^31-1 ms (Infinity) fired the deadline at once: every decode
    // failed DECODE_TIMEOUT, a program's option unquestioned.
    const t = this.timeoutMs;
    if (typeof t !== 'number' || !(t >= 1 && t <= 2 ** 31 - 1))
      throw new TypeError(`DecodePool: timeoutMs must be a number of milliseconds from 1 to 2^31-1, not ${t}`);
    const size = opts.size ?? 2;
    // NaN would start no worker and leave every decode waiting for ever.
    if (!Number.isInteger(size) || size < 1)
      throw new TypeError(`DecodePool: size must be an integer >= 1, not ${size}`);
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  /** An InputDecoder for Predictor: same results and errors as decodeInput, off the main thread. */
  readonly decode: InputDecoder = (bytes, req) =>
    new Promise<DecodedInput>((resolve, reject) => {
      if (this.closed) return reject(new Error('DecodePool: closed'));
      if (this.broken) return reject(new DecodeWorkerError(this.broken));
      this.queue.push({ id: this.nextId++, bytes, req, resolve, reject });
      this.pump();
    });

  stats(): DecodePoolStats {
    return {
      size: this.slots.length,
      busy: this.slots.filter((s) => s.task !== null).length,
      queued: this.queue.length,
      restarts: this.restarts,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.queue.splice(0)) t.reject(new Error('DecodePool: closed'));
    // A decode in flight is answered now: its deadline timer would otherwise fire later and respawn a worker.
    for (const slot of this.slots) {
      const task = slot.task;
      this.finish(slot);
      task?.reject(new DecodeWorkerError(CLOSED));
    }
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private spawn(): Slot {
    const worker = new Worker(this.workerFile, { resourceLimits: { maxOldGenerationSizeMb: this.maxHeapMb } });
    const slot: Slot = { worker, ready: false, task: null, timer: null };
    worker.on('message', (r: Reply | { ready: true }) => {
      if ('ready' in r) {
        slot.ready = true;
        this.failedStarts = 0;
        this.pump();
        return;
      }
      const task = slot.task;
      if (!task || task.id !== r.id) return;
      this.finish(slot);
      if (r.ok) task.resolve(r.value);
      else if (r.code) task.reject(new InputError(r.code, r.message));
      else task.reject(new DecodeWorkerError(r.message));
      this.pump();
    });
    // A crash (out of memory, a native fault reported as an error) or a termination: fail the
    // task it held, put a fresh worker in its place.
    const replace = (why: string) => {
      if (this.closed || !this.slots.includes(slot)) return;
      const task = slot.task;
      this.finish(slot);
      task?.reject(new DecodeWorkerError(why));
      if (this.broken) return;
      if (!slot.ready && ++this.failedStarts >= MAX_FAILED_STARTS) return this.giveUp(why);
      this.restarts++;
      this.log?.warn({ why, busy: task !== null }, 'decode worker ended; starting a new one');
      this.slots[this.slots.indexOf(slot)] = this.spawn();
      this.pump();
    };
    worker.on('error', (e) => replace(e.message));
    worker.on('exit', (code) => replace(`exited with code ${code}`));
    // Idle workers must not keep a finished process alive. After the listeners: adding a
    // 'message' listener refs the worker's port again.
    worker.unref();
    return slot;
  }

  /** Workers that die before they are ready: stop respawning, refuse what waits and what comes. */
  private giveUp(why: string): void {
    this.broken = `${MAX_FAILED_STARTS} decode workers in a row ended before they were ready (last: ${why})`;
    this.log?.warn({ why }, 'decode workers cannot start; the pool refuses every decode');
    for (const t of this.queue.splice(0)) t.reject(new DecodeWorkerError(this.broken));
    this.pump();
  }

  private finish(slot: Slot): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    slot.task = null;
  }

  private pump(): void {
    this.assign();
    // A decode in flight or waiting keeps the process alive until it is answered; idle workers do not.
    for (const slot of this.slots) {
      if (slot.task || this.queue.length) slot.worker.ref();
      else slot.worker.unref();
    }
    this.onChange?.();
  }

  private assign(): void {
    for (const slot of this.slots) {
      if (!this.queue.length) return;
      if (slot.task || !slot.ready) continue;
      const task = this.queue.shift()!;
      slot.task = task;
      slot.timer = setTimeout(() => {
        if (this.closed) return;
        // Reject first (a clear 422), then end the worker; its exit handler brings a new one.
        this.finish(slot);
        task.reject(
          new InputError(
            'DECODE_TIMEOUT',
            `decoding took longer than ${this.timeoutMs / 1000} s: the file is too complex to process`,
          ),
        );
        this.restarts++;
        this.log?.warn({ timeoutMs: this.timeoutMs }, 'a decode ran past its deadline; its worker is replaced');
        if (!this.broken) this.slots[this.slots.indexOf(slot)] = this.spawn();
        void slot.worker.terminate();
        this.pump();
      }, this.timeoutMs);
      slot.worker.postMessage({ id: task.id, bytes: task.bytes, req: task.req });
    }
  }
}

/**
 * A pool for a library's Predictor: `predictor.decodeIn(createDecodePool())` decodes off the main thread and
 * closes the pool with the predictor's dispose() (an idle pool never keeps the process alive).
 */
export function createDecodePool(opts: DecodePoolOptions = {}): DecodePool {
  return new DecodePool(opts);
}

/** The server's predictor: Predictor.load with its decoding in a DecodePool, closed with it. */
export async function loadPooledPredictor(
  dir: string,
  opts: PredictorOptions & { decodeWorkers?: number; log?: Logger } = {},
): Promise<ServePredictor> {
  const { decodeWorkers, log, ...predictorOpts } = opts;
  const pool = new DecodePool({ size: decodeWorkers, log });
  try {
    const p = await Predictor.load(dir, { ...predictorOpts, decoder: pool.decode });
    return {
      model: p.model,
      predict: (bytes, o) => p.predict(bytes, o),
      warmUp: (bytes) => p.warmUp(bytes),
      decodeStats: () => pool.stats(),
      dispose: () => {
        p.dispose();
        void pool.close();
      },
    };
  } catch (e) {
    await pool.close();
    throw e;
  }
}
