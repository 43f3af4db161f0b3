#!/usr/bin/env node
// bench/serve/load.js: autocannon against POST /api/v1/predictions of a real `cxr serve` process.
// Usage: node bench/serve/load.js [--connections 16] [--duration 30] [--model DIR] [--image FILE] [--query '?heatmap=false'] [--threads N]
'use strict';
require('../args').checkArgs(
  "usage: node bench/serve/load.js [--connections 16] [--duration 30] [--model DIR] [--image FILE] [--query '?heatmap=false'] [--threads N]",
  { values: ['--connections', '--duration', '--model', '--image', '--query', '--threads', '--input-size'], flags: [] },
);
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const autocannon = require('autocannon');
const { DIST, opt, sampleImage, benchModel, multipart, machine } = require('./common');

/** The environment without API tokens: the bench server runs open (an empty token variable is refused). */
function withoutTokens(env) {
  const { CXR_API_TOKEN: _one, CXR_API_TOKENS: _many, ...rest } = env;
  return rest;
}

async function main() {
  const connections = Number(opt('connections', 16));
  const duration = Number(opt('duration', 30));
  const query = opt('query', '');
  const model = await benchModel();
  const image = sampleImage();
  const db = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-bench-db-')), 'audit.db');
  const proc = spawn(
    process.execPath,
    [
      path.join(DIST, 'src', 'cli', 'main.js'),
      'serve',
      '--port',
      '0',
      '--quiet',
      '--model',
      model.dir,
      '--db',
      db,
      ...(opt('threads') ? ['--threads', opt('threads')] : []),
    ],
    { stdio: ['ignore', 'inherit', 'pipe'], env: withoutTokens(process.env) },
  );
  const url = await new Promise((resolve, reject) => {
    let err = '';
    proc.stderr.on('data', (b) => {
      err += b;
      const m = /listening on (http:\/\/[^\s"]+)/.exec(err);
      if (m) resolve(m[1]);
    });
    proc.once('exit', (c) => reject(new Error(`server exited ${c}: ${err}`)));
  });
  const { body, headers } = multipart(image);
  console.log(`model: ${model.note}\nimage: ${image} (${body.length} bytes)\nmachine: ${machine()}`);
  console.log(`autocannon: ${connections} connections, ${duration} s, POST ${url}/api/v1/predictions${query}`);
  const result = await autocannon({
    url: `${url}/api/v1/predictions${query}`,
    method: 'POST',
    body,
    headers,
    connections,
    duration,
    timeout: 60,
  });
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  const summary = {
    requests: result.requests.total,
    reqPerSec: result.requests.average,
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    loadAfter: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
  console.log(JSON.stringify(summary, null, 2));
  if (model.temp) fs.rmSync(model.dir, { recursive: true, force: true });
  fs.rmSync(path.dirname(db), { recursive: true, force: true });
  if (summary.errors || summary.non2xx || summary.timeouts) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
