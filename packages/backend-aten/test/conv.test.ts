// Parity of the native convolution kernels with tfjs-backend-cpu, forward and gradients.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's node bundle registers no gradients; tfjs-layers' bundle does.
import '@tensorflow/tfjs-layers';
import '../src/index';
import { native } from '../src/native';

type Inputs = Record<string, number[]>;
type Fn = (t: Record<string, tf.Tensor>) => tf.Tensor | tf.Tensor[];

/** Seeded uniform values in [-1, 1). */
function rand(shape: number[], seed: number): Float32Array {
  let s = seed;
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 31 - 1);
}

/** Counts calls of a native op so that a test can tell native runs from cpu fallbacks. */
function calls(op: string): () => number {
  const n = native as unknown as Record<string, (...a: unknown[]) => unknown>;
  const orig = n[op];
  let count = 0;
  n[op] = (...a: unknown[]) => {
    count++;
    return orig(...a);
  };
  return () => count;
}
const counters = Object.fromEntries(['conv', 'convBackpropInput', 'convBackpropFilter'].map((op) => [op, calls(op)]));

async function run(backend: string, inputs: Inputs, fn: Fn) {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const ts = Object.fromEntries(
      Object.entries(inputs).map(([k, shape], i) => [k, tf.tensor(rand(shape, 7 + 31 * i), shape)]),
    );
    const out = fn(ts);
    return (Array.isArray(out) ? out : [out]).map((t) => ({ shape: t.shape, values: t.dataSync() as Float32Array }));
  });
}

/** Runs fn on cpu and aten and compares; `native` names the native op that must have run. */
async function parity(inputs: Inputs, fn: Fn, nativeOp: string | null = 'conv', tol = 1e-4) {
  const want = await run('cpu', inputs, fn);
  const before = nativeOp ? counters[nativeOp]() : 0;
  const got = await run('aten', inputs, fn);
  if (nativeOp) assert.ok(counters[nativeOp]() > before, `native ${nativeOp} did not run`);
  assert.equal(got.length, want.length);
  for (let k = 0; k < want.length; k++) {
    assert.deepEqual(got[k].shape, want[k].shape);
    const a = got[k].values;
    const b = want[k].values;
    for (let i = 0; i < b.length; i++) {
      if (Number.isNaN(b[i]) && Number.isNaN(a[i])) continue;
      if (!(Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])))) {
        assert.fail(`output ${k} [${i}]: aten ${a[i]} vs cpu ${b[i]} (shape ${want[k].shape})`);
      }
    }
  }
}

type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
type Rounding = 'floor' | 'round' | 'ceil' | undefined;
interface Case {
  x: number[];
  f: number[];
  s: number | [number, number];
  pad: Pad;
  d?: number;
  round?: Rounding;
}

const CASES: Case[] = [
  { x: [1, 5, 5, 1], f: [3, 3, 1, 1], s: 1, pad: 'valid' },
  { x: [3, 9, 7, 5], f: [3, 3, 5, 4], s: 1, pad: 'same' },
  { x: [3, 9, 7, 5], f: [3, 3, 5, 4], s: 2, pad: 'same' },
  { x: [3, 8, 8, 5], f: [3, 3, 5, 4], s: 2, pad: 'same' },
  { x: [3, 9, 7, 5], f: [2, 2, 5, 3], s: 1, pad: 'same' },
  { x: [2, 10, 9, 3], f: [4, 4, 3, 2], s: 2, pad: 'same' },
  { x: [3, 9, 7, 5], f: [3, 2, 5, 4], s: [2, 1], pad: 'valid' },
  { x: [2, 10, 8, 3], f: [3, 3, 3, 6], s: 3, pad: 'valid' },
  { x: [3, 9, 7, 5], f: [1, 1, 5, 4], s: 1, pad: 'valid' },
  {
    x: [2, 9, 7, 3],
    f: [3, 3, 3, 4],
    s: 2,
    pad: [
      [0, 0],
      [1, 2],
      [0, 3],
      [0, 0],
    ],
  },
  { x: [2, 9, 7, 3], f: [3, 3, 3, 4], s: 2, pad: 1, round: 'ceil' },
  { x: [2, 9, 7, 3], f: [3, 3, 3, 4], s: 2, pad: 2, round: 'floor' },
  { x: [2, 10, 8, 3], f: [3, 2, 3, 4], s: 3, pad: 1, round: 'round' },
];
const DILATED: Case[] = [
  { x: [3, 9, 7, 5], f: [3, 3, 5, 4], s: 1, pad: 'same', d: 2 },
  { x: [2, 11, 10, 3], f: [2, 3, 3, 2], s: 1, pad: 'valid', d: 2 },
  { x: [2, 11, 10, 3], f: [2, 2, 3, 2], s: 1, pad: 'same', d: 3 },
];
const label = (c: Case) => `x${c.x} f${c.f} s${c.s} ${JSON.stringify(c.pad)} d${c.d ?? 1} ${c.round ?? ''}`;
const outShape = (c: Case, depthwise = false) =>
  tf.backend_util.computeConv2DInfo(
    c.x as [number, number, number, number],
    c.f as [number, number, number, number],
    c.s,
    c.d ?? 1,
    c.pad,
    c.round,
    depthwise,
  ).outShape;

