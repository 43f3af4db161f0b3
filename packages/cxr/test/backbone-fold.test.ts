// The compiled frozen backbone (batch norm folded into fused convolutions) computes the same
// features as the layers model, for all three architectures.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine } from '../src/engine';
import { backboneSpec, buildTransferModel, InferenceBatchNorm, locateWeights } from '../src/models/backbones';
import { compileFrozen } from '../src/models/backbones/fold';
import { MOBILENET_025, needsData } from './shared-data';

const skip = needsData(MOBILENET_025);

const shared = MOBILENET_025;

function compare(model: tfl.LayersModel, output: string, size: number, channels: number, expectFolded: number): void {
  const compiled = compileFrozen(model, output)!;
  assert.ok(compiled, 'not compiled');
  assert.equal(compiled.folded, expectFolded);
  const x = tf.randomUniform([3, size, size, channels], 0, 1, 'float32', 7);
  const layers = tfl.model({ inputs: model.inputs, outputs: model.getLayer(output).output as tfl.SymbolicTensor });
  const a = layers.predict(x) as tf.Tensor;
  const b = compiled.predict(x);
  assert.deepEqual(b.shape, a.shape);
  const diff = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
  const scale = tf.max(tf.abs(a)).dataSync()[0];
  assert.ok(diff <= 1e-4 * Math.max(1, scale), `max abs diff ${diff} (values up to ${scale})`);
  tf.dispose([x, a, b]);
  compiled.dispose();
}

test('MobileNet v1 0.25 transfer model: pooled features of the compiled backbone match the layers model', {
  skip,
}, async () => {
  await initEngine();
  const spec = backboneSpec('mobilenet_v1_0.25');
  const t = await buildTransferModel(
    { spec, weights: locateWeights(spec, shared)!, requested: spec.name, fallback: null },
    160,
  );
  compare(t.model, 'gap', 160, 1, 27);
  t.model.dispose();
});

for (const [name, size, convs] of [
  ['mobilenet_v2_0.35', 96, 52],
  ['inception_v3', 75, 94],
] as const) {
  test(`${name}: compiled feature map matches, with non-trivial batch-norm statistics`, async () => {
    await initEngine();
    const spec = backboneSpec(name);
    const input = tfl.input({ shape: [size, size, 3] });
    const model = tfl.model({ inputs: input, outputs: spec.build(input).output });
    let seed = 1;
    for (const l of model.layers) {
      if (!(l instanceof InferenceBatchNorm)) continue;
      l.setWeights(
        l.weights.map((v) => {
          const short = v.originalName.split('/').pop();
          const n = v.shape[0] as number;
          return short === 'moving_variance'
            ? tf.randomUniform([n], 0.5, 2, 'float32', seed++)
            : short === 'gamma'
              ? tf.randomUniform([n], 0.5, 1.5, 'float32', seed++)
              : tf.randomUniform([n], -0.2, 0.2, 'float32', seed++);
        }),
      );
    }
    compare(model, spec.featureLayer, size, 3, convs);
    model.dispose();
  });
}
