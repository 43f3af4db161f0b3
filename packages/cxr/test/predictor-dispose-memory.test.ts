// Predictor.load + dispose, over and over (a program that reloads its model on an update), must give back every
// tensor: the views the Predictor makes of its model (the gate's and Grad-CAM's necks) re-apply the model's own
// layers, and TF.js frees a layer's weights only once every model that applied it is disposed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine } from '../src/engine';
import { saveModel } from '../src/models/io';
import { MODEL_FORMAT, type ModelMeta } from '../src/models/metadata';
import { Predictor } from '../src/predict/predictor';
import { gradientFilm, tempDir } from './serve-fixtures';

let root = '';
let modelDir = '';

/**
 * A plain chain, as the shipped MobileNet is after its finer map: Grad-CAM reads 'c1' (twice last_conv's
 * resolution), so its neck re-applies last_conv; the gate's neck re-applies 'fc'. Both hold weights.
 */
function chainModel(size: number): tfl.LayersModel {
  const input = tfl.input({ shape: [size, size, 1] });
  let x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'c1' }).apply(input);
  x = tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', name: 'last_conv' }).apply(x);
  x = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(x);
  x = tfl.layers.dense({ units: 4, activation: 'relu', name: 'fc' }).apply(x);
  const out = tfl.layers.dense({ units: 1, activation: 'sigmoid', name: 'out' }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

before(async () => {
  await initEngine();
  root = tempDir('predictor-dispose');
  modelDir = path.join(root, 'model');
  const inputSize = 32;
  const meta: ModelMeta = {
    format: MODEL_FORMAT,
    name: 'chain-test',
    version: '0.0.1',
    arch: 'chain',
    inputSize,
    preprocessing: { resize: 'fill', scale: 1 / 255 },
    classNames: ['NORMAL', 'PNEUMONIA'],
    temperature: 1,
    logitBias: 0,
    operatingPoints: { balanced: { threshold: 0.5, sensitivity: 0.5, specificity: 0.5 } },
    defaultOperatingPoint: 'balanced',
    tta: [],
    members: [],
    recipe: {},
    data: {},
    validation: { auc: 0.5, note: 'random weights (test fixture)' },
    createdAt: new Date().toISOString(),
  };
  const model = chainModel(inputSize);
  await saveModel(model, modelDir, meta);
  model.dispose();
});

after(() => fs.rmSync(root, { recursive: true, force: true }));

test('loading and disposing a Predictor N times leaves no tensor behind', async () => {
  const film = await gradientFilm();
  // The first load compiles kernels and may keep engine-wide tensors: counted from after it.
  const first = await Predictor.load(modelDir);
  await first.predict(film, { heatmap: true });
  first.dispose();
  const start = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) {
    const p = await Predictor.load(modelDir);
    await p.predict(film, { heatmap: true });
    p.dispose();
  }
  assert.equal(tf.memory().numTensors, start, 'tensors after 5 load/predict/dispose cycles');
});

test('a Predictor disposed while another of the same model runs leaves that one working', async () => {
  const film = await gradientFilm();
  const a = await Predictor.load(modelDir, { warmUp: false });
  const b = await Predictor.load(modelDir, { warmUp: false });
  a.dispose();
  const r = await b.predict(film, { heatmap: true });
  assert.ok(Number.isFinite(r.probability));
  b.dispose();
});
