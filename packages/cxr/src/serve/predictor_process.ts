// The server's predictor, run in a child process (predictor_child.ts). In the server's own thread the
// network and Grad-CAM held the event loop for a few hundred milliseconds per film: under 50 parallel
// uploads /health took up to 2 s. Here the server only passes bytes and answers; a prediction's errors keep
// their class (an input's fault stays its 4xx), and an engine that ends (a native fault in libtorch, a
// JavaScript error, its heap exhausted, a prediction past its deadline, a kill) fails only the predictions
// it held (503, send again) while a new process loads the model. A process, not a worker thread: a native
// fault in a thread ends the whole server. It ends with the server: killed at dispose(), and by itself when
// its message channel closes (the server killed).
import { type ChildProcess, fork } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import type { Logger } from '../log';
import { InputError } from '../predict/errors';
import type { Prediction, PredictOptions } from '../predict/predictor';
import { DecodeWorkerError } from './decode_pool';
import { HttpError } from './http_error';
import { type DecodePoolStats, ENGINE_RETRY_AFTER_S, type EngineState, type ServePredictor } from './predictor_port';
import type { EngineMessage, EngineRequest, EngineStart, EngineTask, RemoteError } from './predictor_child';

const CHILD_FILE = path.join(__dirname, 'predictor_child.js');

/**
 * The server's Node flags, less those that belong to it alone: a test runner's, an inspector's (a second
 * inspector on the same port fails to start), a watcher's. Heap and similar flags carry over.
 */
const childExecArgv = () => process.execArgv.filter((a) => !/^--(test|inspect|watch|experimental-test)/.test(a));

/**
 * Longest one prediction may hold the engine before its process is killed and replaced: a stuck engine would
 * otherwise hold the concurrency slots for good while /health said ready. Far above a prediction's time (under a
 * second; decoding has its own 30 s deadline), as predictions in the process run one after the other.
 */
const ENGINE_DEADLINE_MS = 120_000;

/** After a failed load, the next tries: from 5 s, doubling, at most a minute apart (no traffic needed). */
const RELOAD_FIRST_MS = 5_000;
const RELOAD_MAX_MS = 60_000;

/**
 * Images in flight when the engine ended are suspects for this long, and run alone meanwhile: one alone in the
 * engine at an end after that is refused until then (422 ENGINE_FAULT), or every resend of it would end the
 * engine, and every other client's prediction.
 */
const SUSPECT_MS = 10 * 60_000;

export type ChildPredictor = ServePredictor & {
  /** Predictor.notes of the loaded model (an unfinished run, no heat maps...), for the start-up log. */
  readonly notes: string[];
  /** The process now running the engine (tests end it to see a death handled). */
  readonly child: () => ChildProcess;
};

export function fromRemote(e: RemoteError): Error {
  if (e.kind === 'input') return new InputError(e.code, e.message);
  if (e.kind === 'decode-worker') return new DecodeWorkerError(e.why);
  const err = new Error(e.message);
  if (e.stack) err.stack = e.stack;
  return err;
}

/** Buffers, whatever view of the bytes the channel hands back. */
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
  /** The caller's bytes (held by it until answered anyway): hashed only if the engine ends meanwhile. */
  bytes: Uint8Array;
  deadline: NodeJS.Timeout;
}

type Ready = Extract<EngineMessage, { type: 'ready' }>;

