// Grad-CAM must follow the evidence: on a model that learned "a bright blob means positive",
// the map peaks on the blob, and hiding the highlighted region costs more probability than
// hiding a random region of the same size.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import sharp from 'sharp';
import { initEngine } from '../src/engine';
import { type CamResult, gradCam, renderOverlay, resizeMap } from '../src/explain/gradcam';
import { INFERNO } from '../src/explain/colormap';
import { features, splitModel, type ModelParts } from '../src/explain/model_parts';
import { predictLogits, predictWithFeatures } from '../src/models/infer';
import { cxrnet } from '../src/models/cxrnet';
import type { TtaView } from '../src/models/tta_views';

/** The (row, column) of the map's maximum, in map cells. */
function argmax2d(cam: CamResult): { row: number; col: number } {
  let best = 0;
  for (let i = 1; i < cam.map.length; i++) if (cam.map[i] > cam.map[best]) best = i;
  return { row: Math.floor(best / cam.width), col: best % cam.width };
}

// Small images: with global average pooling, the blob must be a fair share of the picture for
// a few epochs of training to find it.
const S = 16;
const PATCH = 4;
const BACKGROUND = 0.075;

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Sample {
  pixels: Float32Array;
  blob: { x: number; y: number } | null;
}

function makeImage(rand: () => number, withBlob: boolean): Sample {
  const px = new Float32Array(S * S);
  for (let i = 0; i < px.length; i++) px[i] = BACKGROUND * 2 * rand();
  let blob = null;
  if (withBlob) {
    blob = { x: 3 + Math.floor(rand() * (S - 6)), y: 3 + Math.floor(rand() * (S - 6)) };
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const d2 = (x - blob.x) ** 2 + (y - blob.y) ** 2;
        px[y * S + x] = Math.min(1, px[y * S + x] + 0.9 * Math.exp(-d2 / 3));
      }
    }
  }
  return { pixels: px, blob };
}

function occlude(px: Float32Array, cx: number, cy: number): Float32Array {
  const out = px.slice();
  for (let y = Math.max(0, cy - PATCH / 2); y < Math.min(S, cy + PATCH / 2); y++) {
    for (let x = Math.max(0, cx - PATCH / 2); x < Math.min(S, cx + PATCH / 2); x++) out[y * S + x] = BACKGROUND;
  }
  return out;
}

let model: tfl.LayersModel;
let parts: ModelParts;

before(async () => {
  await initEngine();
  tf.setBackend('aten');
  const input = tfl.input({ shape: [S, S, 1] });
  // Seeded initial weights and a fixed order: an unseeded run could start with dead ReLUs and not learn.
  const init = (seed: number) => tfl.initializers.heNormal({ seed });
  let x = tfl.layers
    .conv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1) })
    .apply(input) as tfl.SymbolicTensor;
  x = tfl.layers
    .conv2d({
      filters: 16,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      name: 'last_conv',
      kernelInitializer: init(2),
    })
    .apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers
    .dense({
      units: 1,
      activation: 'sigmoid',
      name: 'pneumonia',
      kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }),
    })
    .apply(x) as tfl.SymbolicTensor;
  model = tfl.model({ inputs: input, outputs: out });
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'binaryCrossentropy' });
  const rand = rng(7);
  const n = 320;
  const data = new Float32Array(n * S * S);
  const labels = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const s = makeImage(rand, i % 2 === 0);
    data.set(s.pixels, i * S * S);
    labels[i] = s.blob ? 1 : 0;
  }
  const xs = tf.tensor4d(data, [n, S, S, 1]);
  const ys = tf.tensor2d(labels, [n, 1]);
  await model.fit(xs, ys, { epochs: 20, batchSize: 32, shuffle: false, verbose: 0 });
  xs.dispose();
  ys.dispose();
  parts = splitModel(model);
});

after(() => model?.dispose());

