// Ending the server's engine process (serve/predictor_process.ts) while it still owes a reply. A test that sees
// the engine start on an upload and then kills it assumed the engine was still at work; but a decode and a
// prediction take a few hundred milliseconds, and a test process descheduled for that long (a loaded CI machine)
// sent its signal after the reply, which then answered the upload instead of failing it. Here the engine is
// stopped first (SIGSTOP), what it wrote before it stopped is read, and the signal goes only if no reply came;
// otherwise the work is done and sent again.
import type { ChildProcess } from 'node:child_process';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const turn = () => new Promise((r) => setImmediate(r));

/**
 * Resolves once the process `pid` is stopped (its state 't' or 'T' in /proc), or gone. The state read is the main
 * thread's (/proc/<pid>/stat is the thread group leader's): SIGSTOP stops every thread of the process, and the
 * main thread is the only one that replies (process.send in src/serve/predictor_child.ts; the decode pool's
 * worker threads answer the main thread, never the server), so once it is stopped no reply can leave. Linux
 * only: without /proc the guarantee cannot be checked, and the fixture fails rather than go on without it.
 */
export async function stopped(pid: number): Promise<void> {
  assert.ok(fs.existsSync('/proc/self/stat'), 'engine-kill-fixture needs /proc (Linux) to see a process stopped');
  for (const end = Date.now() + 10_000; ; await sleep(1)) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ESRCH') return;
      throw e;
    }
    // The state is the field after "(comm)", which may hold spaces.
    if (/^[tTZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3))) return;
    assert.ok(Date.now() < end, `the engine process ${pid} did not stop`);
  }
}

/**
 * Starts `work` (its promise must not reject: catch into a value), waits for `begun` (the engine at it), then ends
 * the engine process with `signal` while the reply is still owed, and returns the work's promise. When the engine
 * replied before it could be stopped, the work is awaited and started again (at most `tries` times): a stopped
 * process cannot reply, and a signal sent to it acts as it resumes (SIGCONT), before any code of its own runs.
 */
export async function endMidWork<T>(
  engine: () => ChildProcess,
  work: () => Promise<T>,
  begun: () => Promise<void>,
  signal: NodeJS.Signals,
  tries = 5,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const child = engine();
    let replies = 0;
    const count = (m: { type?: string }) => {
      if (m?.type === 'reply') replies++;
    };
    child.on('message', count);
    const pending = work();
    try {
      await begun();
      assert.equal(engine(), child, 'the engine process changed while the work began');
      child.kill('SIGSTOP');
      try {
        await stopped(child.pid!);
        // What it wrote before it stopped is read and handled: a pause, then turns of the event loop, each of
        // which polls the channel (a reply cut short by the stop is no reply).
        await sleep(50);
        for (let i = 0; i < 10; i++) await turn();
      } catch (e) {
        // A failure here must not leave the engine frozen for the tests after it: resumed, then thrown.
        child.kill('SIGCONT');
        throw e;
      }
    } finally {
      child.off('message', count);
    }
    if (replies === 0) {
      child.kill(signal);
      child.kill('SIGCONT');
      return pending;
    }
    child.kill('SIGCONT');
    await pending;
    assert.ok(attempt < tries, `the engine replied each of ${tries} times before it could be ended`);
  }
}
