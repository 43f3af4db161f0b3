// A node:test reporter beside TAP (run-tests.js): the wall time of each test file, so that the slowest files are named
// when the suite nears CI's 30 minutes. Files run one at a time (--test-concurrency=1): a file's time runs from the
// previous file's last report to its own last one, its process start and imports included, which its tests'
// duration_ms leave out. It writes "SECONDS FILE" lines, slowest first, to the file CXR_TEST_TIMES_FILE names, itself
// and synchronously after each report: --test-force-exit ends the run before a reporter's own stream is flushed.
import * as fs from 'node:fs';
import * as path from 'node:path';

export default async function* fileTimes(source) {
  const out = process.env.CXR_TEST_TIMES_FILE;
  const times = new Map();
  let last = Date.now();
  for await (const event of source) {
    const file = event.data?.file;
    if (!out || !file || (event.type !== 'test:pass' && event.type !== 'test:fail')) continue;
    const now = Date.now();
    times.set(file, (times.get(file) ?? 0) + (now - last));
    last = now;
    const rows = [...times].sort((a, b) => b[1] - a[1]);
    fs.writeFileSync(out, rows.map(([f, ms]) => `${(ms / 1000).toFixed(1)} ${path.relative(process.cwd(), f)}\n`).join(''));
  }
  yield* [];
}
