// Backbones: the TypeScript MobileNet v1 with the shared TF.js weights computes what the TF.js
// model itself computes; names, lookup, verification, download and the transfer model's shape.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine } from '../src/engine';
import {
  backboneSpec,
  buildTransferModel,
  fetchWeights,
  locateWeights,
  resolveBackbone,
} from '../src/models/backbones';
import { readTfjsLayersWeights } from '../src/models/backbones/weights';
import { fileLoader, saveLayersModel } from '../src/models/io';
import { buildImagenetModel } from './imagenet-model';
import { MOBILENET_025, needsData } from './shared-data';

const skip = needsData(MOBILENET_025);

const shared = MOBILENET_025;

function tmpCache(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-bb-'));
  process.env.CXR_CACHE = dir;
  return dir;
}

/** A fixed RGB batch in [-1, 1]: smooth gradients plus a deterministic pattern. */
function fixedInput(n: number, size: number): tf.Tensor4D {
  const data = new Float32Array(n * size * size * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.0137) * 0.8 + ((i * 7919) % 97) / 485 - 0.1;
  return tf.tensor4d(data, [n, size, size, 3]);
}

test('MobileNet v1 0.25 built in TypeScript from the shared weights matches tf.loadLayersModel (< 1e-5)', {
  skip,
}, async () => {
  await initEngine();
  const spec = backboneSpec('mobilenet_v1_0.25');
  const reference = await tfl.loadLayersModel(fileLoader(shared));
  const ours = await buildImagenetModel(spec, locateWeights(spec, shared)!, 224, { includeTop: true });
  assert.equal(ours.countParams(), reference.countParams());
  assert.equal(ours.countParams(), 475544);
  const x = fixedInput(2, 224);
  const a = reference.predict(x) as tf.Tensor;
  const b = ours.predict(x) as tf.Tensor;
  assert.deepEqual(b.shape, [2, 1000]);
  const diff = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
  const top = tf.argMax(a, 1).dataSync();
  assert.ok(diff < 1e-5, `max abs diff ${diff}`);
  assert.deepEqual(Array.from(tf.argMax(b, 1).dataSync()), Array.from(top));
  assert.ok(Math.abs(tf.sum(b).dataSync()[0] - 2) < 1e-4);
  tf.dispose([x, a, b]);
  reference.dispose();
  ours.dispose();
});

test('backbone names: aliases, alphas, unknown names', () => {
  assert.equal(backboneSpec('InceptionV3').name, 'inception_v3');
  assert.equal(backboneSpec('mobilenet-v2').name, 'mobilenet_v2_1.0');
  assert.equal(backboneSpec('mobilenet_v1_0.5').name, 'mobilenet_v1_0.50');
  assert.equal(backboneSpec('mobilenet_v1_0.25_224').name, 'mobilenet_v1_0.25');
  assert.equal(
    backboneSpec('mobilenet_v2_0.35').weights.url,
    'https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/' +
      'mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5',
  );
  assert.equal(
    backboneSpec('mobilenet_v1_0.75').weights.url,
    'https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_0.75_224/model.json',
  );
  assert.throws(() => backboneSpec('resnet50'), /unknown backbone 'resnet50'/);
});

test('local weights are verified against the canonical sha256; a changed byte is refused', { skip }, () => {
  const spec = backboneSpec('mobilenet_v1_0.25');
  const ok = locateWeights(spec, shared)!;
  assert.equal(ok.source, 'local');
  assert.equal(Object.keys(ok.sha256).length, 56);
  const bad = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-bad-'));
  for (const f of fs.readdirSync(shared)) fs.copyFileSync(path.join(shared, f), path.join(bad, f));
  const shard = path.join(bad, 'group29-shard1of1');
  fs.chmodSync(shard, 0o644);
  const buf = fs.readFileSync(shard);
  buf[1000] ^= 1;
  fs.writeFileSync(shard, buf);
  assert.throws(() => locateWeights(spec, bad), /group29-shard1of1 has sha256 .* expected/);
});

