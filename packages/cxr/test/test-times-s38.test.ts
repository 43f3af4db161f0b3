// scripts/test-times-reporter.mjs, which run-tests.js puts beside TAP: each test file's wall time, slowest first,
// written even though --test-force-exit ends the run before a reporter's stream would be flushed.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const REPORTER = path.join(__dirname, '..', '..', '..', '..', 'scripts', 'test-times-reporter.mjs');

/** A test file whose one test waits `ms` before it passes, and whose import waits `importMs` first. */
function waitingTest(dir: string, name: string, ms: number, importMs = 0): string {
  const file = path.join(dir, name);
  fs.writeFileSync(
    file,
    `const { test } = require('node:test');\n` +
      `const t = Date.now(); while (Date.now() - t < ${importMs}) {}\n` +
      `test('waits', () => new Promise((r) => setTimeout(r, ${ms})));\n`,
  );
  return file;
}

test('the times reporter names each file with its wall time, imports included, slowest first, under force-exit', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-test-times-'));
  try {
    waitingTest(dir, 'quick.test.js', 50);
    // Its test is quick, its import slow: a file's time counts what its tests' durations leave out.
    waitingTest(dir, 'slow-import.test.js', 10, 1200);
    waitingTest(dir, 'slow.test.js', 700);
    const out = path.join(dir, 'times.txt');
    // Without NODE_TEST_CONTEXT, which would make this run report to the runner of this file instead.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const r = spawnSync(
      process.execPath,
      [
        '--test',
        '--test-concurrency=1',
        '--test-force-exit',
        '--test-reporter=tap',
        '--test-reporter-destination=stdout',
        `--test-reporter=${REPORTER}`,
        '--test-reporter-destination=stderr',
        'quick.test.js',
        'slow-import.test.js',
        'slow.test.js',
      ],
      { cwd: dir, encoding: 'utf8', env: { ...env, CXR_TEST_TIMES_FILE: out } },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.includes('# pass 3'), 'TAP still on stdout');
    const rows = fs
      .readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' '));
    assert.deepEqual(
      rows.map((x) => x[1]),
      ['slow-import.test.js', 'slow.test.js', 'quick.test.js'],
      JSON.stringify(rows),
    );
    assert.ok(Number(rows[0][0]) >= 1.2 && Number(rows[1][0]) >= 0.7, JSON.stringify(rows));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
