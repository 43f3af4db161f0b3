// Parity of the native pooling kernels with tfjs-backend-cpu, forward and gradients.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's node bundle registers no gradients; tfjs-layers' bundle does.
import '@tensorflow/tfjs-layers';
import { nativeMemory } from '../src/index';
import { native } from '../src/native';

type Fn = (x: tf.Tensor, dy: tf.Tensor) => tf.Tensor | tf.Tensor[];

/** Seeded uniform values in [-1, 1); `ties` rounds them to a few levels so windows hold equal maxima. */
function rand(shape: number[], seed: number, ties = false): Float32Array {
  let s = seed;
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, () => {
    const v = (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 31 - 1;
    return ties ? Math.round(v * 2) : v;
  });
}

const counts: Record<string, number> = { maxPoolGradWithIndices: 0 };
const n = native as unknown as Record<string, (...a: unknown[]) => unknown>;
for (const op of ['maxPool', 'avgPool', 'maxPoolGrad', 'avgPoolGrad']) {
  const orig = n[op];
  counts[op] = 0;
  n[op] = (...a: unknown[]) => {
    counts[op]++;
    if (op === 'maxPoolGrad' && a[5] != null) counts.maxPoolGradWithIndices++;
    return orig(...a);
  };
}

async function run(backend: string, x: Float32Array, xShape: number[], dyShape: number[], fn: Fn) {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const out = fn(tf.tensor(x, xShape), tf.tensor(rand(dyShape, 99), dyShape));
    return (Array.isArray(out) ? out : [out]).map((t) => ({ shape: t.shape, values: t.dataSync() as Float32Array }));
  });
}

/** Runs fn on cpu and aten and compares; nativeOp names the native op that must have run. */
async function parity(
  what: string,
  x: Float32Array,
  xShape: number[],
  dyShape: number[],
  fn: Fn,
  nativeOp: string | null,
) {
  const want = await run('cpu', x, xShape, dyShape, fn);
  const before = nativeOp ? counts[nativeOp] : 0;
  const got = await run('aten', x, xShape, dyShape, fn);
  if (nativeOp && counts[nativeOp] === before) assert.fail(`${what}: native ${nativeOp} did not run`);
  for (let k = 0; k < want.length; k++) {
    assert.deepEqual(got[k].shape, want[k].shape, what);
    const a = got[k].values;
    const b = want[k].values;
    for (let i = 0; i < b.length; i++) {
      if (Object.is(a[i], b[i]) || Math.abs(a[i] - b[i]) <= 1e-5 * (1 + Math.abs(b[i]))) continue;
      assert.fail(`${what}: output ${k} [${i}]: aten ${a[i]} vs cpu ${b[i]}`);
    }
  }
}

type Pad = 'same' | 'valid' | number;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;
interface Case {
  x: number[];
  k: number | [number, number];
  s: number | [number, number];
  pad: Pad;
  round?: Rounding;
}

const CASES: Case[] = [
  { x: [3, 9, 7, 5], k: 3, s: 1, pad: 'same' },
  { x: [3, 9, 7, 5], k: 3, s: 2, pad: 'same' },
  { x: [3, 8, 8, 5], k: 3, s: 2, pad: 'same' }, // asymmetric: ceil_mode
  { x: [3, 9, 7, 5], k: 2, s: 2, pad: 'same' },
  { x: [3, 9, 7, 5], k: 2, s: 1, pad: 'same' }, // asymmetric, stride 1: explicit padding
  { x: [2, 10, 9, 3], k: 4, s: 3, pad: 'same' },
  { x: [3, 9, 7, 5], k: 2, s: 2, pad: 'valid' },
  { x: [3, 9, 7, 5], k: [3, 2], s: [2, 1], pad: 'valid' },
  { x: [2, 10, 8, 3], k: 1, s: 2, pad: 'valid' },
  { x: [2, 9, 7, 3], k: 3, s: 2, pad: 1, round: 'ceil' },
  { x: [2, 9, 7, 3], k: 3, s: 2, pad: 1, round: 'floor' },
  { x: [2, 10, 8, 3], k: 3, s: 3, pad: 1, round: 'round' },
  { x: [1, 5, 5, 2], k: 2, s: 1, pad: 2 }, // windows entirely in the padding
];
const label = (c: Case) => `x${c.x} k${c.k} s${c.s} ${c.pad} ${c.round ?? ''}`;
const outShape = (c: Case) =>
  tf.backend_util.computePool2DInfo(c.x as [number, number, number, number], c.k, c.s, 1, c.pad, c.round).outShape;

test('maxPool and avgPool forward: paddings, strides, rounding, windows in the padding', async () => {
  for (const c of CASES) {
    const x = rand(c.x, 5);
    await parity(
      `max ${label(c)}`,
      x,
      c.x,
      [1],
      (t) => tf.maxPool(t as tf.Tensor4D, c.k, c.s, c.pad, c.round),
      'maxPool',
    );
    await parity(
      `avg ${label(c)}`,
      x,
      c.x,
      [1],
      (t) => tf.avgPool(t as tf.Tensor4D, c.k, c.s, c.pad, c.round),
      'avgPool',
    );
  }
});

test('maxPool ignores NaN like tfjs-backend-cpu; avgPool propagates it', async () => {
  const shape = [2, 6, 5, 3];
  const x = rand(shape, 11);
  for (let i = 0; i < x.length; i += 7) x[i] = NaN;
  x.fill(NaN, 0, 3 * 5 * 2); // whole windows of NaN give -Infinity
  for (const c of [
    { k: 2, s: 2, pad: 'same' },
    { k: 3, s: 1, pad: 'valid' },
  ] as const) {
    await parity(`max ${c.k} ${c.s}`, x, shape, [1], (t) => tf.maxPool(t as tf.Tensor4D, c.k, c.s, c.pad), 'maxPool');
    await parity(`avg ${c.k} ${c.s}`, x, shape, [1], (t) => tf.avgPool(t as tf.Tensor4D, c.k, c.s, c.pad), 'avgPool');
  }
  const dyShape = [2, 3, 3, 3];
  await parity(
    'max grad with NaN',
    x,
    shape,
    dyShape,
    (t, dy) => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, 2, 2, 'same'), dy)))(t),
    'maxPoolGrad',
  );
});