test("a backbone's model.json that is not a TF.js manifest is refused naming it, and how to fetch it again", {
  skip,
}, () => {
  const spec = backboneSpec('mobilenet_v1_0.25');
  const bad = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-bad-'));
  try {
    for (const f of fs.readdirSync(shared)) fs.copyFileSync(path.join(shared, f), path.join(bad, f));
    const file = path.join(bad, 'model.json');
    fs.chmodSync(file, 0o644);
    const good = JSON.parse(fs.readFileSync(file, 'utf8'));
    const again = new RegExp(
      ": use another copy of mobilenet_v1_0\\.25's weights, or fetch them again: " +
        'cxr backbone fetch mobilenet_v1_0\\.25 --force$',
    );
    for (const [manifest, why] of [
      [undefined, /model\.json: not a TF\.js model\.json \(it has no weightsManifest\)/],
      [[{ paths: [5], weights: [] }], /model\.json: not a TF\.js model\.json \(weightsManifest\.0\.paths\.0: /],
    ] as const) {
      fs.writeFileSync(file, JSON.stringify({ ...good, weightsManifest: manifest }));
      assert.throws(
        () => locateWeights(spec, bad),
        (e: Error) => {
          assert.ok(e.message.startsWith(file), e.message);
          assert.match(e.message, why);
          assert.match(e.message, again);
          return true;
        },
      );
    }
  } finally {
    fs.rmSync(bad, { recursive: true, force: true });
  }
});

test("a TF.js model folder's weights: a manifest not TF.js's or weights cut short are refused", async () => {
  await initEngine();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-bb-tfjs-'));
  const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 3, name: 'fc' })] });
  try {
    await saveLayersModel(model, dir);
    const weights = readTfjsLayersWeights(dir);
    assert.deepEqual([...weights.keys()], ['fc']);
    assert.deepEqual(weights.get('fc')?.get('kernel')?.shape, [2, 3]);
    const file = path.join(dir, 'model.json');
    const good = JSON.parse(fs.readFileSync(file, 'utf8'));
    const bin = fs.readFileSync(path.join(dir, 'weights.bin'));
    const remedy =
      /: use another copy of these weights, or fetch the backbone's again: cxr backbone fetch <name> --force$/;
    const cases: [string, () => void, RegExp][] = [
      [
        'a weight file that is no name',
        () => fs.writeFileSync(file, JSON.stringify({ ...good, weightsManifest: [{ paths: [5], weights: [] }] })),
        /model\.json: not a TF\.js model\.json \(weightsManifest\.0\.paths\.0: /,
      ],
      [
        'weights cut short',
        () => fs.writeFileSync(path.join(dir, 'weights.bin'), bin.subarray(0, bin.length - 4)),
        new RegExp(`: weights\\.bin hold ${bin.length - 4} bytes where model\\.json describes ${bin.length} `),
      ],
    ];
    for (const [what, damage, why] of cases) {
      fs.writeFileSync(file, JSON.stringify(good));
      fs.writeFileSync(path.join(dir, 'weights.bin'), bin);
      damage();
      assert.throws(
        () => readTfjsLayersWeights(dir),
        (e: Error) => {
          assert.ok(e.message.startsWith(dir), e.message);
          assert.match(e.message, why, what);
          assert.match(e.message, remedy, what);
          return true;
        },
      );
    }
  } finally {
    model.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('fetch downloads model.json and its shards once into the cache, verified; a corrupt one is not kept', {
  skip,
}, async () => {
  const cache = tmpCache();
  const files = new Map(fs.readdirSync(shared).map((f) => [f, fs.readFileSync(path.join(shared, f))]));
  let corrupt = false;
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    const name = decodeURIComponent(req.url!.split('/').pop()!);
    let body = files.get(name);
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    if (corrupt && name === 'group1-shard1of1') body = Buffer.from(body.map((v, i) => (i === 0 ? v ^ 1 : v)));
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const base = backboneSpec('mobilenet_v1_0.25');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mobilenet_v1_0.25_224/model.json`;
    const spec = { ...base, weights: { ...base.weights, url } };

    corrupt = true;
    await assert.rejects(fetchWeights(spec, { progress: false }), /group1-shard1of1 has sha256/);
    assert.ok(!fs.existsSync(path.join(cache, 'backbones', base.name)), 'a failed fetch left files in the cache');

    corrupt = false;
    requests = 0;
    const got = await fetchWeights(spec, { progress: false });
    assert.equal(requests, 56);
    assert.equal(got.source, 'cache');
    assert.ok(fs.existsSync(path.join(cache, 'backbones', base.name, 'SHA256SUMS')));
    await fetchWeights(spec, { progress: false });
    assert.equal(requests, 56, 'a second fetch downloaded again');
    assert.equal(locateWeights(base)?.source, 'cache');
  } finally {
    server.close();
  }
});

test('an unreachable URL gives a readable error', async () => {
  tmpCache();
  const base = backboneSpec('mobilenet_v1_0.50');
  const spec = { ...base, weights: { ...base.weights, url: 'http://127.0.0.1:9/mobilenet_v1_0.50_224/model.json' } };
  await assert.rejects(fetchWeights(spec, { progress: false }), /could not download http:\/\/127\.0\.0\.1:9\//);
});

test("'auto' falls back to the largest MobileNet present and says so", { skip }, async () => {
  const cache = tmpCache();
  await fetchWeights(backboneSpec('mobilenet_v1_0.25'), { from: shared });
  assert.ok(fs.existsSync(path.join(cache, 'backbones', 'mobilenet_v1_0.25', 'model.json')));
  const r = await resolveBackbone('auto', { fetch: false });
  assert.equal(r.spec.name, 'mobilenet_v1_0.25');
  assert.match(r.fallback ?? '', /InceptionV3 weights not found.*mobilenet_v1_0\.25/);
});

test('the transfer model takes gray [S,S,1], exposes last_conv for Grad-CAM, its backbone starts frozen', {
  skip,
}, async () => {
  await initEngine();
  tmpCache();
  const spec = backboneSpec('mobilenet_v1_0.25');
  const t = await buildTransferModel(
    { spec, weights: locateWeights(spec, shared)!, requested: spec.name, fallback: null },
    128,
  );
  const m = t.model;
  assert.deepEqual(m.inputs[0].shape, [null, 128, 128, 1]);
  assert.deepEqual(m.getLayer('last_conv').outputShape, [null, 4, 4, 256]);
  assert.equal(t.placed, 27 * 1 + 27 * 4);
  assert.deepEqual(
    m.trainableWeights.map((w) => w.originalName),
    ['pneumonia/kernel', 'pneumonia/bias'],
  );
  // What Grad-CAM (explain/model_parts) needs: 'last_conv', then a plain chain to Dense(1, sigmoid).
  const names = m.layers.map((l) => l.name);
  assert.deepEqual(names.slice(names.indexOf('last_conv')), ['last_conv', 'gap', 'dropout', 'pneumonia']);
  const body = tfl.model({ inputs: m.inputs, outputs: m.getLayer('last_conv').output as tfl.SymbolicTensor });
  // Gray g gives the same features as the RGB model on (g, g, g)*2-1.
  const gray = tf.tidy(() =>
    tf.div(
      tf.tensor4d(
        Array.from({ length: 2 * 128 * 128 }, (_, i) => (i * 31) % 256),
        [2, 128, 128, 1],
      ),
      255,
    ),
  );
  const rgb = tf.tidy(() => tf.sub(tf.mul(tf.tile(gray, [1, 1, 1, 3]), 2), 1));
  const imagenet = await buildImagenetModel(spec, shared, 128);
  const want = imagenet.predict(rgb) as tf.Tensor;
  const got = body.predict(gray) as tf.Tensor;
  const diff = tf.max(tf.abs(tf.sub(want, got))).dataSync()[0];
  assert.ok(diff < 1e-5, `feature maps differ by ${diff}`);
  tf.dispose([gray, rgb, want, got]);
  imagenet.dispose();
  m.dispose();
});
