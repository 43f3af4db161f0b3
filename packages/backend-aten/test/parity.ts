// Shared by the parity tests: a seeded generator and a cpu-vs-aten comparison that replays the
// same random inputs on both backends.
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { AtenBackend } from '../src/backend';

/** LCG state shared by a test file's input generators; parity() rewinds it between backends. */
export const rng = {
  state: 1,
  /** The next 32-bit unsigned value. */
  next(): number {
    this.state = (this.state * 1664525 + 1013904223) >>> 0;
    return this.state;
  },
};

type Out = tf.Tensor | tf.Tensor[];

/** Runs f on cpu and on aten from the same generator state and compares every output. */
export async function parity(f: () => Out, tol = 1e-4, expectNative = true): Promise<void> {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const start = rng.state;
    const outs = ([] as tf.Tensor[]).concat(tf.tidy(f));
    rng.state = start;
    const native = outs.map(
      (t) => backend !== 'aten' || (tf.backend() as AtenBackend).data.raw(t.dataId).handle != null,
    );
    const res = outs.map((t) => ({ shape: t.shape, dtype: t.dtype, values: Array.from(t.dataSync()) }));
    tf.dispose(outs);
    return { res, native };
  };
  const cpu = await run('cpu');
  const aten = await run('aten');
  rng.state += 7;
  if (expectNative)
    assert.ok(
      aten.native.every((n) => n),
      'expected native outputs',
    );
  assert.equal(aten.res.length, cpu.res.length);
  cpu.res.forEach((e, i) => {
    const a = aten.res[i];
    assert.deepEqual(a.shape, e.shape);
    assert.equal(a.dtype, e.dtype);
    a.values.forEach((v, j) => {
      const w = e.values[j];
      const ok = Number.isNaN(w) ? Number.isNaN(v) : Math.abs(v - w) <= tol * (1 + Math.abs(w));
      assert.ok(ok, `output ${i}[${j}]: aten ${v}, cpu ${w}`);
    });
  });
}

/** Kernels that ran through the cpu fallback on aten since the test file loaded. */
export const fellBack = new Set<string>();
const originalFallback = AtenBackend.prototype.fallback;
AtenBackend.prototype.fallback = function (name, args) {
  fellBack.add(name);
  return originalFallback.call(this, name, args);
};

/** n seeded values in [-1, 1). */
export function seq(n: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 31 - 1);
}
export const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
