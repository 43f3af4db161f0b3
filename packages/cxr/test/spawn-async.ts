// spawnSync's answer without blocking the test's process: tests whose subject is a program of its own (tsc, a
// fresh `node -e`) start theirs side by side, so that a file of them takes about the time of its longest.
import { spawn, type SpawnOptions } from 'node:child_process';

export interface Ended {
  /** The exit code; null when the process was ended by a signal (the timeout's SIGTERM among them). */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Set when the process could not be started. */
  error?: Error;
}

/** Runs `command ARGS` to its end, as spawnSync does: `timeout` ms, then SIGTERM (status null). */
export function spawnAsync(
  command: string,
  args: string[],
  // encoding as spawnSync takes it: the text is always read as UTF-8.
  options: Omit<SpawnOptions, 'stdio'> & { timeout?: number; encoding?: 'utf8' } = {},
): Promise<Ended> {
  return new Promise((resolve) => {
    const { encoding: _utf8, ...spawnOptions } = options;
    const child = spawn(command, args, { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'] });
    const ended: Ended = { status: null, signal: null, stdout: '', stderr: '' };
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (ended.stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (ended.stderr += d));
    // Not started (no such program): no 'close' may follow.
    child.on('error', (e) => resolve({ ...ended, error: e }));
    child.on('close', (status, signal) => resolve({ ...ended, status, signal }));
  });
}