const prob = (px: Float32Array) =>
  tf.tidy(() => (model.predict(tf.tensor4d(px, [1, S, S, 1])) as tf.Tensor).dataSync()[0]);

test('the model learned the task (sanity check for the tests below)', () => {
  const rand = rng(99);
  let correct = 0;
  for (let i = 0; i < 40; i++) {
    const s = makeImage(rand, i % 2 === 0);
    correct += prob(s.pixels) >= 0.5 === !!s.blob ? 1 : 0;
  }
  assert.ok(correct >= 36, `accuracy ${correct}/40`);
});

test('the Grad-CAM peak lies on the blob, and occluding it costs more than occluding a random patch', (t) => {
  const rand = rng(1234);
  const trials = 12;
  let onBlob = 0;
  let occlusionWins = 0;
  const tensorsBefore = tf.memory().numTensors;
  for (let i = 0; i < trials; i++) {
    const s = makeImage(rand, true);
    const x = tf.tensor4d(s.pixels, [1, S, S, 1]);
    const cam = gradCam([parts], x);
    x.dispose();
    assert.equal(cam.height, S);
    const peak = argmax2d(cam);
    const scale = S / cam.width;
    const px = { x: (peak.col + 0.5) * scale, y: (peak.row + 0.5) * scale };
    if (Math.hypot(px.x - s.blob!.x, px.y - s.blob!.y) <= 2) onBlob++;
    // A random patch centre at least a patch away from the highlighted one.
    let rx: number, ry: number;
    do {
      rx = PATCH / 2 + Math.floor(rand() * (S - PATCH));
      ry = PATCH / 2 + Math.floor(rand() * (S - PATCH));
    } while (Math.hypot(rx - px.x, ry - px.y) < PATCH);
    const base = prob(s.pixels);
    const dropCam = base - prob(occlude(s.pixels, Math.round(px.x), Math.round(px.y)));
    const dropRandom = base - prob(occlude(s.pixels, rx, ry));
    if (dropCam > dropRandom) occlusionWins++;
  }
  t.diagnostic(`peak on the blob ${onBlob}/${trials}, occlusion of the peak hurt more ${occlusionWins}/${trials}`);
  assert.equal(tf.memory().numTensors, tensorsBefore, 'gradCam leaks no tensors');
  assert.ok(onBlob >= trials - 2, `peak on the blob in ${onBlob}/${trials}`);
  assert.ok(occlusionWins >= trials - 2, `occluding the peak hurt more in ${occlusionWins}/${trials}`);
});

test('a blank image has no positive evidence: all-zero map', () => {
  const x = tf.fill([1, S, S, 1], BACKGROUND) as tf.Tensor4D;
  const cam = gradCam([parts], x);
  x.dispose();
  for (const v of cam.map) assert.ok(v >= 0 && v <= 1);
});

test("ensembles average their members' maps; a model without last_conv is refused", () => {
  const s = makeImage(rng(5), true);
  const x = tf.tensor4d(s.pixels, [1, S, S, 1]);
  const single = gradCam([parts], x);
  const double = gradCam([parts, parts], x);
  x.dispose();
  for (let i = 0; i < single.map.length; i++) assert.ok(Math.abs(single.map[i] - double.map[i]) < 1e-5);
  const input = tfl.input({ shape: [8, 8, 1] });
  const y = tfl.layers
    .dense({ units: 1, activation: 'sigmoid' })
    .apply(tfl.layers.flatten().apply(input)) as tfl.SymbolicTensor;
  const plain = tfl.model({ inputs: input, outputs: y });
  assert.throws(() => splitModel(plain), /last_conv/);
  plain.dispose();
});