test('conv2d forward: paddings, strides, dilations, rounding modes', async () => {
  for (const c of [...CASES, ...DILATED]) {
    await parity({ x: c.x, f: c.f }, (t) =>
      tf.conv2d(t.x as tf.Tensor4D, t.f as tf.Tensor4D, c.s, c.pad, 'NHWC', c.d ?? 1, c.round),
    ).catch((e) => assert.fail(`${label(c)}: ${e.message}`));
  }
});

test('conv2d gradients (Conv2DBackpropInput / Conv2DBackpropFilter)', async () => {
  for (const c of CASES) {
    const dy = outShape(c);
    await parity(
      { x: c.x, f: c.f, dy },
      (t) =>
        tf.grads((x: tf.Tensor, f: tf.Tensor) =>
          tf.sum(tf.mul(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.s, c.pad, 'NHWC', 1, c.round), t.dy)),
        )([t.x, t.f]),
      'convBackpropFilter',
    ).catch((e) => assert.fail(`${label(c)}: ${e.message}`));
  }
});

test('conv2dTranspose runs Conv2DBackpropInput natively', async () => {
  await parity(
    { x: [3, 5, 4, 6], f: [3, 3, 2, 6] },
    (t) => tf.conv2dTranspose(t.x as tf.Tensor4D, t.f as tf.Tensor4D, [3, 10, 8, 2], 2, 'same'),
    'convBackpropInput',
  );
  await parity(
    { x: [2, 4, 4, 3], f: [2, 2, 5, 3] },
    (t) => tf.conv2dTranspose(t.x as tf.Tensor4D, t.f as tf.Tensor4D, [2, 8, 8, 5], 2, 'valid'),
    'convBackpropInput',
  );
});

/** The filter with d-1 zeros between taps: a dilated convolution is a plain one with it. */
function zeroInserted(f: tf.Tensor, d: number): tf.Tensor {
  const [kh, kw, c, m] = f.shape;
  const [eh, ew] = [(kh - 1) * d + 1, (kw - 1) * d + 1];
  const src = f.dataSync();
  const out = new Float32Array(eh * ew * c * m);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++)
      out.set(src.subarray((i * kw + j) * c * m, (i * kw + j + 1) * c * m), (i * d * ew + j * d) * c * m);
  }
  return tf.tensor4d(out, [eh, ew, c, m]);
}

