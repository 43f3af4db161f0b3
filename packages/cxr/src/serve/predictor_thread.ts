// The server's predictor, run in a worker thread (predictor_worker.ts). In the server's own thread the
// network and Grad-CAM held the event loop for a few hundred milliseconds per film: under 50 parallel
// uploads /health took up to 2 s. Here the thread only passes bytes and answers; a prediction's
// errors keep their class (an input's fault stays its 4xx), and a thread that ends (a JavaScript error,
// its heap exhausted, a prediction past its deadline) fails only the predictions it held (503, send
// again) while a new one loads the model. A native fault in the engine still ends the whole process.
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
// The native engine is loaded on this thread first, on purpose: OpenMP reads OMP_WAIT_POLICY (which the
// backend sets) from the process environment once, when libtorch loads, and a worker's process.env is a copy.
import '../engine';
import type { Logger } from '../log';
import { InputError } from '../predict/errors';
import type { Prediction, PredictOptions } from '../predict/predictor';
import { DecodeWorkerError } from './decode_pool';
import { HttpError } from './http_error';
import { type DecodePoolStats, ENGINE_RETRY_AFTER_S, type EngineState, type ServePredictor } from './predictor_port';
import type { EngineMessage, EngineStart, EngineTask, RemoteError } from './predictor_worker';

const WORKER_FILE = path.join(__dirname, 'predictor_worker.js');

/**
 * Longest one prediction may hold the engine before its thread is ended and replaced: a stuck engine would
 * otherwise hold the concurrency slots for good while /health said ready. Far above a prediction's time (under a
 * second; decoding has its own 30 s deadline), as predictions in the thread run one after the other.
 */
const ENGINE_DEADLINE_MS = 120_000;

/** After a failed load, the next tries: from 5 s, doubling, at most a minute apart (no traffic needed). */
const RELOAD_FIRST_MS = 5_000;
const RELOAD_MAX_MS = 60_000;

/**
 * Images in flight when a thread ended are suspects for this long, and run alone meanwhile: one alone in the
 * thread at an end after that is refused until then (422 ENGINE_FAULT), or every resend of it would end the
 * engine, and every other client's prediction.
 */
const SUSPECT_MS = 10 * 60_000;

export type ThreadedPredictor = ServePredictor & {
  /** Predictor.notes of the loaded model (an unfinished run, no heat maps...), for the start-up log. */
  readonly notes: string[];
  /** The thread now running the engine (tests end it to see a death handled). */
  readonly thread: () => Worker;
};

export function fromRemote(e: RemoteError): Error {
  if (e.kind === 'input') return new InputError(e.code, e.message);
  if (e.kind === 'decode-worker') return new DecodeWorkerError(e.why);
  const err = new Error(e.message);
  if (e.stack) err.stack = e.stack;
  return err;
}

