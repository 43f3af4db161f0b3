// How long /health waits while the server predicts: the engine on the server's own thread
// (serve/decode_pool.ts loadPooledPredictor, the reference) against the engine in a child process
// (serve/predictor_process.ts, what `cxr serve` runs). Each arm is a fresh child process serving the
// same model; `--connections` clients upload the X-ray back to back for `--duration` seconds while
// /health is asked every 50 ms. Arms alternate, `--rounds` times; medians over the rounds.
'use strict';
require('../args').checkArgs(
  'usage: node bench/serve/health.js [--rounds 3] [--duration 10] [--connections N] [--model DIR] [--image FILE]',
  {
    values: ['--rounds', '--duration', '--connections', '--model', '--image', '--input-size', '--child', '--model-dir'],
    flags: [],
  },
);
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { benchModel, DIST, machine, median, multipart, opt, sampleImage } = require('./common');

const ARMS = ['main-thread', 'engine-process'];

async function child(arm, modelDir, image) {
  const { buildApp } = require(path.join(DIST, 'src', 'serve', 'app'));
  const { openAuditStore } = require(path.join(DIST, 'src', 'serve', 'audit'));
  const { loadPooledPredictor } = require(path.join(DIST, 'src', 'serve', 'decode_pool'));
  const { loadChildPredictor } = require(path.join(DIST, 'src', 'serve', 'predictor_process'));
  const predictor =
    arm === 'main-thread' ? await loadPooledPredictor(modelDir, { warmUp: false }) : await loadChildPredictor(modelDir);
  await predictor.warmUp(fs.readFileSync(image));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-bench-health-'));
  const audit = await openAuditStore(path.join(dir, 'audit.db'));
  const app = await buildApp({ predictor, audit, requestLog: false, concurrency: 2 });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  process.stdout.write(`${url}\n`);
}

function request(url, method, body, headers) {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0 }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

async function arm(name, modelDir, image, connections, seconds) {
  const proc = spawn(process.execPath, [__filename, '--child', name, '--model-dir', modelDir, '--image', image], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const base = await new Promise((resolve, reject) => {
    proc.stdout.once('data', (d) => resolve(String(d).trim()));
    proc.once('exit', (c) => reject(new Error(`${name} server exited with ${c}`)));
  });
  const { body, headers } = multipart(image);
  const end = performance.now() + seconds * 1000;
  let predictions = 0;
  const uploads = Array.from({ length: connections }, async () => {
    while (performance.now() < end) {
      const r = await request(`${base}/api/v1/predictions`, 'POST', body, headers);
      if (r.status !== 200) throw new Error(`${name}: prediction answered ${r.status}`);
      predictions++;
    }
  });
  const health = [];
  const polling = (async () => {
    while (performance.now() < end) {
      health.push((await request(`${base}/api/v1/health`, 'GET')).ms);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  await Promise.all([...uploads, polling]);
  proc.kill('SIGTERM');
  return {
    p50: median(health),
    p95: quantile(health, 0.95),
    max: Math.max(...health),
    perSecond: predictions / seconds,
  };
}

async function main() {
  const connections = Number(opt('connections', 8));
  const seconds = Number(opt('duration', 15));
  const rounds = Number(opt('rounds', 3));
  const model = await benchModel();
  const image = sampleImage();
  console.log(
    `${machine()}\nmodel ${model.note}; image ${path.basename(image)}; ${connections} uploaders, ${seconds} s, ${rounds} rounds`,
  );
  const results = Object.fromEntries(ARMS.map((a) => [a, []]));
  for (let r = 1; r <= rounds; r++) {
    for (const a of ARMS) {
      const x = await arm(a, model.dir, image, connections, seconds);
      results[a].push(x);
      console.log(
        `round ${r} ${a}: /health p50 ${x.p50.toFixed(0)} ms, p95 ${x.p95.toFixed(0)} ms, max ${x.max.toFixed(0)} ms; ` +
          `${x.perSecond.toFixed(2)} predictions/s (load ${os.loadavg()[0].toFixed(1)})`,
      );
    }
  }
  const med = (a, k) => median(results[a].map((x) => x[k]));
  console.log('\n| engine | /health p50 | p95 | max | predictions/s |\n| --- | --- | --- | --- | --- |');
  for (const a of ARMS)
    console.log(
      `| ${a} | ${med(a, 'p50').toFixed(0)} ms | ${med(a, 'p95').toFixed(0)} ms | ${med(a, 'max').toFixed(0)} ms | ` +
        `${med(a, 'perSecond').toFixed(2)} |`,
    );
  const ratio = (k) => (med('main-thread', k) / med('engine-process', k)).toFixed(1);
  console.log(
    `\n/health p95 ${ratio('p95')}× and max ${ratio('max')}× shorter with the engine in a child process; ` +
      `throughput ratio (process/main) ${(med('engine-process', 'perSecond') / med('main-thread', 'perSecond')).toFixed(2)}`,
  );
  if (model.temp) fs.rmSync(model.dir, { recursive: true, force: true });
}

const childArm = opt('child');
(childArm ? child(childArm, opt('model-dir'), opt('image')) : main()).catch((e) => {
  console.error(e);
  process.exit(1);
});