interface Started {
  child: ChildProcess;
  ready: Promise<Ready>;
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

/**
 * Loads the model in a child process and resolves once it is ready (its own load errors, a missing
 * or broken model folder, reject with their message, as Predictor.load's would).
 */
export async function loadChildPredictor(
  dir: string,
  opts: Omit<EngineStart, 'dir'> & {
    log?: Logger;
    /** The first wait before a failed load is tried again (default 5 s; tests shorten it). */
    reloadFirstMs?: number;
  } = {},
): Promise<ChildPredictor> {
  const { log, reloadFirstMs = RELOAD_FIRST_MS, ...start } = opts;
  const pending = new Map<number, Pending>();
  const suspects = new Map<string, { ends: number; at: number }>();
  let nextId = 1;
  const idle: DecodePoolStats = { size: 0, busy: 0, queued: 0, restarts: 0 };
  let stats = idle;
  /** Decode workers the pools of ended engines had replaced: the counter in /metrics only goes up. */
  let decodeRestartsBefore = 0;
  let restarts = 0;
  let disposed = false;
  let state: EngineState = 'restarting';
  /** The one reload after a failed load, which every prediction that finds the failure waits for. */
  let reloading: Promise<void> | null = null;
  let reloadTimer: NodeJS.Timeout | null = null;
  let reloadDelay = reloadFirstMs;

  const spawn = (): Started => {
    // Its own stdin closed; stdout and stderr the server's (libtorch writes its faults there); messages in V8's
    // format, so that bytes cross as bytes, not as JSON arrays of numbers.
    const child = fork(CHILD_FILE, [], {
      execArgv: childExecArgv(),
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let loaded = false;
    let gone = false;
    let settle: { resolve: (m: Ready) => void; reject: (e: Error) => void };
    const ready = new Promise<Ready>((resolve, reject) => {
      settle = { resolve, reject };
    });
    ready.catch(() => {}); // read by whoever waits for it, and logged by whoever started it
    child.on('message', (m: EngineMessage) => {
      if (m.type === 'ready') {
        loaded = true;
        stats = m.stats;
        settle.resolve(m);
        if (child === current.child) {
          state = 'ready';
          // Ref'd while it loads (a prediction may be waiting for it), then only while it has work.
          refIfBusy();
        }
      } else if (m.type === 'failed') {
        if (child === current.child) state = 'unavailable';
        settle.reject(fromRemote(m.error));
        child.kill('SIGKILL');
      } else if (m.type === 'stats') {
        if (child === current.child) stats = m.stats;
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
    // A process that ends before its model loaded fails that load (no new process at once: it would fail
    // alike; reloads follow on a timer); one that ends later is a death, replaced at once.
    const ended = (why: string) => {
      if (gone) return;
      gone = true;
      if (loaded) return died(child, why);
      if (child === current.child) state = 'unavailable';
      settle.reject(new Error(`the prediction engine stopped while loading the model (${why})`));
    };
    // 'error': it could not be started (no pid: no 'exit' follows), or not be sent to (its channel closed, as it
    // ended: 'exit' follows and says how, so a kill of the living, if any, and no report here).
    child.on('error', (e) => {
      if (child.pid === undefined) ended(`could not be started: ${e.message}`);
      else child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => ended(endedBy(code, signal)));
    child.send({ type: 'start', ...start, dir } satisfies EngineRequest);
    return { child, ready };
  };

  let current = spawn();
  // An idle engine must not keep a finished server process alive; one with predictions in flight does.
  const refIfBusy = () => {
    const { child } = current;
    const busy = pending.size > 0;
    if (busy) child.ref();
    else child.unref();
    // The message channel holds the event loop by itself.
    const channel = child.channel as { ref(): void; unref(): void } | null | undefined;
    if (busy) channel?.ref();
    else channel?.unref();
  };

  /** A new process in place of the current one; its load is logged, and a failed one tried again on a timer. */
  const replace = (): Started => {
    current = spawn();
    state = 'restarting';
    stats = idle;
    const started = current;
    started.ready.then(
      () => {
        reloadDelay = reloadFirstMs;
        log?.info('the prediction engine is running again');
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

  const died = (child: ChildProcess, why: string) => {
    if (disposed || child !== current.child) return;
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
    // An end counts against an image only where it was alone in the engine; images in flight together become
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
      `the prediction engine stopped (${why}); starting a new one`,
    );
    replace();
  };

  /** The suspect entry of `hash` while it is fresh (SUSPECT_MS); older ones are forgotten. */
  const suspectOf = (hash: string) => {
    const now = Date.now();
    for (const [h, x] of suspects) if (now - x.at > SUSPECT_MS) suspects.delete(h);
    return suspects.get(hash);
  };

  /** Resolves when no prediction is in the engine (a suspect waits for that, then runs alone). */
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
    current.child.kill('SIGKILL');
    throw e;
  }

  /** The engine once it has loaded; a process replaced while it was awaited hands over to its successor. */
  const readyChild = async (): Promise<ChildProcess> => {
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
      if (started === current) return started.child;
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
    const child = await readyChild();
    return new Promise<Prediction>((resolve, reject) => {
      const id = nextId++;
      // Answered and replaced at once, and the process killed: SIGKILL stops native code that is stuck too.
      const deadline = setTimeout(() => {
        if (child !== current.child) return;
        died(child, `a prediction ran past ${ENGINE_DEADLINE_MS / 1000} s`);
        child.kill('SIGKILL');
      }, ENGINE_DEADLINE_MS);
      deadline.unref();
      pending.set(id, { resolve, reject, bytes, deadline });
      refIfBusy();
      const task = { type: 'task', id, op, bytes, opts: o } satisfies EngineRequest;
      // A task that cannot be written (one that does not clone) is its own error; a closed channel is the
      // process's end, which 'exit' reports for every prediction it held.
      try {
        child.send(task);
      } catch (e) {
        if (!pending.delete(id)) return;
        clearTimeout(deadline);
        refIfBusy();
        drainedNow();
        reject(e);
      }
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
    child: () => current.child,
    dispose: () => {
      disposed = true;
      if (reloadTimer) clearTimeout(reloadTimer);
      for (const p of pending.values()) {
        clearTimeout(p.deadline);
        p.reject(new Error('the predictor was closed'));
      }
      pending.clear();
      current.child.kill('SIGKILL');
    },
  };
}