test('every cxr architecture splits at last_conv and the split reproduces the model', () => {
  const m = cxrnet({ inputSize: 32, widths: [4, 8], dropout: 0.3 });
  const p = splitModel(m);
  assert.equal(p.featureLayer, 'gap');
  const x = tf.randomUniform([2, 32, 32, 1]) as tf.Tensor4D;
  const want = tf.tidy(() => {
    const prob = m.predict(x) as tf.Tensor;
    return tf.log(tf.div(prob, tf.sub(1, prob)));
  });
  const got = tf.tidy(() => {
    const a = p.body.predict(x) as tf.Tensor;
    const h = p.neck.predict(a) as tf.Tensor2D;
    return tf.add(tf.matMul(h, p.kernel), p.bias);
  });
  const w = want.dataSync();
  const g = got.dataSync();
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(w[i] - g[i]) < 1e-3, `${w[i]} vs ${g[i]}`);
  tf.dispose([x, want, got]);
  m.dispose();
});

test('one pass gives the TTA logits and the OOD features that two passes give', () => {
  const m = cxrnet({ inputSize: 32, widths: [4, 8], dropout: 0.3 });
  const p = splitModel(m);
  const tap = {
    member: 0,
    model: tfl.model({
      inputs: m.inputs,
      outputs: [m.outputs[0], m.getLayer(p.featureLayer).getOutputAt(0) as tfl.SymbolicTensor],
    }),
  };
  const x = tf.randomUniform([2, 32, 32, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
  // 'identity' not first: the features must come from the identity view's rows of the stacked batch.
  const tta: TtaView[] = ['zoom-in', 'identity', 'shift-left'];
  const r = predictWithFeatures([m], x, tta, tap);
  const want = predictLogits([m], x, tta);
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(r.logits[i] - want[i]) < 1e-6, `${r.logits[i]} vs ${want[i]}`);
  const h2 = features(p, x);
  assert.deepEqual(r.features!.shape, h2.shape);
  const a = r.features!.dataSync();
  const b = h2.dataSync();
  let maxDiff = 0;
  for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
  assert.ok(maxDiff < 1e-5, `features differ by ${maxDiff}`);
  // Without an identity view there is nothing to tap.
  assert.equal(predictWithFeatures([m], x, ['zoom-in'], tap).features, null);
  tf.dispose([x, h2, r.features!]);
  m.dispose();
});

test('resizeMap is bilinear and keeps constants constant', () => {
  const flat = resizeMap(new Float32Array([0.5, 0.5, 0.5, 0.5]), 2, 2, 5, 7);
  assert.ok(flat.every((v) => Math.abs(v - 0.5) < 1e-6));
  const ramp = resizeMap(new Float32Array([0, 1]), 1, 2, 1, 4);
  assert.deepEqual(
    [...ramp].map((v) => +v.toFixed(3)),
    [0, 0.25, 0.75, 1],
  );
});

test('the colour map gets brighter monotonically (readable in grayscale)', () => {
  let prev = -1;
  for (let i = 0; i < 256; i++) {
    const luma = 0.299 * INFERNO[3 * i] + 0.587 * INFERNO[3 * i + 1] + 0.114 * INFERNO[3 * i + 2];
    assert.ok(luma >= prev - 0.5, `luma falls at ${i}`);
    prev = luma;
  }
});

test('renderOverlay: PNG at the image size, coloured where the map is high, gray where it is low', async () => {
  const width = 60,
    height = 40;
  const gray = new Uint8Array(width * height).fill(128);
  const map = new Float32Array(16);
  map[0] = 1; // top-left cell of a 4x4 map
  const png = await renderOverlay(gray, width, height, { map, height: 4, width: 4, peak: 1 });
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.width, width);
  assert.equal(info.height, height);
  assert.equal(info.channels, 3);
  const at = (x: number, y: number) => [...data.subarray((y * width + x) * 3, (y * width + x) * 3 + 3)];
  const [r, g, b] = at(2, 2);
  assert.ok(Math.max(r, g, b) - Math.min(r, g, b) > 40, `coloured near the peak: ${[r, g, b]}`);
  assert.deepEqual(at(55, 35), [128, 128, 128]);
});