// tfjs-core's gradients refuse dilations, and tfjs-backend-cpu's depthwise backprop kernels
// ignore them in their loops, so the reference is the cpu kernel run on the zero-inserted filter.
test('dilated depthwise backprop kernels (called directly)', async () => {
  for (const c of DILATED) {
    const d = c.d!;
    const f = [c.f[0], c.f[1], c.x[3], 2];
    const dy = outShape({ ...c, f }, true);
    const eff = [(f[0] - 1) * d + 1, (f[1] - 1) * d + 1, f[2], f[3]];
    const attrs = { strides: c.s, pad: c.pad, dilations: d } as unknown as tf.NamedAttrMap;
    const cpu = () => tf.getBackend() === 'cpu';
    await parity(
      { x: c.x, dy },
      (t) => {
        if (!cpu()) {
          return tf
            .engine()
            .runKernel(
              'DepthwiseConv2dNativeBackpropFilter',
              { x: t.x, dy: t.dy },
              { ...attrs, filterShape: f },
            ) as tf.Tensor;
        }
        const g = tf
          .engine()
          .runKernel(
            'DepthwiseConv2dNativeBackpropFilter',
            { x: t.x, dy: t.dy },
            { ...attrs, dilations: 1, filterShape: eff },
          ) as tf.Tensor;
        return tf.stridedSlice(g, [0, 0, 0, 0], eff, [d, d, 1, 1]);
      },
      'convBackpropFilter',
    );
    await parity(
      { dy, f },
      (t) =>
        tf
          .engine()
          .runKernel(
            'DepthwiseConv2dNativeBackpropInput',
            { dy: t.dy, filter: cpu() ? zeroInserted(t.f, d) : t.f },
            { ...attrs, dilations: cpu() ? 1 : d, inputShape: c.x },
          ) as tf.Tensor,
      'convBackpropInput',
    );
  }
});

test('depthwiseConv2d forward and gradients, channel multipliers 1 and 3', async () => {
  for (const c of [...CASES, ...DILATED]) {
    if (c.pad === 'valid' && c.f[0] === 1) continue;
    for (const m of [1, 3]) {
      const f = [c.f[0], c.f[1], c.x[3], m];
      const s = c.d ? 1 : c.s;
      const dc = { ...c, f, s };
      const conv = (x: tf.Tensor, w: tf.Tensor) =>
        tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, s, c.pad, 'NHWC', c.d ?? 1, c.round);
      await parity({ x: c.x, f }, (t) => conv(t.x, t.f)).catch((e) => assert.fail(`${label(dc)}: ${e.message}`));
      if (c.d) continue;
      await parity(
        { x: c.x, f, dy: outShape(dc, true) },
        (t) => tf.grads((x: tf.Tensor, w: tf.Tensor) => tf.sum(tf.mul(conv(x, w), t.dy)))([t.x, t.f]),
        'convBackpropFilter',
      ).catch((e) => assert.fail(`grad ${label(dc)}: ${e.message}`));
    }
  }
});

test('separableConv2d forward and gradients', async () => {
  for (const [s, pad] of [
    [1, 'same'],
    [2, 'same'],
    [1, 'valid'],
  ] as const) {
    const fn = (x: tf.Tensor, dw: tf.Tensor, pw: tf.Tensor) =>
      tf.separableConv2d(x as tf.Tensor4D, dw as tf.Tensor4D, pw as tf.Tensor4D, s, pad);
    await parity({ x: [3, 9, 8, 5], dw: [3, 3, 5, 2], pw: [1, 1, 10, 4] }, (t) => fn(t.x, t.dw, t.pw));
    await parity(
      { x: [3, 9, 8, 5], dw: [3, 3, 5, 2], pw: [1, 1, 10, 4] },
      (t) =>
        tf.grads((x: tf.Tensor, dw: tf.Tensor, pw: tf.Tensor) => tf.sum(tf.square(fn(x, dw, pw))))([t.x, t.dw, t.pw]),
      'convBackpropFilter',
      3e-4,
    );
  }
});

const ACTIVATIONS = ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu', 'prelu'] as const;

