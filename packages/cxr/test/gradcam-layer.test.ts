// Which feature map Grad-CAM reads (explain/model_parts.ts camParts): the deepest layer with at
// least twice last_conv's resolution when the rest of the model is a chain, else last_conv. The
// finer map must still explain the model's own logit, and on the shipped model both maps must point
// at evidence: deleting what they rank highest costs more than deleting what a random map of the
// same grid ranks highest (`cxr experiments heatmap`).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine } from '../src/engine';
import { gradCam } from '../src/explain/gradcam';
import { type CamMap, camParts, camPartsAt, denseLogit, splitModel } from '../src/explain/model_parts';
import type { HeatmapResult } from '../src/experiments/heatmap';
import { cxrnet } from '../src/models/cxrnet';
import { CHEST_XRAY, needsData, REPO } from './shared-data';

before(async () => {
  await initEngine();
  tf.setBackend('aten');
});

/** A MobileNet-like chain: 32 → 16 → 8 px, then last_conv, pooling, dropout and Dense(1, sigmoid). */
function chainModel(): tfl.LayersModel {
  const input = tfl.input({ shape: [32, 32, 1] });
  const conv = (x: tfl.SymbolicTensor, strides: number, name: string, seed: number) =>
    tfl.layers
      .conv2d({
        filters: 4,
        kernelSize: 3,
        strides,
        padding: 'same',
        activation: 'relu',
        name,
        kernelInitializer: tfl.initializers.heNormal({ seed }),
      })
      .apply(x) as tfl.SymbolicTensor;
  let x = conv(input, 1, 'early', 1);
  x = conv(x, 2, 'mid', 2);
  x = tfl.layers.batchNormalization({ name: 'mid_bn' }).apply(x) as tfl.SymbolicTensor;
  x = conv(x, 2, 'late', 3);
  x = tfl.layers.activation({ activation: 'linear', name: 'last_conv' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dropout({ rate: 0.3 }).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 1, activation: 'sigmoid', name: 'pneumonia' }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

/** Logits through a Grad-CAM view, and through the model itself. */
function logitsBoth(m: tfl.LayersModel, cam: CamMap, x: tf.Tensor4D): [Float32Array, Float32Array] {
  return tf.tidy(() => {
    const prob = m.predict(x) as tf.Tensor;
    const want = tf.log(tf.div(prob, tf.sub(1, prob)));
    const h = tf.reshape(cam.neck.predict(cam.body.predict(x) as tf.Tensor) as tf.Tensor, [x.shape[0], -1]);
    return [denseLogit(cam, h as tf.Tensor2D).dataSync() as Float32Array, want.dataSync() as Float32Array];
  });
}

test('a chain model: the deepest layer at twice the resolution, and it reproduces the logit', () => {
  const m = chainModel();
  const cam = camParts(m, splitModel(m));
  // 'mid_bn' is the deepest 16×16 output ('late' and last_conv are 8×8); 'early' (32×32) is not needed.
  assert.equal(cam.layer, 'mid_bn');
  assert.deepEqual(cam.mapShape, [16, 16, 4]);
  const x = tf.randomUniform([3, 32, 32, 1], 0, 1, 'float32', 11) as tf.Tensor4D;
  const [got, want] = logitsBoth(m, cam, x);
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-4, `${got[i]} vs ${want[i]}`);
  const map = gradCam([cam], x, 1);
  assert.equal(map.height, 16);
  assert.equal(map.width, 16);
  x.dispose();
  m.dispose();
});

test('cxrnet keeps last_conv: its last residual block is not a chain', () => {
  const m = cxrnet({ inputSize: 32, widths: [4, 8], dropout: 0.3 });
  const parts = splitModel(m);
  const cam = camParts(m, parts);
  assert.equal(cam.layer, 'last_conv');
  assert.equal(cam.body, parts.body);
  m.dispose();
});

const VAL_PNEUMONIA = path.join(CHEST_XRAY, 'val', 'PNEUMONIA');
const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');

test('a layer inside a residual block cannot start Grad-CAM; last_conv always can', () => {
  const m = cxrnet({ inputSize: 32, widths: [4, 8], dropout: 0.3 });
  const parts = splitModel(m);
  assert.throws(() => camPartsAt(m, parts, 'stage1_out'), /not a simple chain/);
  assert.throws(() => camPartsAt(m, parts, 'no_such_layer'), /no layer 'no_such_layer'/);
  assert.equal(camPartsAt(m, parts, 'last_conv').body, parts.body);
  m.dispose();
});

test("cxr experiments heatmap: the shipped model's maps at both layers beat random maps of their grid", {
  skip: needsData(VAL_PNEUMONIA),
}, () => {
  const r = spawnSync(process.execPath, [CLI, 'experiments', 'heatmap', '--images', VAL_PNEUMONIA, '--json'], {
    encoding: 'utf8',
    cwd: REPO,
  });
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout) as HeatmapResult;
  assert.ok(result.films >= 5, `${result.films} films called positive`);
  const byKey = new Map(result.rows.map((row) => [`${row.map} ${row.grid}`, row]));
  const heat = result.rows.find((row) => row.role === 'the heat map');
  assert.equal(heat?.map, 'conv_pw_11_relu');
  assert.equal(heat?.grid, '10×10');
  for (const [map, grid] of [
    ['conv_pw_11_relu', '10×10'],
    ['last_conv', '5×5'],
  ]) {
    const row = byKey.get(`${map} ${grid}`);
    const random = byKey.get(`random ${grid}`);
    assert.ok(row && random, `rows for ${map} and random ${grid}`);
    assert.equal(row.deletion.length, 5);
    assert.ok(
      row.deletionMean < random.deletionMean,
      `${map}: deleting what it marks lowers the logit more (${row.deletionMean}) than a random ${grid} map ` +
        `(${random.deletionMean})`,
    );
  }
});
