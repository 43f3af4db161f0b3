#!/usr/bin/env node
// Runs the test suites one after another and prints one combined `N passed, M failed` line.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { leftovers, pids } = require('./leftover-processes');

const root = path.join(__dirname, '..');
// --test-force-exit: a file's process ends once its tests and after-hooks have, not when a test's
// Promise.race timer or an idle keep-alive socket lets go (up to 25 s a file). What must stop, a test stops
// itself: after the suites, a process they left running fails the run (leftover-processes.js).
// Beside TAP on stdout, test-times-reporter.mjs writes each test file's wall time to a file, read after the suite;
// CXR_TEST_TIMES_DIR=DIR keeps every suite's whole list there (DIR/<suite>.txt).
// Two test files at a time: most of the cxr suite's time is waiting (a server starting, a service stopped, a
// timer), not computing, so a 2-core machine runs two files in about the time of one. Every file uses its own
// temporary folders, ports (the kernel's pick) and services (scripts/stack.sh in its own folder), so files do not
// meet. CXR_TEST_CONCURRENCY=1 runs them one at a time (to tell a flaky file from load, say).
const concurrency = process.env.CXR_TEST_CONCURRENCY || '2';
const nodeTest = ['node', '--test', `--test-concurrency=${concurrency}`, '--test-force-exit', '--test-reporter=tap'];
nodeTest.push(
  '--test-reporter-destination=stdout',
  `--test-reporter=${path.join(__dirname, 'test-times-reporter.mjs')}`,
  '--test-reporter-destination=stderr',
);
/** How many of a suite's slowest test files are named after it: where to look when CI nears its 30 minutes. */
const SLOWEST_SHOWN = 12;
const suites = [
  {
    name: 'backend-aten unit',
    cwd: 'packages/backend-aten',
    cmd: [...nodeTest, 'dist/test/'],
  },
  { name: 'tfjs-core conformance on aten', cwd: 'packages/backend-aten', cmd: ['node', 'test/conformance/run.js'] },
  { name: 'cxr', cwd: 'packages/cxr', cmd: [...nodeTest, 'dist/test/'] },
];
// Guard-rails run first and count one passed or failed each, so a lint, width, layering, engines or type
// error fails the run (and CI) like a failing test does.
const tsc = require.resolve('typescript/bin/tsc');
const checks = [
  {
    name: 'lint and format (biome check)',
    cwd: '.',
    cmd: ['node', require.resolve('@biomejs/biome/bin/biome'), 'check', '--max-diagnostics=50'],
  },
  { name: 'line width', cwd: '.', cmd: ['node', 'scripts/check-line-width.js'] },
  { name: 'layers', cwd: 'packages/cxr', cmd: ['node', 'scripts/check-layers.js'] },
  { name: 'dependency engines (claimed Node versions)', cwd: '.', cmd: ['node', 'scripts/check-engines.js'] },
  { name: 'typecheck backend-aten', cwd: '.', cmd: ['node', tsc, '-p', 'packages/backend-aten', '--noEmit'] },
  { name: 'typecheck cxr', cwd: '.', cmd: ['node', tsc, '-p', 'packages/cxr', '--noEmit'] },
  { name: 'typecheck web client', cwd: '.', cmd: ['node', tsc, '-p', 'packages/cxr/src/web/client/tsconfig.json'] },
];
const only = process.argv[2];

let passed = 0,
  failed = 0,
  skipped = 0;
