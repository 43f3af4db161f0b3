#!/usr/bin/env node
// bench/serve/memory.js: --count predictions (default 10,000) through the HTTP layer in one
// process (fastify.inject, audit log on disk). Passes when the tensor count never changes and
// RSS grows less than 5 % from the end of warm-up (--warmup requests) to the end.
// Usage: node --expose-gc bench/serve/memory.js [--count 10000] [--warmup 500] [--model DIR] [--image FILE] [--threads N]
'use strict';
require('../args').checkArgs(
  'usage: node --expose-gc bench/serve/memory.js [--count 10000] [--warmup 500] [--model DIR] [--image FILE] [--threads N]',
  { values: ['--count', '--warmup', '--model', '--image', '--threads', '--input-size'], flags: [] },
);
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { DIST, opt, sampleImage, benchModel, multipart, machine } = require('./common');

async function main() {
  const count = Number(opt('count', 10000));
  const warmup = Number(opt('warmup', 500));
  const model = await benchModel();
  const image = sampleImage();
  const tf = require('@tensorflow/tfjs-core');
  const { initEngine } = require(path.join(DIST, 'src', 'engine'));
  const { Predictor } = require(path.join(DIST, 'src', 'predict', 'predictor'));
  const { AuditLog } = require(path.join(DIST, 'src', 'serve', 'audit'));
  const { buildApp } = require(path.join(DIST, 'src', 'serve', 'app'));
  await initEngine(opt('threads') ? Number(opt('threads')) : undefined);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-bench-mem-'));
  const predictor = await Predictor.load(model.dir);
  const audit = AuditLog.open(path.join(tmp, 'audit.db'));
  const app = await buildApp({ predictor, audit });
  const { body, headers } = multipart(image);
  console.log(
    `model: ${model.note}\nimage: ${image}\nmachine: ${machine()}\n${count} predictions after ${warmup} warm-up (every other one with a heat map)`,
  );
  const once = async (i) => {
    const res = await app.inject({
      method: 'POST',
      url: `/api/v1/predictions${i % 2 ? '?heatmap=false' : ''}`,
      payload: body,
      headers,
    });
    if (res.statusCode !== 200) throw new Error(`request ${i}: ${res.statusCode} ${res.body}`);
  };
  const mib = (b) => (b / 2 ** 20).toFixed(1);
  const tw = Date.now();
  for (let i = 0; i < warmup; i++) await once(i);
  console.log(`warm-up: ${((Date.now() - tw) / warmup).toFixed(1)} ms/request`);
  global.gc?.();
  const tensors = tf.memory().numTensors;
  const rss0 = process.memoryUsage().rss;
  const t0 = Date.now();
  let maxRss = rss0;
  for (let i = 0; i < count; i++) {
    await once(i);
    if (i % 500 === 499) {
      global.gc?.();
      const rss = process.memoryUsage().rss;
      maxRss = Math.max(maxRss, rss);
      console.log(
        `${i + 1}: RSS ${mib(rss)} MiB, tensors ${tf.memory().numTensors}, ${((Date.now() - t0) / (i + 1)).toFixed(1)} ms/request`,
      );
      if (tf.memory().numTensors !== tensors) throw new Error(`tensor leak: ${tf.memory().numTensors} vs ${tensors}`);
    }
  }
  global.gc?.();
  const rss1 = process.memoryUsage().rss;
  const growth = rss1 / rss0 - 1;
  const summary = {
    count,
    warmup,
    tensors,
    rssAfterWarmupMiB: +mib(rss0),
    rssEndMiB: +mib(rss1),
    maxRssMiB: +mib(maxRss),
    growthPercent: +(growth * 100).toFixed(2),
    logged: audit.count(),
    msPerRequest: +((Date.now() - t0) / count).toFixed(1),
  };
  console.log(JSON.stringify(summary, null, 2));
  await app.close();
  audit.close();
  predictor.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
  if (model.temp) fs.rmSync(model.dir, { recursive: true, force: true });
  if (growth >= 0.05) {
    console.error(`RSS grew ${(growth * 100).toFixed(1)} % (limit 5 %)`);
    process.exitCode = 1;
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
