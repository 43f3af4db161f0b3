// Films per second of the queue path (`cxr enqueue` + 2 `cxr worker`s on Redis) beside `cxr predict`
// on the same files, in the same run. `cxr predict` is timed end to end (process start, model load,
// audit log); the queue twice: cold (the workers start with the clock) and warm (the workers are
// already running, as in a deployment, and the clock runs from `cxr enqueue` to the last result).
// Medians over --runs of each, and of the per-run ratios to `cxr predict`.
//
//   node bench/archive/run.js [--runs 5] [--model DIR] [--workers 2] [--concurrency 2 (jobs per worker)]
'use strict';
require('../args').checkArgs(
  'usage: node bench/archive/run.js [--runs 5] [--model DIR] [--workers 2] [--concurrency 2]',
  { values: ['--runs', '--model', '--workers', '--concurrency'], flags: [] },
);
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'packages', 'cxr', 'dist', 'src', 'cli', 'main.js');
// The data beside the checkout (../shared/data), or CXR_DATA, as in the tests.
const SHARED = process.env.CXR_DATA ?? path.resolve(ROOT, '..', 'shared', 'data');
const opt = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const RUNS = Number(opt('runs', 5));
const WORKERS = Number(opt('workers', 2));
const PER_WORKER = opt('concurrency', '2');
const MODEL = path.resolve(opt('model', path.join(ROOT, 'models', 'default')));
const INPUTS = [path.join(SHARED, 'dicom-samples'), path.join(SHARED, 'samples-fullres')];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-bench-archive-'));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function stack(cmd) {
  const r = spawnSync(path.join(ROOT, 'scripts', 'stack.sh'), [cmd, 'redis'], {
    encoding: 'utf8',
    env: { ...process.env, CXR_STACK_DIR: path.join(tmp, 'stack') },
  });
  if (r.status !== 0) throw new Error(`stack.sh ${cmd} redis failed:\n${r.stderr}`);
}

function run(args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`cxr ${args[0]} exited ${code}:\n${err}`)),
    );
  });
}

async function predictOnce(i) {
  const t0 = performance.now();
  const out = await run(['predict', '-r', '--no-progress', '--db', path.join(tmp, `predict-${i}.db`), ...INPUTS], {
    CXR_MODEL: MODEL,
  });
  const s = (performance.now() - t0) / 1000;
  const films = out.trim().split('\n').length - 1; // CSV rows less the header
  return { films, seconds: s };
}

/** cold: the workers start with the clock (model load included); warm: they wait, started before it. */
async function queueOnce(i, env, mode) {
  // A fresh queue and audit log: every film must be predicted again.
  spawnSync('redis-cli', ['-u', env.CXR_REDIS_URL.replace(/\/\/:[^@]*@/, '//'), 'flushdb'], {
    env: { ...process.env, REDISCLI_AUTH: new URL(env.CXR_REDIS_URL).password },
  });
  const wenv = { ...env, CXR_MODEL: MODEL, CXR_DB: path.join(tmp, `queue-${mode}-${i}.db`) };
  let t0 = performance.now();
  const workers = Array.from({ length: WORKERS }, () =>
    spawn(process.execPath, [CLI, 'worker', '--threads', '1', '--concurrency', PER_WORKER], {
      env: { ...process.env, ...wenv },
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
  const logs = workers.map(() => '');
  workers.forEach((w, k) => w.stderr.on('data', (d) => (logs[k] += d)));
  if (mode === 'warm') {
    while (!logs.every((l) => /consuming/.test(l))) await new Promise((r) => setTimeout(r, 20));
    t0 = performance.now();
  }
  const counts = JSON.parse(await run(['enqueue', '-r', '--json', ...INPUTS], wenv));
  const films = counts.queued;
  const done = () => logs.reduce((n, l) => n + (l.match(/: predicted /g) ?? []).length, 0);
  while (done() < films) {
    if (workers.some((w) => w.exitCode !== null)) throw new Error(`a worker exited:\n${logs.join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const s = (performance.now() - t0) / 1000;
  await Promise.all(
    workers.map(
      (w) =>
        new Promise((r) => {
          w.on('close', r);
          w.kill('SIGTERM');
        }),
    ),
  );
  return { films, seconds: s };
}

(async () => {
  stack('up');
  const env = Object.fromEntries(
    fs
      .readFileSync(path.join(tmp, 'stack', 'env'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  const rows = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      // The order turns each run, so that no path always runs on a warmer (or busier) machine.
      const order = ['predict', 'cold', 'warm'];
      for (let k = 0; k < i % 3; k++) order.push(order.shift());
      const r = {};
      for (const what of order) r[what] = what === 'predict' ? await predictOnce(i) : await queueOnce(i, env, what);
      const fps = (x) => x.films / x.seconds;
      const row = {
        run: i + 1,
        predict: fps(r.predict),
        cold: fps(r.cold),
        warm: fps(r.warm),
      };
      rows.push(row);
      console.log(
        `run ${row.run} (${order.join(', ')}): cxr predict ${row.predict.toFixed(2)} films/s (${r.predict.films} files); ` +
          `enqueue + ${WORKERS} workers ${row.cold.toFixed(2)} films/s cold, ${row.warm.toFixed(2)} warm ` +
          `(${r.cold.films} films); ratios ${(row.cold / row.predict).toFixed(3)} cold, ${(row.warm / row.predict).toFixed(3)} warm`,
      );
    }
  } finally {
    stack('down');
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const m = (k) => median(rows.map((r) => r[k]));
  const ratio = (k) => median(rows.map((r) => r[k] / r.predict));
  console.log(
    `medians over ${RUNS} runs (load average ${os.loadavg()[0].toFixed(1)}): cxr predict ${m('predict').toFixed(2)} films/s; ` +
      `queue cold ${m('cold').toFixed(2)}, warm ${m('warm').toFixed(2)} films/s; ` +
      `median ratio to predict: cold ${ratio('cold').toFixed(3)}, warm ${ratio('warm').toFixed(3)}`,
  );
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
