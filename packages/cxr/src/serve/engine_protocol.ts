// What the server and its engine process (predictor_process.ts, predictor_child.ts) say to each other: the
// messages each way, how an error crosses (its kind decides the class it is rebuilt as, so an input's fault
// stays its 4xx), and how the end of the process is told.
import { InputError } from '../predict/errors';
import type { Prediction, PredictOptions, Predictor, PredictorOptions } from '../predict/predictor';
import { ModelLoadError } from '../predict/predictor_load';
import { DecodeWorkerError } from './decode_pool';
import type { DecodePoolStats } from './predictor_port';

/** What the server sends first: the model and how to run it. */
export interface EngineStart {
  dir: string;
  oodPolicy?: PredictorOptions['oodPolicy'];
  limits?: PredictorOptions['limits'];
  decodeWorkers?: number;
  threads?: number;
  /**
   * Run one prediction before `ready`: an engine that replaces a dead one does, so that the first film sent after
   * a restart is not the one that compiles the kernels (seconds). The first engine does not: the server warms it
   * up itself, with its own image, and a failure there ends the start.
   */
  warmUp?: boolean;
}

export interface EngineTask {
  id: number;
  op: 'predict' | 'warmUp';
  bytes: Uint8Array;
  opts?: PredictOptions;
}

/** What the server sends: the start once, then tasks. */
export type EngineRequest = ({ type: 'start' } & EngineStart) | ({ type: 'task' } & EngineTask);

/** How an error crosses the process boundary: its kind decides the class it is rebuilt as. */
export type RemoteError =
  | { kind: 'input'; code: InputError['code']; message: string; reasons?: InputError['reasons'] }
  | { kind: 'decode-worker'; why: string }
  | { kind: 'model-load'; code: ModelLoadError['code']; dir: string; message: string }
  | { kind: 'other'; message: string; stack?: string };

export type EngineMessage =
  | {
      type: 'ready';
      model: Predictor['model'];
      notes: string[];
      stats: DecodePoolStats;
      /** How long its own warm-up took (EngineStart.warmUp), in ms. */
      warmUpMs?: number;
    }
  /** A warning of the process's decode pool (a worker replaced, a deadline passed), for the server's log. */
  | { type: 'log'; obj: Record<string, unknown>; msg: string }
  | { type: 'failed'; error: RemoteError }
  | { type: 'stats'; stats: DecodePoolStats }
  | { type: 'reply'; id: number; ok: true; value: Awaited<ReturnType<Predictor['predict']>> }
  | { type: 'reply'; id: number; ok: false; error: RemoteError };

export function toRemote(e: unknown): RemoteError {
  const err = InputError.from(e);
  if (err instanceof InputError) return { kind: 'input', code: err.code, message: err.message, reasons: err.reasons };
  if (e instanceof DecodeWorkerError) return { kind: 'decode-worker', why: e.why };
  if (e instanceof ModelLoadError) return { kind: 'model-load', code: e.code, dir: e.dir, message: e.message };
  return e instanceof Error
    ? { kind: 'other', message: e.message, stack: e.stack }
    : { kind: 'other', message: String(e) };
}

export function fromRemote(e: RemoteError): Error {
  if (e.kind === 'input') return new InputError(e.code, e.message, { reasons: e.reasons });
  if (e.kind === 'decode-worker') return new DecodeWorkerError(e.why);
  if (e.kind === 'model-load') return new ModelLoadError(e.code, e.dir, e.message);
  const err = new Error(e.message);
  if (e.stack) err.stack = e.stack;
  return err;
}

/** Buffers, whatever view of the bytes the channel hands back. */
export function withBuffers(p: Prediction): Prediction {
  const out = { ...p };
  for (const k of ['heatmapPng', 'thumbnailPng'] as const) {
    const v = p[k];
    if (v) out[k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  }
  return out;
}

/** Signals by which the kernel ends a process for what its native code did. */
const NATIVE_FAULTS = new Set(['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE']);

/** Why a process ended, for the log and the 503 ("stopped (…)"): its signal says more than a null exit code. */
export function endedBy(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal && NATIVE_FAULTS.has(signal)) return `a native fault, ${signal}`;
  // V8 aborts on an exhausted heap too, after writing why to stderr (the server's).
  if (signal === 'SIGABRT') return 'an abort, SIGABRT: a native error or its heap exhausted';
  return signal ? `ended by ${signal}` : `it exited with code ${code}`;
}
