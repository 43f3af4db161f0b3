// The test runner's check for processes the tests left running (scripts/leftover-processes.js at the repo
// root): it runs each file with --test-force-exit, so a server or engine a test forgot would outlive it unseen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO } from './stack-fixture';

const { leftovers, pids } = require(path.join(REPO, 'scripts', 'leftover-processes.js')) as {
  leftovers: (before: Set<number>, root: string, marker: string) => { pid: number; cmdline: string }[];
  pids: () => number[];
};

test("a process started since, with the run's marker or in a test's folder, is a leftover; others are not", {
  skip: fs.existsSync('/proc/self/stat') ? false : 'needs /proc (Linux)',
}, async (t) => {
  const before = new Set(pids());
  const marker = `CXR_TEST_RUN=leftover-${process.pid}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-leftover-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const start = (env: NodeJS.ProcessEnv, name = 'sh') => {
    // A detached child in its own session, as a stack service or an orphaned server would be; `name` is its
    // $0, so in its command line.
    const c = spawn('sh', ['-c', 'sleep 60; true', name], { env, detached: true, stdio: 'ignore' });
    c.unref();
    t.after(() => {
      try {
        process.kill(-c.pid!, 'SIGKILL'); // its group: the shell and its sleep
      } catch {
        // already gone
      }
    });
    return c.pid!;
  };
  const { CXR_TEST_RUN: _, ...clean } = process.env;
  const marked = start({ ...clean, CXR_TEST_RUN: marker.split('=')[1] });
  const inFolder = start(clean, path.join(tmp, 'service'));
  const other = start({ ...clean, CXR_TEST_RUN: 'another-run' });
  await new Promise((r) => setTimeout(r, 100)); // until the children have exec'd
  const found = leftovers(before, REPO, marker).map((p) => p.pid);
  assert.ok(found.includes(marked), 'inherited the marker');
  assert.ok(found.includes(inFolder), "names a test's temporary folder");
  assert.ok(!found.includes(other), "another run's marker");
  assert.ok(!found.includes(process.pid), 'never the runner itself');
  assert.deepEqual(leftovers(new Set(pids()), REPO, marker), [], 'none that was running at `before`');
});