/** Buffers again: a Buffer crosses a thread as a plain Uint8Array. */
function withBuffers(p: Prediction): Prediction {
  const out = { ...p };
  for (const k of ['heatmapPng', 'thumbnailPng'] as const) {
    const v = p[k];
    if (v) out[k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  }
  return out;
}

const sha256 = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');

interface Pending {
  resolve: (p: Prediction) => void;
  reject: (e: unknown) => void;
  /** The caller's bytes (held by it until answered anyway): hashed only if the thread ends meanwhile. */
  bytes: Uint8Array;
  deadline: NodeJS.Timeout;
}

type Ready = Extract<EngineMessage, { type: 'ready' }>;

interface Started {
  worker: Worker;
  ready: Promise<Ready>;
}

/**
 * Loads the model in a worker thread and resolves once it is ready (its own load errors, a missing
 * or broken model folder, reject with their message, as Predictor.load's would).
 */
export async function loadThreadedPredictor(
  dir: string,
  opts: Omit<EngineStart, 'dir'> & {
    log?: Logger;
    /** The first wait before a failed load is tried again (default 5 s; tests shorten it). */
    reloadFirstMs?: number;
  } = {},
): Promise<ThreadedPredictor> {
  const { log, reloadFirstMs = RELOAD_FIRST_MS, ...start } = opts;
  const pending = new Map<number, Pending>();
  const suspects = new Map<string, { ends: number; at: number }>();
  let nextId = 1;
  const idle: DecodePoolStats = { size: 0, busy: 0, queued: 0, restarts: 0 };
  let stats = idle;
  /** Decode workers the pools of ended threads had replaced: the counter in /metrics only goes up. */
  let decodeRestartsBefore = 0;
  let restarts = 0;
  let disposed = false;
  let state: EngineState = 'restarting';
  /** The one reload after a failed load, which every prediction that finds the failure waits for. */
  let reloading: Promise<void> | null = null;
  let reloadTimer: NodeJS.Timeout | null = null;
  let reloadDelay = reloadFirstMs;

  const spawn = (): Started => {
    const worker = new Worker(WORKER_FILE, { workerData: { ...start, dir } satisfies EngineStart });
    let loaded = false;
    let settle: { resolve: (m: Ready) => void; reject: (e: Error) => void };
    const ready = new Promise<Ready>((resolve, reject) => {
      settle = { resolve, reject };
    });
    ready.catch(() => {}); // read by whoever waits for it, and logged by whoever started it
    worker.on('message', (m: EngineMessage) => {
      if (m.type === 'ready') {
        loaded = true;
        stats = m.stats;
        settle.resolve(m);
        if (worker === current.worker) {
          state = 'ready';
          // Ref'd while it loads (a prediction may be waiting for it), then only while it has work.
          refIfBusy();
        }
      } else if (m.type === 'failed') {
        if (worker === current.worker) state = 'unavailable';
        settle.reject(fromRemote(m.error));
        void worker.terminate();
      } else if (m.type === 'stats') {
        if (worker === current.worker) stats = m.stats;
      } else if (m.type === 'log') {
        log?.warn(m.obj, m.msg);
      } else {
        const p = pending.get(m.id);
        if (!p) return;
        pending.delete(m.id);
        clearTimeout(p.deadline);
        if (m.ok) p.resolve(withBuffers(m.value));
        else p.reject(fromRemote(m.error));
        refIfBusy();
        drainedNow();
      }
    });
    // A thread that ends before its model loaded fails that load (no new thread at once: it would fail
    // alike; reloads follow on a timer); one that ends later is a death, replaced at once.
    const ended = (why: string) => {
      if (loaded) return died(worker, why);
      if (worker === current.worker) state = 'unavailable';
      settle.reject(new Error(`the prediction engine thread ${why} while loading`));
    };
    worker.on('error', (e) => ended(e.message));
    worker.on('exit', (code) => ended(`exited with code ${code}`));
    return { worker, ready };
  };

  let current = spawn();
  // An idle engine thread must not keep a finished process alive; one with predictions in flight does.
  const refIfBusy = () => (pending.size ? current.worker.ref() : current.worker.unref());

  /** A new thread in place of the current one; its load is logged, and a failed one tried again on a timer. */
  const replace = (): Started => {
    current = spawn();
    state = 'restarting';
    stats = idle;
    const started = current;
    started.ready.then(
      () => {
        reloadDelay = reloadFirstMs;
        log?.info('the prediction engine thread is running again');
      },
      (e: unknown) => {
        if (disposed || started !== current) return;
        log?.error(
          { err: e, nextTryS: reloadDelay / 1000 },
          `the prediction engine could not load the model again: ${(e as Error).message}`,
        );
        reloadTimer ??= setTimeout(() => {
          reloadTimer = null;
          void reload();
        }, reloadDelay);
        reloadTimer.unref();
        reloadDelay = Math.min(RELOAD_MAX_MS, reloadDelay * 2);
      },
    );
    return started;
  };

  /** One reload at a time, after a failed load: by the timer, or by a prediction that finds the failure. */
  const reload = (): Promise<void> => {
    if (disposed) return Promise.resolve();
    // One in flight (or just settled: its failure may have set the next try's timer) is shared as it is.
    if (reloading) return reloading;
    if (reloadTimer) clearTimeout(reloadTimer);
    reloadTimer = null;
    reloading = replace()
      .ready.then(
        () => {},
        () => {},
      )
      .finally(() => {
        reloading = null;
      });
    return reloading;
  };

  const died = (worker: Worker, why: string) => {
    if (disposed || worker !== current.worker) return;
    const lost = [...pending.values()];
    pending.clear();
    decodeRestartsBefore += stats.restarts;
    const now = Date.now();
    for (const [h, s] of suspects) if (now - s.at > SUSPECT_MS) suspects.delete(h);
    const restarting = new HttpError(
      503,
      'ENGINE_RESTARTING',
      `the prediction engine stopped (${why}) and is being restarted: nothing was predicted; send the image again`,
      ENGINE_RETRY_AFTER_S,
    );
    // An end counts against an image only where it was alone in the thread; images in flight together become
    // suspects, which run alone from then on (run), so that a second end names its image and no bystander.
    let refused = 0;
    for (const p of lost) {
      clearTimeout(p.deadline);
      const h = sha256(p.bytes);
      const before = suspects.get(h)?.ends ?? 0;
      const ends = lost.length === 1 ? before + 1 : Math.max(before, 1);
      suspects.set(h, { ends, at: now });
      if (ends >= 2) refused++;
      p.reject(ends >= 2 ? engineFault() : restarting);
    }
    drainedNow();
    restarts++;
    log?.error(
      { why, lostPredictions: lost.length, refusedImages: refused },
      'the prediction engine thread ended; starting a new one',
    );
    replace();
  };

  /** The suspect entry of `hash` while it is fresh (SUSPECT_MS); older ones are forgotten. */
  const suspectOf = (hash: string) => {
    const now = Date.now();
    for (const [h, x] of suspects) if (now - x.at > SUSPECT_MS) suspects.delete(h);
    return suspects.get(hash);
  };

  /** Resolves when no prediction is in the thread (a suspect waits for that, then runs alone). */
  let drainWaiters: (() => void)[] = [];
  const drained = () => new Promise<void>((r) => (pending.size ? drainWaiters.push(r) : r()));
  const drainedNow = () => {
    if (pending.size) return;
    const waiting = drainWaiters;
    drainWaiters = [];
    for (const r of waiting) r();
  };
  /** Set while a suspect runs alone: other predictions wait for it. */
  let solo: Promise<void> | null = null;

  const engineFault = () =>
    new HttpError(
      422,
      'ENGINE_FAULT',
      'this image was being predicted each of the two times the prediction engine stopped: it is not ' +
        'predicted again for now (the server log says why the engine stopped)',
    );

  let model: Ready;
  try {
    model = await current.ready;
  } catch (e) {
    disposed = true;
    await current.worker.terminate();
    throw e;
  }

  /** The engine thread once it has loaded; a thread replaced while it was awaited hands over to its successor. */
  const readyWorker = async (): Promise<Worker> => {
    let tried = false;
    for (;;) {
      const started = current;
      try {
        await started.ready;
      } catch {
        if (started !== current) continue;
        if (disposed) throw new Error('the predictor was closed');
        // A load that failed is tried again on the timer's backoff (replace), never by the predictions that find
        // it (steady traffic would reload back to back); one under way is waited for, once.
        if (!tried && reloading) {
          tried = true;
          await reloading;
          continue;
        }
        throw new HttpError(
          503,
          'ENGINE_UNAVAILABLE',
          'the prediction engine could not load the model (the server log says why); it tries again by itself',
          ENGINE_RETRY_AFTER_S,
        );
      }
      if (started === current) return started.worker;
    }
  };

  const run = async (op: EngineTask['op'], bytes: Uint8Array, o?: PredictOptions): Promise<Prediction> => {
    if (disposed) throw new Error('the predictor was used after dispose()');
    while (solo) await solo;
    // Hashed only while there are suspects (after an end, for ten minutes).
    const suspect = suspects.size ? suspectOf(sha256(bytes)) : undefined;
    if (suspect && suspect.ends >= 2) throw engineFault();
    if (!suspect) return send(op, bytes, o);
    let release = () => {};
    solo = new Promise<void>((r) => {
      release = r;
    });
    try {
      await drained();
      return await send(op, bytes, o);
    } finally {
      solo = null;
      release();
    }
  };

  const send = async (op: EngineTask['op'], bytes: Uint8Array, o?: PredictOptions): Promise<Prediction> => {
    const worker = await readyWorker();
    // One copy, handed over: a clone of a view would copy its whole underlying buffer.
    const copy = new Uint8Array(bytes);
    return new Promise<Prediction>((resolve, reject) => {
      const id = nextId++;
      // Answered and replaced at once: terminate() cannot stop native code that is stuck, so its exit may never come.
      const deadline = setTimeout(() => {
        if (worker !== current.worker) return;
        died(worker, `a prediction ran past ${ENGINE_DEADLINE_MS / 1000} s`);
        void worker.terminate();
      }, ENGINE_DEADLINE_MS);
      deadline.unref();
      pending.set(id, { resolve, reject, bytes, deadline });
      worker.postMessage({ id, op, bytes: copy, opts: o } satisfies EngineTask, [copy.buffer]);
      refIfBusy();
    });
  };

  return {
    model: model.model,
    notes: model.notes,
    predict: (bytes, o) => run('predict', bytes, o),
    warmUp: (bytes) => run('warmUp', bytes),
    decodeStats: () => ({ ...stats, restarts: decodeRestartsBefore + stats.restarts }),
    engineRestarts: () => restarts,
    engineState: () => state,
    thread: () => current.worker,
    dispose: () => {
      disposed = true;
      if (reloadTimer) clearTimeout(reloadTimer);
      for (const p of pending.values()) {
        clearTimeout(p.deadline);
        p.reject(new Error('the predictor was closed'));
      }
      pending.clear();
      void current.worker.terminate();
    },
  };
}
