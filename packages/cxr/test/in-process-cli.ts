// Runs a `cxr` command in the test's own process (its module's register() on a fresh program) and keeps what it
// writes, for the tests that read a command's text without the cost of a child process and its engine start.
import { Command } from 'commander';

/** `cxr ARGV` with the commands `registers` adds: its stdout and stderr (the test runner's own reports pass). */
export async function runInProcess(
  registers: ((program: Command) => void)[],
  argv: string[],
): Promise<{ stdout: string; stderr: string }> {
  const program = new Command('cxr').exitOverride();
  for (const register of registers) register(program);
  let stdout = '';
  let stderr = '';
  const [out, err] = [process.stdout.write, process.stderr.write];
  // Only the command's text: the test runner's own (binary) reports pass through.
  const capture = (into: (s: string) => void, write: typeof out, stream: NodeJS.WriteStream) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      if (typeof chunk !== 'string') return (write as (...a: unknown[]) => boolean).call(stream, chunk, ...rest);
      into(chunk);
      return true;
    }) as typeof out;
  process.stdout.write = capture((s) => (stdout += s), out, process.stdout);
  process.stderr.write = capture((s) => (stderr += s), err, process.stderr);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  return { stdout, stderr };
}
