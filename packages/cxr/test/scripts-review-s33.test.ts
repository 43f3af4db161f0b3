// Review of scripts/ (s33): the test runner's counting (scripts/run-tests.js at the repo root).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO } from './stack-fixture';

test('a passing suite whose output says "N failed" (a CLI summary a test printed) counts no failure', () => {
  // A copy of the runner in a throwaway root whose only cxr test passes after printing such a summary line.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 's33-run-tests-'));
  try {
    fs.mkdirSync(path.join(root, 'scripts'));
    for (const f of ['run-tests.js', 'leftover-processes.js', 'test-times-reporter.mjs']) {
      fs.copyFileSync(path.join(REPO, 'scripts', f), path.join(root, 'scripts', f));
    }
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(root, 'node_modules'));
    const tests = path.join(root, 'packages', 'cxr', 'dist', 'test');
    fs.mkdirSync(tests, { recursive: true });
    fs.writeFileSync(
      path.join(tests, 'summary.test.js'),
      "require('node:test').test('prints a batch summary', () => { console.log('2 predicted, 3 failed'); });\n",
    );
    // Its own TMPDIR: the copy's leftover check then looks at nothing of this machine's other test runs.
    const tmp = path.join(root, 'tmp');
    fs.mkdirSync(tmp);
    // Without node:test's own context variable, which would make the copy's `node --test` skip its files.
    const { CXR_TEST_RUN: _, NODE_TEST_CONTEXT: __, ...env } = process.env;
    const r = spawnSync('node', ['scripts/run-tests.js', 'cxr'], {
      cwd: root,
      env: { ...env, TMPDIR: tmp },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.match(r.stdout, /^--- cxr: 1 passed, 0 failed \(exit 0\), \d+ min \d+ s$/m, r.stdout + r.stderr);
    assert.match(r.stdout, /\n2 passed, 0 failed\n$/, 'the test and the leftover check');
    assert.equal(r.status, 0);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
