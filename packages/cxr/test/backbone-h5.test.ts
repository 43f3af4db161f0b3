// Keras .h5 weights: files in Keras' save_weights layout, written here with h5wasm, load into the
// TypeScript InceptionV3 and MobileNetV2 with every variable placed and equal to what was written.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine } from '../src/engine';
import { backboneSpec, BackboneSpec } from '../src/models/backbones';
import { buildImagenetModel } from './imagenet-model';
import { readKerasH5 } from '../src/models/backbones/keras_h5';
import { H5Layer, writeKerasH5 } from './keras-h5-writer';
import { variableShortName } from '../src/models/backbones/weights';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-h5-'));

/** Deterministic distinct values, so that a weight placed in the wrong variable is noticed. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

/** Every layer of a definition, as Keras would save it: weightless layers too, names 'layer/short:0'. */
function kerasLayout(spec: BackboneSpec, size: number): { layers: H5Layer[]; model: tfl.LayersModel } {
  const input = tfl.input({ shape: [size, size, 3], name: 'input_1' });
  const g = spec.build(input);
  const model = tfl.model({ inputs: input, outputs: g.output });
  let seed = 1;
  const layers = model.layers.map((l) => ({
    name: l.name,
    weights: l.weights.map((v) => ({
      name: `${l.name}/${variableShortName(v)}:0`,
      shape: v.shape as number[],
      data: values(
        (v.shape as number[]).reduce((a, b) => a * b, 1),
        seed++,
      ),
    })),
  }));
  return { layers, model };
}

async function roundTrip(
  name: string,
  size: number,
  expect: { params: number; variables: number; layers?: Record<string, number[]> },
) {
  await initEngine();
  const spec = backboneSpec(name);
  const { layers, model: reference } = kerasLayout(spec, size);
  const file = path.join(dir, spec.weights.file);
  await writeKerasH5(file, layers);
  reference.dispose();

  const model = await buildImagenetModel(spec, file, size);
  assert.equal(model.countParams(), expect.params);
  assert.equal(model.weights.length, expect.variables);
  const written = new Map(layers.flatMap((l) => l.weights.map((w) => [w.name.replace(/:0$/, ''), w] as const)));
  let checked = 0;
  for (const layer of model.layers) {
    for (const v of layer.weights) {
      const w = written.get(`${layer.name}/${variableShortName(v)}`);
      assert.ok(w, `no written weight for ${layer.name}/${variableShortName(v)}`);
      const got = v.read().dataSync() as Float32Array;
      assert.deepEqual(v.shape, w.shape);
      assert.ok(
        Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(w.data.buffer)),
        `${v.originalName} differs`,
      );
      checked++;
    }
  }
  assert.equal(checked, expect.variables);
  for (const [layerName, shape] of Object.entries(expect.layers ?? {})) {
    assert.deepEqual(model.getLayer(layerName).weights[0].shape, shape, layerName);
  }
  model.dispose();
  return file;
}

test('InceptionV3: a full-size Keras-layout .h5 loads with all 94 conv + 94 batch-norm layers placed', async () => {
  const file = await roundTrip('inception_v3', 75, {
    // keras.applications InceptionV3(include_top=False): 21,802,784 parameters.
    params: 21802784,
    variables: 94 + 94 * 3,
    layers: { conv2d_1: [3, 3, 3, 32], conv2d_94: [1, 1, 2048, 192], batch_normalization_94: [192] },
  });
  const w = await readKerasH5(file);
  assert.equal(w.size, 188);
  assert.deepEqual([...w.get('batch_normalization_1')!.keys()], ['beta', 'moving_mean', 'moving_variance']);
});

test('MobileNetV2 1.0: a full-size Keras-layout .h5 loads with every layer placed', async () => {
  // keras.applications MobileNetV2(include_top=False): 2,257,984 parameters, 52 convolutions.
  await roundTrip('mobilenet_v2_1.0', 96, {
    params: 2257984,
    variables: 52 + 52 * 4,
    layers: { Conv1: [3, 3, 3, 32], Conv_1: [1, 1, 320, 1280], block_16_project: [1, 1, 960, 320] },
  });
});

test('a .h5 missing a layer or with a wrong shape is refused by name', async () => {
  await initEngine();
  const spec = backboneSpec('mobilenet_v2_0.35');
  const { layers, model } = kerasLayout(spec, 96);
  model.dispose();
  const missing = path.join(dir, 'missing.h5');
  await writeKerasH5(
    missing,
    layers.filter((l) => l.name !== 'block_5_project'),
  );
  await assert.rejects(buildImagenetModel(spec, missing, 96), /no weights for layer 'block_5_project'/);
  const wrong = path.join(dir, 'wrong.h5');
  await writeKerasH5(
    wrong,
    layers.map((l) =>
      l.name === 'Conv1'
        ? { ...l, weights: [{ name: 'Conv1/kernel:0', shape: [3, 3, 3, 8], data: values(216, 1) }] }
        : l,
    ),
  );
  await assert.rejects(
    buildImagenetModel(spec, wrong, 96),
    /'Conv1\/kernel' is \[3,3,3,8\] in the file but \[3,3,3,16\] in the model/,
  );
});

test('a tiny model saved in the Keras layout reads back exactly (attributes, nested weight names)', async () => {
  const file = path.join(dir, 'tiny.h5');
  await writeKerasH5(file, [
    { name: 'input_1', weights: [] },
    {
      name: 'conv2d_1',
      weights: [
        { name: 'conv2d_1/kernel:0', shape: [1, 1, 3, 2], data: values(6, 7) },
        { name: 'conv2d_1/bias:0', shape: [2], data: values(2, 8) },
      ],
    },
    { name: 'activation_1', weights: [] },
  ]);
  const w = await readKerasH5(file);
  assert.deepEqual([...w.keys()], ['conv2d_1']);
  assert.deepEqual(w.get('conv2d_1')!.get('kernel')!.shape, [1, 1, 3, 2]);
  assert.deepEqual(Array.from(w.get('conv2d_1')!.get('bias')!.data), Array.from(values(2, 8)));
  tf.dispose();
});
