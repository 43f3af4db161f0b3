// Runs a `cxr` command in the test's own process (its module's register() on a fresh program) and keeps what it
// writes, for the tests that read a command's text without the cost of a child process and its engine start.
import { Command, CommanderError } from 'commander';
import { z } from 'zod';

type Register = (program: Command) => void;

/** Runs `work` with the strings written to stdout and stderr kept (the test runner's own reports pass). */
async function capturing(work: (out: { stdout: string; stderr: string }) => Promise<void>) {
  const kept = { stdout: '', stderr: '' };
  const [out, err] = [process.stdout.write, process.stderr.write];
  // Only the command's text: the test runner's own (binary) reports pass through.
  const capture = (into: (s: string) => void, write: typeof out, stream: NodeJS.WriteStream) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      if (typeof chunk !== 'string') return (write as (...a: unknown[]) => boolean).call(stream, chunk, ...rest);
      into(chunk);
      return true;
    }) as typeof out;
  process.stdout.write = capture((s) => (kept.stdout += s), out, process.stdout);
  process.stderr.write = capture((s) => (kept.stderr += s), err, process.stderr);
  try {
    await work(kept);
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  return kept;
}

const program = (registers: Register[]) => {
  const cxr = new Command('cxr').exitOverride();
  for (const register of registers) register(cxr);
  return cxr;
};

/** `cxr ARGV` with the commands `registers` adds: its stdout and stderr (the test runner's own reports pass). */
export async function runInProcess(registers: Register[], argv: string[]): Promise<{ stdout: string; stderr: string }> {
  return capturing(async () => {
    await program(registers).parseAsync(argv, { from: 'user' });
  });
}

/**
 * `cxr ARGV` as main.js runs it, in this process: a command that throws has status 1 and `cxr: MESSAGE` at the
 * end of its stderr (main.js's error handler, which tests of that handler run as a child process); otherwise
 * the exit code it set, or 0. Whatever it wrote before is kept either way. `env` is set over process.env for
 * the command's run (undefined: unset), as a child's environment would be, and put back after.
 */
export async function runLikeMain(
  registers: Register[],
  argv: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ status: number; stdout: string; stderr: string }> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const set = (values: NodeJS.ProcessEnv) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  set(env);
  try {
    return await likeMain(registers, argv);
  } finally {
    set(saved);
  }
}

async function likeMain(registers: Register[], argv: string[]) {
  let status = 0;
  // The command's exit code is its own, and must not become the test file's.
  const exitCodeBefore = process.exitCode;
  process.exitCode = undefined;
  const kept = await capturing(async (so) => {
    try {
      await program(registers).parseAsync(argv, { from: 'user' });
      status = Number(process.exitCode ?? 0);
    } catch (e) {
      // An option commander refused: it wrote its own `error: ...` line already, and exits as under main.js.
      if (e instanceof CommanderError) {
        status = e.exitCode;
        return;
      }
      status = 1;
      const message = e instanceof z.ZodError ? z.prettifyError(e) : e instanceof Error ? e.message : String(e);
      so.stderr += `cxr: ${message}\n`;
    } finally {
      process.exitCode = exitCodeBefore;
    }
  });
  return { status, ...kept };
}
