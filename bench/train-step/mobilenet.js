#!/usr/bin/env node
// bench/train-step/mobilenet.js: training steps of MobileNet v1 (alpha 0.25, 160x160x3, batch 32,
// batch norm and relu6 as in cxr's transfer recipes) on the 'aten' backend, with tfjs-layers'
// relu6 as one native kernel each way (aten.useNativeRelu6) against tfjs-layers' own
// minimum(6, relu(x)), in one run. Each variant runs in its own child process (the patch is
// process-wide), alternating, and the medians of all their timed steps are compared.
// Usage: node bench/train-step/mobilenet.js [--rounds 3] [--steps 5] [--threads 2] [--json out.json]
'use strict';
require('../args').checkArgs(
  'usage: node bench/train-step/mobilenet.js [--rounds 3] [--steps 5] [--threads 2] [--json out.json]',
  // --child: how each variant's own process is started (main below), not for a person to type.
  { values: ['--rounds', '--steps', '--threads', '--json', '--child'], flags: [] },
);
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const ROUNDS = Number(opt('rounds', 3));
const STEPS = Number(opt('steps', 5));
const THREADS = Number(opt('threads', 2));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** MobileNet v1's layer sequence (Howard et al. 2017) with a one-unit sigmoid head. */
function mobilenet(tfl, alpha, size) {
  const BLOCKS = [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024];
  const STRIDE2 = new Set([1, 3, 5, 11]);
  const bnRelu6 = (x) => tfl.layers.activation({ activation: 'relu6' }).apply(tfl.layers.batchNormalization().apply(x));
  const input = tfl.input({ shape: [size, size, 3] });
  let x = tfl.layers
    .conv2d({ filters: Math.trunc(32 * alpha), kernelSize: 3, strides: 2, padding: 'same', useBias: false })
    .apply(input);
  x = bnRelu6(x);
  BLOCKS.forEach((filters, i) => {
    const strides = STRIDE2.has(i) ? 2 : 1;
    x = bnRelu6(tfl.layers.depthwiseConv2d({ kernelSize: 3, strides, padding: 'same', useBias: false }).apply(x));
    x = bnRelu6(tfl.layers.conv2d({ filters: Math.trunc(filters * alpha), kernelSize: 1, useBias: false }).apply(x));
  });
  x = tfl.layers.globalAveragePooling2d({}).apply(x);
  const output = tfl.layers.dense({ units: 1, activation: 'sigmoid' }).apply(x);
  return tfl.model({ inputs: input, outputs: output });
}

async function child(native) {
  const tf = require('@tensorflow/tfjs-core');
  const tfl = require('@tensorflow/tfjs-layers');
  const aten = require('@cxr/backend-aten');
  aten.setNumThreads(THREADS);
  aten.useFusedBatchNormTraining();
  if (native) aten.useNativeRelu6();
  await tf.setBackend('aten');
  const model = mobilenet(tfl, 0.25, 160);
  model.compile({ optimizer: tf.train.adam(1e-4), loss: 'binaryCrossentropy' });
  const x = tf.randomUniform([32, 160, 160, 3], -1, 1, 'float32', 1);
  const y = tf.cast(tf.greater(tf.randomUniform([32, 1], 0, 1, 'float32', 2), 0.5), 'float32');
  for (let i = 0; i < 2; i++) await model.trainOnBatch(x, y);
  const times = [];
  for (let i = 0; i < STEPS; i++) {
    const t = performance.now();
    await model.trainOnBatch(x, y);
    times.push(performance.now() - t);
  }
  process.stdout.write(`${JSON.stringify(times)}\n`);
}

function main() {
  const times = { native: [], layers: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const variant of ['layers', 'native']) {
      const out = execFileSync(process.execPath, [__filename, ...args, '--child', variant], { encoding: 'utf8' });
      times[variant].push(...JSON.parse(out.trim().split('\n').pop()));
    }
  }
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    threads: THREADS,
    model: 'MobileNet v1 0.25, 160x160x3, batch 32, fused batch norm, Adam',
    rounds: ROUNDS,
    steps_per_round: STEPS,
    layers_relu6_median_ms: median(times.layers),
    native_relu6_median_ms: median(times.native),
    times_ms: times,
  };
  result.ratio_native_over_layers = result.native_relu6_median_ms / result.layers_relu6_median_ms;
  console.log(`train step, ${result.model}, ${THREADS} threads (median of ${ROUNDS}x${STEPS} after warm-up):`);
  console.log(`  relu6 as tfjs-layers' minimum(6, relu(x)): ${result.layers_relu6_median_ms.toFixed(1)} ms`);
  console.log(`  relu6 native (aten.useNativeRelu6):        ${result.native_relu6_median_ms.toFixed(1)} ms`);
  console.log(`  ratio native / layers: ${result.ratio_native_over_layers.toFixed(2)}`);
  const out = opt('json', null);
  if (out) fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
}

const childAt = args.indexOf('--child');
if (childAt >= 0) {
  child(args[childAt + 1] === 'native').catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main();
}
