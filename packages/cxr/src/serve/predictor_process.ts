// The server's predictor, run in a child process (predictor_child.ts). In the server's own thread the
// network and Grad-CAM held the event loop for a few hundred milliseconds per film: under 50 parallel
// uploads /health took up to 2 s. Here the server only passes bytes and answers; a prediction's errors keep
// their class (an input's fault stays its 4xx), and an engine that ends (a native fault in libtorch, a
// JavaScript error, its heap exhausted, a prediction past its deadline, a kill) fails only the predictions
// it held (503, send again) while a new process loads the model. A process, not a worker thread: a native
// fault in a thread ends the whole server. It ends with the server: killed at dispose(), and by itself when
// its message channel closes (the server killed).
import type { ChildProcess } from 'node:child_process';
import type { Logger } from '../log';
import type { Prediction, PredictOptions } from '../predict/predictor';
import { type EngineRequest, type EngineStart, type EngineTask, fromRemote, withBuffers } from './engine_protocol';
import { type EngineProcess, LOAD_DEADLINE_MS, type Ready, startEngine } from './engine_process';
import { EngineSuspects, engineFault } from './engine_suspects';
import { HttpError } from './http_error';
import { type DecodePoolStats, ENGINE_RETRY_AFTER_S, type EngineState, type ServePredictor } from './predictor_port';

/**
 * Longest one prediction may hold the engine before its process is killed and replaced: a stuck engine would
 * otherwise hold the concurrency slots for good while /health said ready. Far above a prediction's time (under a
 * second; decoding has its own 30 s deadline), as predictions in the process run one after the other.
 */
const ENGINE_DEADLINE_MS = 120_000;

/** After a failed load, the next tries: from 5 s, doubling, at most a minute apart (no traffic needed). */
const RELOAD_FIRST_MS = 5_000;
const RELOAD_MAX_MS = 60_000;

/** Longest a prediction waits for an engine that is (re)starting, then 503 ENGINE_RESTARTING: send it again. */
const READY_WAIT_MS = 30_000;

/**
 * Engines that end sooner than this after they loaded, twice or more in a row, are replaced after the reload
 * backoff (RELOAD_FIRST_MS doubling), not at once: a crash loop (a fault at each load, an outside kill) would
 * reload back to back. One that lived longer resets the backoff.
 */
const STABLE_MS = 60_000;

export type ChildPredictor = ServePredictor & {
  /** Predictor.notes of the loaded model (an unfinished run, no heat maps...), for the start-up log. */
  readonly notes: string[];
  /** The process now running the engine (tests end it to see a death handled). */
  readonly child: () => ChildProcess;
};

interface Pending {
  resolve: (p: Prediction) => void;
  reject: (e: unknown) => void;
  /** The caller's bytes (held by it until answered anyway): hashed only if the engine ends meanwhile. */
  bytes: Uint8Array;
  op: EngineTask['op'];
  deadline: NodeJS.Timeout;
}

const TOO_LONG = Symbol('too long');

/** `ready`, or a rejection with TOO_LONG after `ms`. */
function readyWithin<T>(ready: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(TOO_LONG), Math.max(0, ms));
  });
  return Promise.race([ready, late]).finally(() => clearTimeout(timer));
}

/**
 * Loads the model in a child process and resolves once it is ready (its own load errors, a missing
 * or broken model folder, reject with their message, as Predictor.load's would).
 */