if (!only || 'guard-rails'.includes(only)) {
  console.log('\n=== guard-rails ===');
  let p = 0,
    f = 0;
  for (const c of checks) {
    const r = spawnSync(c.cmd[0], c.cmd.slice(1), {
      cwd: path.join(root, c.cwd),
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    });
    if (r.status === 0) p++;
    else {
      f++;
      const out = (r.stdout || '') + (r.stderr || '') + (r.error ? String(r.error) : '');
      process.stdout.write(out.length > 8000 ? out.slice(-8000) : out);
    }
    console.log(`${r.status === 0 ? 'ok' : 'FAILED'}  ${c.name}`);
  }
  passed += p;
  failed += f;
  console.log(`--- guard-rails: ${p} passed, ${f} failed`);
}
const before = new Set(pids());
// Inherited by whatever the suites start: how leftover-processes.js tells this run's processes.
const runId = `${process.pid}-${Date.now()}`;
const marker = `CXR_TEST_RUN=${runId}`;
const env = { ...process.env, CXR_TEST_RUN: runId };
let ranSuites = false;
for (const s of suites) {
  if (only && !s.name.includes(only)) continue;
  ranSuites = true;
  console.log(`\n=== ${s.name} ===`);
  const times = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-test-times-')), 'times.txt');
  const t0 = Date.now();
  const r = spawnSync(s.cmd[0], s.cmd.slice(1), {
    cwd: path.join(root, s.cwd),
    env: { ...env, CXR_TEST_TIMES_FILE: times },
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  const out = (r.stdout || '') + (r.stderr || '');
  process.stdout.write(out.length > 20000 ? out.slice(-20000) : out);
  // The tail above may not reach back to a failure: repeat each failing test's report in full.
  const failures = failureReports(out);
  if (failures.length) console.log(`\n--- ${s.name}: the failing tests\n${failures.join('\n')}`);
  // null when the output has no such line: a count of 0 must not fall back to the other format's pattern, which
  // would then read a test's own printed output (a CLI's "2 predicted, 3 failed", echoed as a TAP comment).
  const num = (re) => {
    const m = out.match(re);
    return m ? Number(m[m.length - 1].match(/\d+/)[0]) : null;
  };
  // node --test prints "# pass N" / "# fail N" / "# skipped N"; the conformance runner prints "N passed, M failed".
  const p = num(/^# pass \d+$/gm) ?? num(/^\d+ passed/gm) ?? 0;
  const f = num(/^# fail \d+$/gm) ?? num(/\d+ failed/gm) ?? 0;
  const k = num(/^# skipped \d+$/gm) ?? 0;
  passed += p;
  skipped += k;
  failed += f || (r.status !== 0 ? 1 : 0);
  console.log(`--- ${s.name}: ${p} passed, ${f} failed (exit ${r.status}), ${minutes(Date.now() - t0)}`);
  const slowest = fs.existsSync(times) ? fs.readFileSync(times, 'utf8').trim().split('\n').filter(Boolean) : [];
  if (slowest.length) console.log(`    slowest files (s): ${slowest.slice(0, SLOWEST_SHOWN).join(', ')}`);
  const keep = process.env.CXR_TEST_TIMES_DIR;
  if (keep && fs.existsSync(times))
    fs.copyFileSync(times, path.join(keep, `${s.name.replace(/[^a-z0-9]+/gi, '-')}.txt`));
  fs.rmSync(path.dirname(times), { recursive: true, force: true });
}
if (ranSuites) {
  // What stops on its own (a service's clean shutdown) gets a few seconds; what is left then is a leak.
  let left = leftovers(before, root, marker);
  for (let i = 0; i < 50 && left.length; i++) {
    spawnSync('sleep', ['0.1']);
    left = leftovers(before, root, marker);
  }
  console.log(`\n=== processes left behind ===\n${left.map((p) => `${p.pid} ${p.cmdline}`).join('\n') || 'none'}`);
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  if (left.length) failed++;
  else passed++;
}
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);

/** "12 min 5 s". */
function minutes(ms) {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** Each `not ok` block of node:test's TAP output: the line and its indented YAML report (error, stack). */
function failureReports(out) {
  const lines = out.split('\n');
  const reports = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)not ok /.exec(lines[i]);
    if (!m) continue;
    const block = [lines[i]];
    const indent = m[1].length;
    for (let j = i + 1; j < lines.length && j < i + 80; j++) {
      const l = lines[j];
      const own = l.length - l.trimStart().length;
      if (l.trim() !== '' && own <= indent && !l.trimStart().startsWith('---') && !l.trimStart().startsWith('...')) {
        break;
      }
      block.push(l);
    }
    reports.push(block.join('\n'));
  }
  return reports;
}
process.exit(failed ? 1 : 0);