test('maxPool and avgPool gradients (MaxPoolGrad / AvgPoolGrad), ties included', async () => {
  for (const c of CASES) {
    if (c.round !== undefined && c.round !== 'floor') continue; // tfjs-core's gradients drop the rounding mode
    for (const ties of [false, true]) {
      const x = rand(c.x, 5, ties);
      const dy = outShape(c);
      await parity(
        `max grad ${label(c)} ties ${ties}`,
        x,
        c.x,
        dy,
        (t, g) =>
          tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, c.k, c.s, c.pad, c.round), g)))(t),
        'maxPoolGrad',
      );
    }
    await parity(
      `avg grad ${label(c)}`,
      rand(c.x, 5),
      c.x,
      outShape(c),
      (t, g) => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.avgPool(a as tf.Tensor4D, c.k, c.s, c.pad, c.round), g)))(t),
      'avgPoolGrad',
    );
  }
});

test('MaxPoolGrad reuses the indices of the forward pass, which are freed with its output', async () => {
  const c = CASES[1];
  const x = rand(c.x, 5);
  const before = counts.maxPoolGradWithIndices;
  await parity(
    'max grad, indices kept',
    x,
    c.x,
    outShape(c),
    (t, g) => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, c.k, c.s, c.pad), g)))(t),
    'maxPoolGrad',
  );
  assert.equal(counts.maxPoolGradWithIndices, before + 1);
  // Outside a gradient no indices are made; inside, they go with the output.
  const bytes = nativeMemory().bytesInUse;
  tf.tidy(() => {
    tf.maxPool(tf.tensor4d(x, c.x as [number, number, number, number]), c.k, c.s, c.pad);
  });
  tf.tidy(() => {
    tf.grad((a: tf.Tensor) => tf.sum(tf.maxPool(a as tf.Tensor4D, c.k, c.s, c.pad)))(tf.tensor(x, c.x));
  });
  assert.equal(nativeMemory().bytesInUse, bytes);
  // A window of -Infinity only has no maximum position: the indices are not used then.
  const inf = x.slice().fill(-Infinity, 0, 2 * c.x[2] * c.x[3]);
  const used = counts.maxPoolGradWithIndices;
  await parity(
    'max grad, -Infinity window',
    inf,
    c.x,
    outShape(c),
    (t, g) => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, c.k, c.s, c.pad), g)))(t),
    'maxPoolGrad',
  );
  assert.equal(counts.maxPoolGradWithIndices, used);
});

test('3-D pooling forward and gradients', async () => {
  const cases: [number[], number, number, Pad][] = [
    [[2, 5, 6, 7, 3], 3, 1, 'same'],
    [[2, 5, 6, 7, 3], 2, 2, 'same'],
    [[2, 6, 5, 4, 3], 3, 2, 'valid'],
    [[1, 5, 5, 5, 2], 1, 3, 'same'],
    [[1, 3, 4, 3, 2], 2, 1, 2], // windows entirely in the padding
  ];
  for (const [shape, k, s, pad] of cases) {
    const x = rand(shape, 3);
    const what = `x${shape} k${k} s${s} ${pad}`;
    const dy = tf.backend_util.computePool3DInfo(
      shape as [number, number, number, number, number],
      k,
      s,
      1,
      pad,
    ).outShape;
    await parity(`max3d ${what}`, x, shape, dy, (t) => tf.maxPool3d(t as tf.Tensor5D, k, s, pad), 'maxPool');
    await parity(`avg3d ${what}`, x, shape, dy, (t) => tf.avgPool3d(t as tf.Tensor5D, k, s, pad), 'avgPool');
    await parity(
      `max3d grad ${what}`,
      x,
      shape,
      dy,
      (t, g) => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool3d(a as tf.Tensor5D, k, s, pad), g)))(t),
      'maxPoolGrad',
    );
    await parity(
      `avg3d grad ${what}`,
      x,
      shape,
      dy,
      (t, g) => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.avgPool3d(a as tf.Tensor5D, k, s, pad), g)))(t),
      'avgPoolGrad',
    );
  }
});

test('a 1x1 window keeping the shape is the identity, as in tfjs-backend-cpu (fallback)', async () => {
  const x = rand([1, 2, 2, 3], 1);
  await parity('max 1x1', x, [1, 2, 2, 3], [1], (t) => tf.maxPool(t as tf.Tensor4D, 1, 2, 1), null);
  await parity('avg 1x1', x, [1, 2, 2, 3], [1], (t) => tf.avgPool(t as tf.Tensor4D, 1, 2, 1), null);
});

test('bad arguments throw a JS Error instead of crashing', async () => {
  const h = native.upload(new Float32Array(2 * 4 * 4 * 3), [2, 4, 4, 3]);
  assert.throws(() => native.maxPool(h, [2, 2], [1], [0, 0, 0, 0], false), /aten\.maxPool/);
  assert.throws(() => native.avgPool(h, [9, 9], [1, 1], [0, 0, 0, 0], false), /aten\.avgPool/);
  assert.throws(() => native.maxPoolGrad(h, h, [2, 2], [2, 2], [0, 0, 0, 0], null), /aten\.maxPoolGrad/);
  native.free(h);
});
