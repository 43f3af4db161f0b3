#!/usr/bin/env node
// bench/serve/heatmap-layer.js: the Grad-CAM heat map's cost at the layer the predictor draws
// (explain/model_parts.ts camParts: 10×10 on the shipped MobileNet ensemble) against the coarser
// 'last_conv' map (5×5), alternating in one process on one model input, medians over --runs.
// Usage: node bench/serve/heatmap-layer.js [--runs 30] [--model DIR] [--threads N]
'use strict';
require('../args').checkArgs('usage: node bench/serve/heatmap-layer.js [--runs 30] [--model DIR] [--threads N]', {
  values: ['--runs', '--model', '--threads', '--image', '--input-size'],
  flags: [],
});
const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { DIST, opt, benchModel, median, machine } = require('./common');

async function main() {
  const runs = Number(opt('runs', 30));
  const model = await benchModel();
  const tf = require('@tensorflow/tfjs-core');
  const { initEngine } = require(path.join(DIST, 'src', 'engine'));
  const { loadModel } = require(path.join(DIST, 'src', 'models', 'io'));
  const { splitModel, camParts } = require(path.join(DIST, 'src', 'explain', 'model_parts'));
  const { gradCam } = require(path.join(DIST, 'src', 'explain', 'gradcam'));
  await initEngine(opt('threads') ? Number(opt('threads')) : undefined);
  const { members, meta } = await loadModel(model.dir);
  const coarse = members.map(splitModel);
  const drawn = members.map((m, i) => camParts(m, coarse[i]));
  const S = meta.inputSize;
  const x = tf.randomUniform([1, S, S, 1], 0, 1, 'float32', 3);
  console.log(`model: ${model.note}\nmachine: ${machine()}`);
  const times = { lastConv: [], drawn: [] };
  for (let i = 0; i < runs + 3; i++) {
    for (const [k, cams] of [
      ['lastConv', coarse],
      ['drawn', drawn],
    ]) {
      const t0 = performance.now();
      gradCam(cams, x);
      if (i >= 3) times[k].push(performance.now() - t0);
    }
  }
  const grid = (c) => `${c[0].mapShape[0]}×${c[0].mapShape[1]}`;
  const out = {
    runs,
    members: members.length,
    lastConv: { grid: grid(coarse), ms: +median(times.lastConv).toFixed(1) },
    drawn: { layer: drawn[0].layer, grid: grid(drawn), ms: +median(times.drawn).toFixed(1) },
  };
  out.ratio = +(out.drawn.ms / out.lastConv.ms).toFixed(2);
  console.log(JSON.stringify(out, null, 2));
  x.dispose();
  for (const m of members) m.dispose();
  if (model.temp) fs.rmSync(model.dir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
