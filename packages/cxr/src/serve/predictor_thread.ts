// The server's predictor, run in a worker thread (predictor_worker.ts). In the server's own thread the
// network and Grad-CAM held the event loop for a few hundred milliseconds per film: under 50 parallel
// uploads /health took up to 2 s. Here the thread only passes bytes and answers; a prediction's
// errors keep their class (an input's fault stays its 4xx), and a thread that dies fails only the
// predictions it held (503, send again) while a new one loads the model.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log';
import { InputError } from '../predict/errors';
import type { Prediction, PredictOptions } from '../predict/predictor';
import { DecodeWorkerError } from './decode_pool';
import { HttpError } from './http_error';
import type { DecodePoolStats, EngineState, ServePredictor } from './predictor_port';
import type { EngineMessage, EngineStart, EngineTask, RemoteError } from './predictor_worker';

const WORKER_FILE = path.join(__dirname, 'predictor_worker.js');

/** How long a client is asked to wait after the engine's thread died: the model loads again in seconds. */
const RESTART_RETRY_AFTER_S = 5;

export type ThreadedPredictor = ServePredictor & {
  /** Predictor.notes of the loaded model (an unfinished run, no heat maps...), for the start-up log. */
  readonly notes: string[];
  /** Engine threads that died and were replaced since the server started. */
  readonly restarts: () => number;
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

interface Pending {
  resolve: (p: Prediction) => void;
  reject: (e: unknown) => void;
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
  opts: Omit<EngineStart, 'dir'> & { log?: Logger } = {},
): Promise<ThreadedPredictor> {
  const { log, ...start } = opts;
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let stats: DecodePoolStats = { size: 0, busy: 0, queued: 0, restarts: 0 };
  let restarts = 0;
  let disposed = false;
  let state: EngineState = 'restarting';

  const spawn = (): Started => {
    const worker = new Worker(WORKER_FILE, { workerData: { ...start, dir } satisfies EngineStart });
    let loaded = false;
    let settle: { resolve: (m: Ready) => void; reject: (e: Error) => void };
    const ready = new Promise<Ready>((resolve, reject) => {
      settle = { resolve, reject };
    });
    ready.catch(() => {}); // read by whoever waits for it; a restart's failure is logged below
    worker.on('message', (m: EngineMessage) => {
      if (m.type === 'ready') {
        loaded = true;
        stats = m.stats;
        settle.resolve(m);
        if (worker === current.worker) state = 'ready';
        // Ref'd while it loads (a prediction may be waiting for it), then only while it has work.
        if (worker === current.worker) refIfBusy();
      } else if (m.type === 'failed') {
        if (worker === current.worker) state = 'unavailable';
        settle.reject(fromRemote(m.error));
        void worker.terminate();
      } else if (m.type === 'stats') {
        stats = m.stats;
      } else {
        const p = pending.get(m.id);
        if (!p) return;
        pending.delete(m.id);
        if (m.ok) p.resolve(withBuffers(m.value));
        else p.reject(fromRemote(m.error));
        refIfBusy();
      }
    });
    // A thread that ends before its model loaded fails that load (no new thread: it would fail alike);
    // one that ends later is a death, replaced at once.
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

  const died = (worker: Worker, why: string) => {
    if (disposed || worker !== current.worker) return;
    const lost = [...pending.values()];
    pending.clear();
    const error = new HttpError(
      503,
      'ENGINE_RESTARTING',
      `the prediction engine stopped (${why}) and is being restarted: nothing was predicted; send the image again`,
      RESTART_RETRY_AFTER_S,
    );
    for (const p of lost) p.reject(error);
    restarts++;
    state = 'restarting';
    log?.error({ why, lostPredictions: lost.length }, 'the prediction engine thread ended; starting a new one');
    current = spawn();
    current.ready.then(
      () => log?.info('the prediction engine thread is running again'),
      (e: unknown) => log?.error({ err: e }, `the prediction engine could not be restarted: ${(e as Error).message}`),
    );
  };

  let model: Ready;
  try {
    model = await current.ready;
  } catch (e) {
    disposed = true;
    await current.worker.terminate();
    throw e;
  }

  /** The engine thread once it has loaded; a thread that died while it was awaited hands over to its successor. */
  const readyWorker = async (): Promise<Worker> => {
    let tried = false;
    for (;;) {
      const started = current;
      try {
        await started.ready;
      } catch (e) {
        if (started !== current) continue;
        if (disposed) throw new Error('the predictor was closed');
        // A load that failed is tried again once for this prediction (the model folder may be back): those that
        // arrive meanwhile wait for the same try. Failed again, this one is answered; the next tries anew.
        if (!tried) {
          tried = true;
          current = spawn();
          state = 'restarting';
          continue;
        }
        throw new HttpError(
          503,
          'ENGINE_UNAVAILABLE',
          `the prediction engine could not load the model again (${(e as Error).message}); ` +
            'the next request tries again',
        );
      }
      if (started === current) return started.worker;
    }
  };

  const run = async (op: EngineTask['op'], bytes: Uint8Array, o?: PredictOptions): Promise<Prediction> => {
    if (disposed) throw new Error('the predictor was used after dispose()');
    const worker = await readyWorker();
    // One copy, handed over: a clone of a view would copy its whole underlying buffer.
    const copy = new Uint8Array(bytes);
    return new Promise<Prediction>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, op, bytes: copy, opts: o } satisfies EngineTask, [copy.buffer]);
      refIfBusy();
    });
  };

  return {
    model: model.model,
    notes: model.notes,
    predict: (bytes, o) => run('predict', bytes, o),
    warmUp: (bytes) => run('warmUp', bytes),
    decodeStats: () => stats,
    restarts: () => restarts,
    engineState: () => state,
    thread: () => current.worker,
    dispose: () => {
      disposed = true;
      for (const p of pending.values()) p.reject(new Error('the predictor was closed'));
      pending.clear();
      void current.worker.terminate();
    },
  };
}
