#!/usr/bin/env node
// bench/serve/latency.js: single-image predict latency (decode + preprocess + model), medians
// over --runs, without and with the Grad-CAM heat map, in one process, one request at a time.
// Usage: node bench/serve/latency.js [--runs 30] [--model DIR] [--image FILE] [--threads N]
'use strict';
require('../args').checkArgs(
  'usage: node bench/serve/latency.js [--runs 30] [--model DIR] [--image FILE] [--threads N]',
  { values: ['--runs', '--model', '--image', '--threads', '--input-size'], flags: [] },
);
const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { DIST, opt, sampleImage, benchModel, median, machine } = require('./common');

async function main() {
  const runs = Number(opt('runs', 30));
  const model = await benchModel();
  const image = sampleImage();
  const { initEngine } = require(path.join(DIST, 'src', 'engine'));
  const { Predictor } = require(path.join(DIST, 'src', 'predict', 'predictor'));
  await initEngine(opt('threads') ? Number(opt('threads')) : undefined);
  const predictor = await Predictor.load(model.dir);
  const bytes = fs.readFileSync(image);
  console.log(`model: ${model.note}\nimage: ${image} (${bytes.length} bytes)\nmachine: ${machine()}`);
  const out = {};
  for (const heatmap of [false, true]) {
    for (let i = 0; i < 3; i++) await predictor.predict(bytes, { heatmap });
    const wall = [],
      decode = [],
      infer = [],
      heat = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const p = await predictor.predict(bytes, { heatmap });
      wall.push(performance.now() - t0);
      decode.push(p.timings.decodeMs);
      infer.push(p.timings.inferMs);
      if (p.timings.heatmapMs !== undefined) heat.push(p.timings.heatmapMs);
    }
    out[heatmap ? 'withHeatmap' : 'withoutHeatmap'] = {
      totalMs: +median(wall).toFixed(1),
      decodeMs: +median(decode).toFixed(1),
      inferMs: +median(infer).toFixed(1),
      ...(heat.length ? { heatmapMs: +median(heat).toFixed(1) } : {}),
    };
  }
  console.log(JSON.stringify({ runs, ...out }, null, 2));
  predictor.dispose();
  if (model.temp) fs.rmSync(model.dir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
