// One engine process of the server's predictor (predictor_process.ts): forks predictor_child.js, sends it the
// model to load (at once, or after a delay when engines keep ending), and reports its load, its messages and its
// end. Which engine is the current one, and what its end means for the predictions it held, is decided there.
import { type ChildProcess, fork } from 'node:child_process';
import * as path from 'node:path';
import { type EngineMessage, type EngineRequest, type EngineStart, endedBy, fromRemote } from './engine_protocol';

const CHILD_FILE = path.join(__dirname, 'predictor_child.js');

/** Longest a new engine may take to load the model before it is killed (a load takes seconds). */
export const LOAD_DEADLINE_MS = 120_000;

/**
 * The server's Node flags, less those that belong to it alone: a test runner's, an inspector's (a second
 * inspector on the same port fails to start), a watcher's. Heap and similar flags carry over.
 */
export function childExecArgv(execArgv: readonly string[] = process.execArgv): string[] {
  const own = /^--(test|inspect|watch|experimental-test)/;
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i];
    if (!own.test(a)) out.push(a);
    // Its value as the next word (`--test-name-pattern x`): execArgv holds Node's options alone, so a word that is
    // no option is a value. Left in, the engine took it for its script and exited at load.
    else if (!a.includes('=') && i + 1 < execArgv.length && !execArgv[i + 1].startsWith('-')) i++;
  }
  return out;
}

export type Ready = Extract<EngineMessage, { type: 'ready' }>;

export interface EngineHooks {
  /** Its model loaded (also the resolution of `ready`). */
  onReady(m: Ready): void;
  /** Its load failed or it ended while loading (also the rejection of `ready`). */
  onLoadFailed(): void;
  /** Decode-pool state, warnings and replies, once loaded. */
  onMessage(m: Exclude<EngineMessage, { type: 'ready' | 'failed' }>): void;
  /** It ended after it had loaded, `readyAt` (ms since the epoch) being when it had. */
  onDeath(why: string, readyAt: number): void;
}

export interface EngineProcess {
  child: ChildProcess;
  ready: Promise<Ready>;
  /** Stops its timers (a delayed start, the load deadline): the predictor is closed. */
  cancel: () => void;
}

export function startEngine(
  start: EngineStart,
  o: { delayMs: number; loadDeadlineMs: number },
  hooks: EngineHooks,
): EngineProcess {
  // Its own stdin closed; stdout and stderr the server's (libtorch writes its faults there); messages in V8's
  // format, so that bytes cross as bytes, not as JSON arrays of numbers.
  const child = fork(CHILD_FILE, [], {
    execArgv: childExecArgv(),
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let loaded = false;
  let readyAt = 0;
  let gone = false;
  let startTimer: NodeJS.Timeout | undefined;
  let loadDeadline: NodeJS.Timeout | undefined;
  const cancel = () => {
    clearTimeout(startTimer);
    clearTimeout(loadDeadline);
  };
  let settle: { resolve: (m: Ready) => void; reject: (e: Error) => void };
  const ready = new Promise<Ready>((resolve, reject) => {
    settle = { resolve, reject };
  });
  ready.catch(() => {}); // read by whoever waits for it, and logged by whoever started it
  child.on('message', (m: EngineMessage) => {
    if (m.type === 'ready') {
      clearTimeout(loadDeadline);
      loaded = true;
      readyAt = Date.now();
      settle.resolve(m);
      hooks.onReady(m);
    } else if (m.type === 'failed') {
      clearTimeout(loadDeadline);
      hooks.onLoadFailed();
      settle.reject(fromRemote(m.error));
      child.kill('SIGKILL');
    } else hooks.onMessage(m);
  });
  // A process that ends before its model loaded fails that load; one that ends later is a death.
  const ended = (why: string) => {
    if (gone) return;
    gone = true;
    cancel();
    if (loaded) return hooks.onDeath(why, readyAt);
    hooks.onLoadFailed();
    settle.reject(new Error(`the prediction engine stopped while loading the model (${why})`));
  };
  // 'error': it could not be started (no pid: no 'exit' follows), or not be sent to (its channel closed, as it
  // ended: 'exit' follows and says how, so a kill of the living, if any, and no report here).
  child.on('error', (e) => {
    if (child.pid === undefined) ended(`could not be started: ${e.message}`);
    else child.kill('SIGKILL');
  });
  child.on('exit', (code, signal) => ended(endedBy(code, signal)));
  // The load has a deadline: an engine stuck while loading would leave every prediction waiting for good.
  const begin = () => {
    child.send({ type: 'start', ...start } satisfies EngineRequest);
    loadDeadline = setTimeout(() => {
      ended(`it did not load the model within ${o.loadDeadlineMs / 1000} s`);
      child.kill('SIGKILL');
    }, o.loadDeadlineMs);
  };
  if (o.delayMs) startTimer = setTimeout(begin, o.delayMs);
  else begin();
  return { child, ready, cancel };
}