test('fused conv2d and depthwiseConv2d: bias and every activation', async () => {
  const x = [3, 9, 7, 5];
  for (const depthwise of [false, true]) {
    const f = depthwise ? [3, 3, 5, 2] : [3, 3, 5, 4];
    const outC = depthwise ? 10 : 4;
    for (const activation of ACTIVATIONS) {
      for (const bias of [[outC], [1], [1, 1, outC], undefined]) {
        const inputs: Inputs = { x, f, alpha: [outC] };
        if (bias) inputs.bias = bias;
        const op = depthwise ? tf.fused.depthwiseConv2d : tf.fused.conv2d;
        // x is scaled so that relu6 clips.
        await parity(inputs, (t) =>
          op({
            x: tf.mul(t.x, 4) as tf.Tensor4D,
            filter: t.f as tf.Tensor4D,
            strides: 2,
            pad: 'same',
            bias: t.bias,
            activation,
            preluActivationWeights: activation === 'prelu' ? t.alpha : undefined,
            leakyreluAlpha: 0.3,
          }),
        ).catch((e) => assert.fail(`${depthwise ? 'depthwise ' : ''}${activation} bias ${bias}: ${e.message}`));
      }
    }
  }
});

test('fused conv2d gradients (bias + relu) go through the native backprop kernels', async () => {
  for (const activation of ['linear', 'relu', 'elu'] as const) {
    await parity(
      { x: [3, 9, 7, 5], f: [3, 3, 5, 4], bias: [4], dy: [3, 5, 4, 4] },
      (t) =>
        tf.grads((x: tf.Tensor, f: tf.Tensor, b: tf.Tensor) =>
          tf.sum(
            tf.mul(
              tf.fused.conv2d({
                x: x as tf.Tensor4D,
                filter: f as tf.Tensor4D,
                strides: 2,
                pad: 'same',
                bias: b,
                activation,
              }),
              t.dy,
            ),
          ),
        )([t.x, t.f, t.bias]),
      'convBackpropInput',
    );
  }
});

test('conv3d forward and gradients', async () => {
  const cases: [number[], number[], number, 'same' | 'valid', number][] = [
    [[2, 5, 6, 7, 3], [3, 3, 3, 3, 4], 1, 'same', 1],
    [[2, 5, 6, 7, 3], [2, 3, 2, 3, 4], 2, 'same', 1],
    [[2, 6, 7, 5, 3], [1, 1, 1, 3, 2], 3, 'same', 1],
    [[1, 6, 7, 8, 2], [3, 2, 3, 2, 3], 2, 'valid', 1],
    [[1, 7, 7, 7, 2], [2, 2, 2, 2, 3], 1, 'same', 2],
  ];
  for (const [x, f, s, pad, d] of cases) {
    const fn = (a: tf.Tensor, w: tf.Tensor) => tf.conv3d(a as tf.Tensor5D, w as tf.Tensor5D, s, pad, 'NDHWC', d);
    await parity({ x, f }, (t) => fn(t.x, t.f));
    if (d === 1)
      await parity(
        { x, f },
        (t) => tf.grads((a: tf.Tensor, w: tf.Tensor) => tf.sum(tf.square(fn(a, w))))([t.x, t.f]),
        'convBackpropFilter',
        3e-4,
      );
  }
});

test('NCHW data falls back to the cpu kernel', async () => {
  await parity(
    { x: [2, 3, 6, 5], f: [3, 3, 3, 2] },
    (t) => tf.conv2d(t.x as tf.Tensor4D, t.f as tf.Tensor4D, 1, 'same', 'NCHW'),
    null,
  );
});

test('bad shapes throw a JS Error instead of crashing', async () => {
  await tf.setBackend('aten');
  const x = tf.ones([1, 5, 5, 3]);
  const f = tf.ones([3, 3, 4, 2]); // 4 input channels for a 3-channel input
  assert.throws(
    () =>
      tf.engine().runKernel('Conv2D', { x, filter: f }, { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1 }),
    /aten\.conv/,
  );
  assert.throws(
    () =>
      tf
        .engine()
        .runKernel(
          'Conv2DBackpropInput',
          { dy: tf.ones([1, 5, 5, 2]), filter: f },
          { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: [1, 5, 5, 3] },
        ),
    /aten\.convBackpropInput/,
  );
  const h = native.upload(new Float32Array(4), [2, 2]);
  assert.throws(() => native.conv(h, h, [1, 1], [1, 1], [0, 0, 0, 0], 1), Error);
  native.free(h);
  tf.dispose([x, f]);
});
