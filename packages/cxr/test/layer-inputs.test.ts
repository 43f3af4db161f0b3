// Layer inputs computed wave by wave from the tensors the previous wave left (models/layer_inputs.ts),
// on a small model with branches, a sum and a skip connection that crosses waves: site adaptation
// must give the same statistics whatever is kept, and the statistics a one-pass probe gives.
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { adaBn } from '../src/adapt/bn_stats';
import { initEngine } from '../src/engine';
import { bnLayers, bnWaves } from '../src/models/bn_moments';
import { LayerInputs } from '../src/models/layer_inputs';

const SIZE = 16;
const N = 23;
const BATCH = 5;

before(async () => {
  await initEngine();
});

/** conv → bn1 → relu → two conv → bn branches → sum → bn3 → concat with relu's output → conv → bn4 → head. */
function branchyModel(): tfl.LayersModel {
  const conv = (x: tfl.SymbolicTensor, seed: number) =>
    tfl.layers
      .conv2d({
        filters: 4,
        kernelSize: 3,
        padding: 'same',
        kernelInitializer: tfl.initializers.glorotNormal({ seed }),
      })
      .apply(x) as tfl.SymbolicTensor;
  const bn = (x: tfl.SymbolicTensor) => tfl.layers.batchNormalization().apply(x) as tfl.SymbolicTensor;
  const input = tfl.input({ shape: [SIZE, SIZE, 1] });
  const r1 = tfl.layers.reLU().apply(bn(conv(input, 1))) as tfl.SymbolicTensor;
  const sum = tfl.layers.add().apply([bn(conv(r1, 2)), bn(conv(r1, 3))]) as tfl.SymbolicTensor;
  const cat = tfl.layers.concatenate().apply([bn(sum), r1]) as tfl.SymbolicTensor;
  const pooled = tfl.layers.globalAveragePooling2d({}).apply(bn(conv(cat, 4))) as tfl.SymbolicTensor;
  const out = tfl.layers
    .dense({ units: 1, kernelInitializer: tfl.initializers.glorotNormal({ seed: 5 }) })
    .apply(pooled) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

function films(): Uint8Array {
  const px = new Uint8Array(N * SIZE * SIZE);
  let s = 7;
  for (let i = 0; i < px.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    px[i] = (s >>> 16) & 255;
  }
  return px;
}

const weightsOf = (m: tfl.LayersModel) => m.getWeights().map((w) => Array.from(w.dataSync()));

test('the model has four waves, one of two layers, and a tensor needed across waves', () => {
  const m = branchyModel();
  assert.deepEqual(
    bnWaves(bnLayers(m)).map((w) => w.length),
    [1, 2, 1, 1],
  );
  m.dispose();
});

test('adaptation gives the same weights bit for bit whatever is kept, and leaks no tensor', async () => {
  const px = films();
  const oneBatchAfterWave1 = BATCH * SIZE * SIZE * 4 * 4;
  const results: number[][][] = [];
  for (const keepBytes of [undefined, 0, 2.5 * oneBatchAfterWave1]) {
    const m = branchyModel();
    const before = tf.memory().numTensors;
    const updates = await adaBn(m, px, N, SIZE, { batchSize: BATCH, keepBytes });
    assert.equal(tf.memory().numTensors, before, `keepBytes ${keepBytes}: tensors left behind`);
    assert.deepEqual(
      updates.map((u) => u.count),
      [N * SIZE * SIZE, N * SIZE * SIZE, N * SIZE * SIZE, N * SIZE * SIZE, N * SIZE * SIZE],
    );
    results.push(weightsOf(m));
    m.dispose();
  }
  assert.deepEqual(results[1], results[0]);
  assert.deepEqual(results[2], results[0]);
});

test('what is kept stays within the budget; nothing is kept with a budget of 0', async () => {
  const px = films();
  const m = branchyModel();
  const [wave1] = bnWaves(bnLayers(m));
  // After the first wave each kept batch holds the first batch-norm layer's input: 4 channels of float32.
  const perFilm = SIZE * SIZE * 4 * 4;
  for (const [keepBytes, expected] of [
    [undefined, N * perFilm],
    [0, 0],
    [2.5 * BATCH * perFilm, 2 * BATCH * perFilm],
  ] as const) {
    const inputs = new LayerInputs(m, px, N, SIZE, { batchSize: BATCH, keepBytes });
    await inputs.moments(wave1);
    assert.equal(inputs.keptBytes(), expected, `keepBytes ${keepBytes}`);
    inputs.dispose();
    assert.equal(inputs.keptBytes(), 0);
  }
  m.dispose();
});

test("after adaptation each layer's statistics are its input's over all films in one probe pass", async () => {
  const px = films();
  const m = branchyModel();
  await adaBn(m, px, N, SIZE, { batchSize: BATCH });
  for (const layer of bnLayers(m)) {
    const probe = tfl.model({ inputs: m.inputs, outputs: layer.getInputAt(0) as tfl.SymbolicTensor });
    const [mean, variance] = tf.tidy(() => {
      const x = tf.div(tf.tensor4d(px, [N, SIZE, SIZE, 1], 'int32'), 255);
      const mo = tf.moments(probe.predict(x) as tf.Tensor, [0, 1, 2]);
      return [Array.from(mo.mean.dataSync()), Array.from(mo.variance.dataSync())];
    });
    const w = layer.getWeights();
    const got = [Array.from(w[w.length - 2].dataSync()), Array.from(w[w.length - 1].dataSync())];
    mean.forEach((v, c) => assert.ok(Math.abs(got[0][c] - v) <= 1e-4 * (1 + Math.abs(v)), `${layer.name} mean[${c}]`));
    variance.forEach((v, c) => assert.ok(Math.abs(got[1][c] - v) <= 1e-4 * (1 + v), `${layer.name} var[${c}]`));
  }
  m.dispose();
});
