// useNativeRelu6: tfjs-layers' relu6 activation as one native kernel each way on aten, against
// tfjs-layers' own minimum(6, relu(x)) on the cpu backend.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { useNativeRelu6 } from '../src/index';
import { parity, rng } from './parity';

rng.state = 23;
function rand(shape: number[], lo = -2, hi = 8): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Array.from({ length: n }, () => lo + (hi - lo) * (rng.next() / 2 ** 32)),
    shape,
  );
}

/** Forward and input gradient of a relu6 Activation layer, on whichever backend is current. */
function relu6Both(x: tf.Tensor, dy: tf.Tensor): tf.Tensor[] {
  const layer = tfl.layers.activation({ activation: 'relu6' });
  const y = layer.apply(x) as tf.Tensor;
  const dx = tf.grad((a: tf.Tensor) => layer.apply(a) as tf.Tensor)(x, dy);
  return [y, dx];
}

/** Values of the outputs on a backend. */
async function valuesOn(backend: string, f: () => tf.Tensor[]): Promise<number[][]> {
  await tf.setBackend(backend);
  const outs = tf.tidy(f);
  const values = outs.map((t) => Array.from(t.dataSync()));
  tf.dispose(outs);
  return values;
}

test('relu6 activation: one kernel each way on aten, the same values as tfjs-layers on cpu', async () => {
  useNativeRelu6();
  useNativeRelu6();
  // Random inputs around the two corners, trained through a conv layer as a model would.
  await parity(() => {
    const x = rand([2, 5, 5, 3]);
    return [...relu6Both(x, rand([2, 5, 5, 3], -1, 1))];
  }, 0);
  // The corners themselves, NaN, and infinite gradients: exactly what the composition gives (zeros
  // compare equal whatever their sign: ATen's relu already kept -0 where cpu's gives 0).
  const special = () => {
    const x = tf.tensor([-1, 0, -0, 1e-30, 3, 6, 6.000001, 5.999999, 7, NaN, 6, 0, -3, 2]);
    const dy = tf.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, Infinity, -Infinity, NaN, -Infinity]);
    return relu6Both(x, dy);
  };
  const cpu = await valuesOn('cpu', special);
  const aten = await valuesOn('aten', special);
  cpu.forEach((want, k) =>
    want.forEach((w, i) => {
      const a = aten[k][i];
      assert.ok(a === w || (Number.isNaN(a) && Number.isNaN(w)), `output ${k}[${i}]: aten ${a}, cpu ${w}`);
    }),
  );
  // At x = 6 the gradient is 0, as in TF's Relu6Grad and tfjs-layers (tfjs-core's tf.relu6 passes dy).
  assert.equal(aten[1][5], 0);
  assert.equal(aten[1][7], 8);

  await tf.setBackend('aten');
  const { kernelNames } = await tf.profile(() => {
    tf.dispose(relu6Both(rand([4, 4]), rand([4, 4])));
  });
  assert.ok(kernelNames.includes('AtenRelu6') && kernelNames.includes('AtenRelu6Grad'), kernelNames.join(','));
  for (const composite of ['Minimum', 'Greater', 'Relu', 'AtenReluGrad'])
    assert.ok(!kernelNames.includes(composite), kernelNames.join(','));
});

test('relu6 activation: a saved config is unchanged, and higher-order gradients take the composition', async () => {
  useNativeRelu6();
  await tf.setBackend('aten');
  const model = tfl.sequential({
    layers: [tfl.layers.dense({ inputShape: [3], units: 2, activation: 'relu6' })],
  });
  const config = model.getConfig() as unknown as { layers: Array<{ config: { activation: string } }> };
  assert.equal(config.layers[0].config.activation, 'relu6');
  model.dispose();
  // A gradient of a gradient runs the composition, which fails as it does on cpu (Greater has no
  // gradient in tfjs-core), rather than reaching the native backward, which has none either.
  const layer = tfl.layers.activation({ activation: 'relu6' });
  const second = () =>
    tf.tidy(() =>
      tf.grad((a: tf.Tensor) => tf.sum(tf.grad((b: tf.Tensor) => tf.mul(layer.apply(b) as tf.Tensor, b))(a)))(
        tf.tensor([-1, 2, 7]),
      ),
    );
  for (const backend of ['cpu', 'aten']) {
    await tf.setBackend(backend);
    assert.throws(second, /gradient function not found for Greater/);
  }
});
