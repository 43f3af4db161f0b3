// What tests that drive `cxr` as a child process share: starting it (so that it can be killed mid-way,
// as a user's Ctrl-C or an OOM kill would) and reading the per-epoch log a run writes.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const CLI = path.resolve(__dirname, '..', 'src', 'cli', 'main.js');

export interface CliChild {
  child: ChildProcess;
  /** The exit code (null when killed by a signal). */
  done: Promise<number | null>;
  /** Everything written to stderr so far. */
  stderr(): string;
}

/** Starts `cxr ARGS` with stdout ignored and stderr collected. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = process.env): CliChild {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const done = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, done, stderr: () => stderr };
}

/** The entries of a run folder's `log.jsonl` (train/loop.ts, the GAN's loop). */
// biome-ignore lint/suspicious/noExplicitAny: a test reads whichever fields it asserts on.
export function readRunLog(dir: string): any[] {
  return fs
    .readFileSync(path.join(dir, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}
