// Half-precision weight files: what is written is what TF.js reads back, rounded to float16.
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { f16round } from '@petamoriken/float16';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../src/engine';
import { encodeFloat16 } from '../src/models/weights_float16';

before(() => initEngine());

const specs: tf.io.WeightsManifestEntry[] = [
  { name: 'w', shape: [2, 3], dtype: 'float32' },
  { name: 'steps', shape: [2], dtype: 'int32' },
  { name: 'var', shape: [3], dtype: 'float32' },
];
const w = Float32Array.from([0.1, -2.5, 1e-5, 2.71, -0.0003, 1000.7]);
const steps = Int32Array.from([7, -123456]);
const variance = Float32Array.from([1e-7, 0.5, 60000]);

function join(...parts: ArrayBufferView[]): ArrayBuffer {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), at);
    at += p.byteLength;
  }
  return out.buffer;
}

test('float32 weights are stored in half the bytes and decode to their float16 rounding; int32 passes', () => {
  const data = join(w, steps, variance);
  const enc = encodeFloat16(specs, data);
  assert.equal(enc.data.byteLength, 6 * 2 + 2 * 4 + 3 * 2);
  assert.deepEqual(
    enc.specs.map((s) => s.quantization?.dtype ?? null),
    ['float16', null, 'float16'],
  );
  const decoded = tf.io.decodeWeights(enc.data, enc.specs);
  assert.deepEqual(Array.from(decoded.w.dataSync()), Array.from(w, f16round));
  assert.deepEqual(Array.from(decoded.steps.dataSync()), Array.from(steps));
  assert.deepEqual(Array.from(decoded.var.dataSync()), Array.from(variance, f16round));
  // The rounding is small where weights live: relative error under 2^-11 for normal float16 values.
  for (const x of [0.1, -2.5, 2.71, 1000.7]) assert.ok(Math.abs(f16round(x) - x) <= Math.abs(x) * 2 ** -11);
  tf.dispose(Object.values(decoded));
});

test('a weight beyond float16, a size mismatch or an already quantised weight is refused', () => {
  const big = Float32Array.from([1e6]);
  assert.throws(() => encodeFloat16([{ name: 'b', shape: [1], dtype: 'float32' }], join(big)), /beyond float16/);
  assert.throws(() => encodeFloat16(specs, join(w, steps)), /out of bounds|holds|Offset|length/i);
  assert.throws(
    () => encodeFloat16([{ name: 'q', shape: [1], dtype: 'float32', quantization: { dtype: 'float16' } }], join(big)),
    /already quantised/,
  );
});
