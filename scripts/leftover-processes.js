// Processes the tests started and left running (a server, an engine, a browser, a stack service). The runner
// ends each test file's process as soon as its tests have (--test-force-exit), so a child a test forgot would
// otherwise outlive it unseen; this finds them from /proc (Linux; elsewhere it finds none).
'use strict';
const fs = require('node:fs');
const os = require('node:os');

/** The pids running now. */
function pids() {
  if (!fs.existsSync('/proc/self/stat')) return [];
  return fs
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

/** Parent, command line and environment of a process, or null when it is gone or a zombie. */
function proc(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ": state, ppid, ...; comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z') return null;
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    let environ = [];
    try {
      environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    } catch {
      // another user's process: its command line still tells
    }
    return { pid, ppid: Number(fields[1]), cmdline, environ };
  } catch {
    return null;
  }
}

/** The runner's own ancestry (itself, its parents): never leftovers. */
function ancestors() {
  const seen = new Set();
  for (let p = process.pid; p > 1 && !seen.has(p); ) {
    seen.add(p);
    const info = proc(p);
    if (!info) break;
    p = info.ppid;
  }
  return seen;
}

/**
 * The processes alive now that were not at `before` (a set of pids) and belong to the tests: they inherited
 * `marker` (NAME=value, set in the suites' environment), or name the repository or a test's temporary folder
 * (`<tmp>/cxr-*`, where the stack's services run) for a child given an environment of its own.
 */
function leftovers(before, root, marker) {
  const mine = ancestors();
  const tmp = `${os.tmpdir()}/cxr-`;
  return pids()
    .filter((p) => !before.has(p) && !mine.has(p))
    .map(proc)
    .filter((p) => p && (p.environ.includes(marker) || p.cmdline.includes(root) || p.cmdline.includes(tmp)))
    .map(({ pid, cmdline }) => ({ pid, cmdline }));
}

module.exports = { pids, leftovers };
