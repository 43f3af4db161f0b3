// Worker-thread side of the server's predictor (predictor_thread.ts): loads the model once, then
// answers one message per prediction. The network and Grad-CAM run here, so the server's event loop
// (health, history, other uploads) never waits on them. Decoding goes one thread further out, to a
// decode pool of its own (decode_pool.ts), whose deadline ends a hostile file's worker, not this one.
import { parentPort, workerData } from 'node:worker_threads';
import { initEngine } from '../engine';
import { InputError } from '../predict/errors';
import { type PredictOptions, Predictor, type PredictorOptions } from '../predict/predictor';
import { DecodePool, DecodeWorkerError } from './decode_pool';
import type { DecodePoolStats } from './predictor_port';

/** What the server thread passes at start (workerData). */
export interface EngineStart {
  dir: string;
  oodPolicy?: PredictorOptions['oodPolicy'];
  limits?: PredictorOptions['limits'];
  decodeWorkers?: number;
  threads?: number;
}

export interface EngineTask {
  id: number;
  op: 'predict' | 'warmUp';
  bytes: Uint8Array;
  opts?: PredictOptions;
}

/** How an error crosses the thread boundary: its kind decides the class it is rebuilt as. */
export type RemoteError =
  | { kind: 'input'; code: InputError['code']; message: string }
  | { kind: 'decode-worker'; why: string }
  | { kind: 'other'; message: string; stack?: string };

export type EngineMessage =
  | { type: 'ready'; model: Predictor['model']; notes: string[]; stats: DecodePoolStats }
  /** A warning of the thread's decode pool (a worker replaced, a deadline passed), for the server's log. */
  | { type: 'log'; obj: Record<string, unknown>; msg: string }
  | { type: 'failed'; error: RemoteError }
  | { type: 'stats'; stats: DecodePoolStats }
  | { type: 'reply'; id: number; ok: true; value: Awaited<ReturnType<Predictor['predict']>> }
  | { type: 'reply'; id: number; ok: false; error: RemoteError };

export function toRemote(e: unknown): RemoteError {
  const err = InputError.from(e);
  if (err instanceof InputError) return { kind: 'input', code: err.code, message: err.message };
  if (e instanceof DecodeWorkerError) return { kind: 'decode-worker', why: e.why };
  return e instanceof Error
    ? { kind: 'other', message: e.message, stack: e.stack }
    : { kind: 'other', message: String(e) };
}

async function main(port: NonNullable<typeof parentPort>, start: EngineStart): Promise<void> {
  const send = (m: EngineMessage) => port.postMessage(m);
  let pool: DecodePool | undefined;
  let predictor: Predictor;
  try {
    await initEngine(start.threads);
    // The pool's warnings (traces of hostile files and memory caps) go to the server's log, on its thread, and
    // its state to /metrics there, which reads it synchronously: every change is sent.
    const decodes = new DecodePool({
      size: start.decodeWorkers,
      log: { warn: (obj, msg) => send({ type: 'log', obj, msg }) },
      onChange: () => send({ type: 'stats', stats: decodes.stats() }),
    });
    pool = decodes;
    // The server warms up itself (startServer), through this thread: no second warm-up here.
    predictor = await Predictor.load(start.dir, {
      oodPolicy: start.oodPolicy,
      limits: start.limits,
      decoder: decodes.decode,
      warmUp: false,
    });
  } catch (e) {
    await pool?.close();
    send({ type: 'failed', error: toRemote(e) });
    return;
  }
  // A reply that cannot be sent (a field that does not clone) is that prediction's error, not an unhandled
  // rejection, which would end the thread and every other prediction in it.
  const reply = (id: number, value: Awaited<ReturnType<Predictor['predict']>>) => {
    try {
      send({ type: 'reply', id, ok: true, value });
    } catch (e) {
      send({ type: 'reply', id, ok: false, error: toRemote(e) });
    }
  };
  port.on('message', (task: EngineTask) => {
    const bytes = Buffer.from(task.bytes.buffer, task.bytes.byteOffset, task.bytes.byteLength);
    const running = task.op === 'warmUp' ? predictor.warmUp(bytes) : predictor.predict(bytes, task.opts);
    running.then(
      (value) => reply(task.id, value),
      (e: unknown) => send({ type: 'reply', id: task.id, ok: false, error: toRemote(e) }),
    );
  });
  send({ type: 'ready', model: predictor.model, notes: predictor.notes, stats: pool.stats() });
}

if (parentPort) void main(parentPort, workerData as EngineStart);
