#!/usr/bin/env node
// bench/train-step: one training step of the reference CNN on the 'aten' backend, against
// PyTorch (same model, channels_last, same thread count) and the tfjs cpu backend, in one run.
// tfjs-layers' BatchNormalization trains through aten.useFusedBatchNormTraining() (one native
// kernel each way instead of tf.moments + tf.batchNorm); --no-fused-bn measures it without.
// Usage: node bench/train-step/run.js [--steps 7] [--threads 2] [--no-cpu] [--no-fused-bn] [--json out.json]
'use strict';
// PyTorch runs with the environment as given: unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set,
// the aten backend makes its own OpenMP workers wait passively (packages/backend-aten/src/native.ts);
// GOMP_SPINCOUNT=300000 (libgomp's default) gives both the same spinning workers.
const TORCH_ENV = { ...process.env, PATH: `/usr/bin:${process.env.PATH}` };
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const tf = require('@tensorflow/tfjs-core');
const tfl = require('@tensorflow/tfjs-layers');
const aten = require('@cxr/backend-aten');

const args = process.argv.slice(2);
require('../args').checkArgs(
  'usage: node bench/train-step/run.js [--steps 7] [--threads 2] [--no-cpu] [--no-fused-bn] [--json out.json]',
  { values: ['--steps', '--threads', '--json'], flags: ['--no-cpu', '--no-fused-bn'] },
);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const STEPS = Number(opt('steps', 7));
const THREADS = Number(opt('threads', 2));
const FUSED_BN = !args.includes('--no-fused-bn');
if (FUSED_BN) aten.useFusedBatchNormTraining();
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function referenceModel(size) {
  const m = tfl.sequential();
  [32, 64, 128, 128].forEach((filters, i) => {
    m.add(
      tfl.layers.conv2d({
        ...(i === 0 ? { inputShape: [size, size, 1] } : {}),
        filters,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
      }),
    );
    m.add(tfl.layers.batchNormalization());
    m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
  });
  m.add(tfl.layers.globalAveragePooling2d({}));
  m.add(tfl.layers.dense({ units: 1, activation: 'sigmoid' }));
  m.compile({ optimizer: tf.train.rmsprop(1e-3), loss: 'binaryCrossentropy' });
  return m;
}

async function trainSteps(backend, batch, warmup, steps) {
  await tf.setBackend(backend);
  const model = referenceModel(128);
  const x = tf.randomUniform([batch, 128, 128, 1]);
  const y = tf.cast(tf.greater(tf.randomUniform([batch, 1]), 0.5), 'float32');
  for (let i = 0; i < warmup; i++) await model.trainOnBatch(x, y);
  const times = [];
  let transfers = null;
  for (let i = 0; i < steps; i++) {
    const m0 = backend === 'aten' ? aten.nativeMemory() : null;
    const t = performance.now();
    await model.trainOnBatch(x, y);
    times.push(performance.now() - t);
    if (m0) {
      const m1 = aten.nativeMemory();
      transfers = { uploads: m1.uploads - m0.uploads, downloads: m1.downloads - m0.downloads };
    }
  }
  tf.dispose([x, y]);
  model.dispose();
  return { median_ms: median(times), times_ms: times, transfers };
}

async function inference(batch) {
  await tf.setBackend('aten');
  const model = referenceModel(224);
  const x = tf.randomUniform([batch, 224, 224, 1]);
  for (let i = 0; i < 3; i++) tf.dispose(await model.predict(x).data());
  const times = [];
  for (let i = 0; i < STEPS; i++) {
    const t = performance.now();
    const p = model.predict(x);
    await p.data();
    p.dispose();
    times.push(performance.now() - t);
  }
  x.dispose();
  model.dispose();
  return median(times);
}

function torchReference() {
  try {
    const out = execFileSync('python3', [path.join(__dirname, 'torch_ref.py'), String(THREADS), String(STEPS)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: TORCH_ENV,
    });
    return JSON.parse(out.trim().split('\n').pop());
  } catch (e) {
    return {
      error: `PyTorch reference unavailable (install Debian's python3-torch): ${String(e.message).split('\n')[0]}`,
    };
  }
}

(async () => {
  aten.setNumThreads(THREADS);
  const result = {
    date: new Date().toISOString(),
    threads: THREADS,
    steps: STEPS,
    node: process.version,
    fused_batch_norm: FUSED_BN,
    aten_omp: { OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY, GOMP_SPINCOUNT: process.env.GOMP_SPINCOUNT },
    torch_omp: { OMP_WAIT_POLICY: TORCH_ENV.OMP_WAIT_POLICY, GOMP_SPINCOUNT: TORCH_ENV.GOMP_SPINCOUNT },
  };
  result.torch = torchReference();
  result.aten = await trainSteps('aten', 32, 3, STEPS);
  if (!args.includes('--no-cpu')) result.cpu_batch4 = await trainSteps('cpu', 4, 0, 1);
  result.inference_ms = { batch1_224: await inference(1), batch32_224: await inference(32) };
  if (result.torch.median_ms) result.ratio_aten_over_torch = result.aten.median_ms / result.torch.median_ms;
  if (result.cpu_batch4)
    result.ratio_cpu_batch4_over_aten_batch32 = result.cpu_batch4.median_ms / result.aten.median_ms;
  const fmt = (x) => (x == null ? 'n/a' : `${x.toFixed(1)} ms`);
  console.log(`train step, batch 32, 128x128x1, ${THREADS} threads (median of ${STEPS} after warm-up):`);
  console.log(`  PyTorch ${result.torch.torch ?? ''} channels_last: ${fmt(result.torch.median_ms)}`);
  console.log(
    `  tfjs + aten${FUSED_BN ? ' (fused BN)' : '           '}:     ${fmt(result.aten.median_ms)}  (ratio to PyTorch ${result.ratio_aten_over_torch?.toFixed(2) ?? 'n/a'})`,
  );
  console.log(`  JS<->native transfers in one step: ${JSON.stringify(result.aten.transfers)}`);
  if (result.cpu_batch4) console.log(`  tfjs cpu backend, batch 4 (1 step): ${fmt(result.cpu_batch4.median_ms)}`);
  const ti = result.torch.inference_ms ?? {};
  const vs = (a, t) => (t == null ? '' : ` (PyTorch ${fmt(t)}, ratio ${(a / t).toFixed(2)})`);
  console.log(`inference, 224x224x1, model.predict on aten:`);
  console.log(`  batch 1:  ${fmt(result.inference_ms.batch1_224)}${vs(result.inference_ms.batch1_224, ti.batch1_224)}`);
  console.log(
    `  batch 32: ${fmt(result.inference_ms.batch32_224)}${vs(result.inference_ms.batch32_224, ti.batch32_224)}`,
  );
  const out = opt('json', null);
  if (out) fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