export async function loadChildPredictor(
  dir: string,
  opts: Omit<EngineStart, 'dir' | 'warmUp'> & {
    log?: Logger;
    /** The first wait before a failed load is tried again (default 5 s; tests shorten it). */
    reloadFirstMs?: number;
    /** How long a load may take (default 120 s; tests shorten it). */
    loadDeadlineMs?: number;
  } = {},
): Promise<ChildPredictor> {
  const { log, reloadFirstMs = RELOAD_FIRST_MS, loadDeadlineMs = LOAD_DEADLINE_MS, ...start } = opts;
  const pending = new Map<number, Pending>();
  const suspects = new EngineSuspects();
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
  /** Engines in a row that ended within STABLE_MS of their load. */
  let quickEnds = 0;

  /** A new engine process, sent its model now or after `delayMs` (a crash loop's backoff). */
  const spawn = (delayMs = 0, warmUp = false): EngineProcess => {
    const engine: EngineProcess = startEngine(
      { ...start, dir, warmUp },
      { delayMs, loadDeadlineMs },
      {
        onReady: (m) => {
          stats = m.stats;
          if (engine !== current) return;
          state = 'ready';
          // Ref'd while it loads (a prediction may be waiting for it), then only while it has work.
          refIfBusy();
        },
        // No new process at once: it would fail alike; reloads follow on a timer (replace).
        onLoadFailed: () => {
          if (engine === current) state = 'unavailable';
        },
        onMessage: (m) => {
          if (m.type === 'stats') {
            // Not while it loads: a restarted engine's warm-up decodes, and the pool reads idle until it is ready.
            if (engine === current && state === 'ready') stats = m.stats;
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
        },
        onDeath: (why, readyAt) => died(engine, why, readyAt),
      },
    );
    return engine;
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
  const replace = (delayMs = 0): EngineProcess => {
    current = spawn(delayMs, true);
    state = 'restarting';
    stats = idle;
    const started = current;
    started.ready.then(
      // The backoff is reset only once an engine has stayed up (died): not by a load that then crashes at once.
      (m) => log?.info({ warmUpMs: m.warmUpMs }, 'the prediction engine is running again'),
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

  const died = (engine: EngineProcess, why: string, readyAt: number) => {
    if (disposed || engine !== current) return;
    const lost = [...pending.values()];
    pending.clear();
    decodeRestartsBefore += stats.restarts;
    const restarting = new HttpError(
      503,
      'ENGINE_RESTARTING',
      `the prediction engine stopped (${why}) and is being restarted: nothing was predicted; send the image again`,
      ENGINE_RETRY_AFTER_S,
    );
    const refused = suspects.blame(lost.map((p) => p.bytes));
    lost.forEach((p, i) => {
      clearTimeout(p.deadline);
      // The server's own warm-up at start: its failure ends the start, and the words are for the operator.
      if (p.op === 'warmUp') p.reject(new Error(`the prediction engine stopped during its warm-up (${why})`));
      else p.reject(refused[i] ? engineFault() : restarting);
    });
    drainedNow();
    restarts++;
    quickEnds = Date.now() - readyAt < STABLE_MS ? quickEnds + 1 : 0;
    const delayMs = quickEnds >= 2 ? reloadDelay : 0;
    reloadDelay = quickEnds >= 2 ? Math.min(RELOAD_MAX_MS, reloadDelay * 2) : reloadFirstMs;
    log?.error(
      { why, lostPredictions: lost.length, refusedImages: refused.filter(Boolean).length },
      delayMs
        ? `the prediction engine stopped (${why}), ${quickEnds} times in a row within a minute of loading; ` +
            `starting a new one in ${delayMs / 1000} s`
        : `the prediction engine stopped (${why}); starting a new one`,
    );
    replace(delayMs);
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

  let model: Ready;
  try {
    model = await current.ready;
  } catch (e) {
    disposed = true;
    current.cancel();
    current.child.kill('SIGKILL');
    throw e;
  }

  /** The engine once it has loaded; a process replaced while it was awaited hands over to its successor. */
  const readyChild = async (): Promise<ChildProcess> => {
    // The usual case, without a timer per request: 'ready' is only ever the state of a current engine that loaded.
    if (state === 'ready') return current.child;
    let tried = false;
    const waitedUntil = Date.now() + READY_WAIT_MS;
    for (;;) {
      const started = current;
      try {
        await readyWithin(started.ready, waitedUntil - Date.now());
      } catch (e) {
        if (e === TOO_LONG) {
          throw new HttpError(
            503,
            'ENGINE_RESTARTING',
            'the prediction engine is restarting and not ready yet: nothing was predicted; send the image again',
            ENGINE_RETRY_AFTER_S,
          );
        }
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
    if (disposed) throw new Error('the predictor was closed');
    const suspect = suspects.of(bytes);
    if (suspect === 'refused') throw engineFault();
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
    if (disposed) throw new Error('the predictor was closed');
    return new Promise<Prediction>((resolve, reject) => {
      const id = nextId++;
      // Answered and replaced at once, and the process killed: SIGKILL stops native code that is stuck too.
      const deadline = setTimeout(() => {
        if (child !== current.child) return;
        died(current, `a prediction ran past ${ENGINE_DEADLINE_MS / 1000} s`, 0);
        child.kill('SIGKILL');
      }, ENGINE_DEADLINE_MS);
      deadline.unref();
      pending.set(id, { resolve, reject, bytes, op, deadline });
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
      // A suspect waiting for the engine to drain goes on, and finds the predictor closed.
      drainedNow();
      current.cancel();
      current.child.kill('SIGKILL');
    },
  };
}
