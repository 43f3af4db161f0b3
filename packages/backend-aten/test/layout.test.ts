// Parity of the native layout kernels with tfjs-backend-cpu: slicing, joining, padding,
// gathering and constants, on float32/int32/bool, odd sizes and negative axes.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers'; // registers tfjs-core's gradient functions
import '../src/index';
import { fellBack, seq, size } from './parity';
import { native } from '../src/native';

type Out = { shape: number[]; dtype: string; values: ArrayLike<number> };
type Fn = () => tf.Tensor | tf.Tensor[];

const floats = (shape: number[], seed = 1) => tf.tensor(seq(size(shape), seed), shape);
const ints = (shape: number[], seed = 2) =>
  tf.tensor(
    seq(size(shape), seed).map((v) => Math.round(v * 50)),
    shape,
    'int32',
  );
const bools = (shape: number[], seed = 3) =>
  tf.tensor(
    seq(size(shape), seed).map((v) => (v > 0 ? 1 : 0)),
    shape,
    'bool',
  );

async function run(backend: string, fn: Fn): Promise<Out[]> {
  await tf.setBackend(backend);
  const outs: Out[] = [];
  tf.tidy(() => {
    for (const t of [fn()].flat())
      outs.push({ shape: t.shape, dtype: t.dtype, values: t.dataSync() as ArrayLike<number> });
  });
  return outs;
}

/** fn on cpu and on aten must agree; the `kernels` named must have run natively on aten. */
async function parity(fn: Fn, kernels: string[], tol = 1e-6) {
  const want = await run('cpu', fn);
  fellBack.clear();
  const got = await run('aten', fn);
  for (const k of kernels) assert.ok(!fellBack.has(k), `${k} fell back to the cpu kernel`);
  assert.equal(got.length, want.length);
  want.forEach((w, k) => {
    assert.deepEqual(got[k].shape, w.shape, `output ${k} shape`);
    assert.equal(got[k].dtype, w.dtype, `output ${k} dtype`);
    assert.equal(got[k].values.length, w.values.length);
    for (let i = 0; i < w.values.length; i++) {
      const a = got[k].values[i],
        b = w.values[i];
      if (Number.isNaN(a) && Number.isNaN(b)) continue;
      if (!(Math.abs(a - b) <= tol * (1 + Math.abs(b)))) assert.fail(`output ${k} [${i}]: aten ${a} vs cpu ${b}`);
    }
  });
}

test('reshape, expandDims, squeeze and identity are views of the same data', async () => {
  await tf.setBackend('aten');
  const before = tf.engine().backend.numDataIds();
  tf.tidy(() => {
    const x = floats([2, 3, 4]);
    for (const y of [tf.reshape(x, [4, -1]), tf.expandDims(x, -1), tf.squeeze(tf.expandDims(x, 0)), tf.clone(x)]) {
      assert.equal(y.dataId, x.dataId);
    }
    assert.deepEqual(tf.reshape(x, [-1]).shape, [24]);
    assert.throws(() => tf.reshape(x, [5, -1]));
  });
  assert.equal(tf.engine().backend.numDataIds(), before);
  await parity(
    () => [tf.reshape(ints([3, 5]), [5, 3]), tf.expandDims(bools([3]), 1), tf.squeeze(floats([1, 3, 1]), [0])],
    ['Reshape', 'ExpandDims'],
  );
});

test('transpose', async () => {
  await parity(
    () => [
      tf.transpose(floats([3, 5, 7]), [2, 0, 1]),
      tf.transpose(ints([4, 3])),
      tf.transpose(bools([2, 3, 1, 2]), [3, 1, 0, 2]),
    ],
    ['Transpose'],
  );
});

test('slice: -1 sizes, inner dimensions, dtypes', async () => {
  await parity(
    () => [
      tf.slice(floats([5, 7, 3]), [1, 2, 0], [-1, 3, 2]),
      tf.slice(floats([5, 7]), [2], [2]),
      tf.slice(ints([9]), 4),
      tf.slice(bools([3, 4]), [0, 1], [3, 2]),
      tf.slice(floats([4, 3]), [0, 0], [0, 3]),
    ],
    ['Slice'],
  );
});

test('stridedSlice: negative strides, masks, new and shrunk axes', async () => {
  const x = () => floats([5, 6, 7]);
  await parity(
    () => [
      tf.stridedSlice(x(), [1, 0, 2], [4, 6, 7], [1, 2, 3]),
      tf.stridedSlice(x(), [-1, -2, 5], [0, 0, 0], [-1, -2, -2]),
      tf.stridedSlice(x(), [0, 1, 0], [0, 5, 0], [1, 1, 1], 5, 5),
      tf.stridedSlice(x(), [2, 1], [3, 4], [1, 1], 0, 0, 0, 0, 1),
      tf.stridedSlice(x(), [0, 3], [0, 4], [1, 1], 0, 0, 1, 0, 2),
      tf.stridedSlice(x(), [0, 0, 0], [5, 6, 7], [1, 1, 1], 0, 0, 0, 2),
      tf.stridedSlice(ints([9]), [-1], [-10], [-3]),
      tf.stridedSlice(bools([4, 4]), [1, 3], [4, 0], [2, -1]),
    ],
    ['StridedSlice'],
  );
  // Where the cpu kernel is wrong, aten follows TensorFlow: begin > end is an empty slice (cpu
  // throws), and a shrunk axis with other strides != 1 equals squeezing the unshrunk slice (cpu
  // indexes the input with the output's reduced rank).
  await parity(() => tf.stridedSlice(x(), [1, 0, 0], [2, 6, 7], [1, 2, 3]), ['StridedSlice']);
  await tf.setBackend('aten');
  tf.tidy(() => {
    assert.deepEqual(tf.stridedSlice(x(), [4, 0, 0], [1, 6, 7], [1, 1, 1]).shape, [0, 6, 7]);
    const shrunk = tf.stridedSlice(x(), [1, 0, 0], [2, 6, 7], [1, 2, 3], 0, 0, 0, 0, 1);
    assert.deepEqual(
      shrunk.arraySync(),
      tf.squeeze(tf.stridedSlice(x(), [1, 0, 0], [2, 6, 7], [1, 2, 3]), [0]).arraySync(),
    );
  });
});

test('concat and stack: negative axes, empty inputs, dtypes', async () => {
  await parity(
    () => [
      tf.concat([floats([2, 3, 4], 1), floats([2, 1, 4], 2), floats([2, 5, 4], 3)], 1),
      tf.concat([ints([3, 2]), ints([3, 5])], -1),
      tf.concat([floats([0, 3]), floats([2, 3])], 0),
      tf.concat([bools([2]), bools([3])]),
      tf.stack([floats([2, 3], 1), floats([2, 3], 2), floats([2, 3], 3)], -1),
      tf.stack([ints([4]), ints([4], 9)], 0),
      tf.stack([bools([2, 2])], 1),
    ],
    ['Concat', 'Pack'],
  );
});

test('unstack and split', async () => {
  await parity(
    () => [
      ...tf.unstack(floats([3, 4, 2]), 1),
      ...tf.unstack(ints([2, 3]), -1),
      ...tf.split(floats([4, 9]), 3, 1),
      ...tf.split(ints([7, 2]), [2, -1, 1], 0),
      ...tf.split(bools([2, 5]), [2, 3], -1),
    ],
    ['Unpack', 'SplitV'],
  );
});

test('tile, broadcastTo, pad and mirrorPad', async () => {
  await parity(
    () => [
      tf.tile(floats([2, 3]), [3, 2]),
      tf.tile(bools([3]), [4]),
      tf.broadcastTo(ints([3, 1]), [2, 3, 5]),
      tf.pad(
        floats([3, 4]),
        [
          [1, 2],
          [0, 3],
        ],
        1.5,
      ),
      tf.pad(
        ints([2, 3, 2]),
        [
          [0, 0],
          [2, 1],
          [1, 1],
        ],
        -7,
      ),
      tf.mirrorPad(
        floats([4, 5]),
        [
          [2, 3],
          [1, 4],
        ],
        'symmetric',
      ),
      tf.mirrorPad(
        floats([4, 5]),
        [
          [3, 1],
          [4, 0],
        ],
        'reflect',
      ),
      tf.mirrorPad(
        ints([3, 2, 4]),
        [
          [1, 1],
          [0, 1],
          [3, 2],
        ],
        'reflect',
      ),
    ],
    ['Tile', 'PadV2', 'MirrorPad'],
  );
});

test('gather and gatherND', async () => {
  const idx = (values: number[], shape: number[]) => tf.tensor(values, shape, 'int32');
  await parity(
    () => [
      tf.gather(floats([5, 3]), idx([4, 0, 0, 2], [4])),
      tf.gather(floats([2, 6, 3]), idx([5, 1, 3, 0, 2, 2], [2, 3]), 1),
      tf.gather(ints([3, 4]), idx([3, 1], [2]), -1),
      tf.gather(bools([4, 2]), idx([], [0])),
      tf.gatherND(floats([3, 4, 2]), idx([2, 1, 0, 3, 1, 1], [3, 2])),
      tf.gatherND(ints([3, 4]), idx([2, 0], [2, 1])),
      tf.gatherND(floats([2, 3]), idx([0, 4], [1, 2])), // TF.js only checks the flattened index
    ],
    ['GatherV2', 'GatherNd'],
  );
});

test('out-of-range gather indices and bad shapes throw JS errors instead of crashing', async () => {
  await tf.setBackend('aten');
  const x = floats([3, 4]);
  assert.throws(() => tf.gather(x, tf.tensor1d([3], 'int32')), /GatherV2: the index value 3 is not in \[0, 2\]/);
  assert.throws(() => tf.gather(x, tf.tensor1d([-1], 'int32'), 1), /GatherV2: the index value -1/);
  assert.throws(() => tf.gatherND(x, tf.tensor2d([[3, 0]], [1, 2], 'int32')));
  assert.throws(() => tf.transpose(x, [0, 0]));
  assert.throws(() => tf.concat([x, floats([2, 3])], 0));
  assert.throws(() => tf.einsum('ii->i', floats([3, 3])), /duplicate axes/);
  const h = native as unknown as Record<string, (...a: unknown[]) => unknown>;
  assert.throws(() => h.transpose(native.scalar(1, 'float32'), [1, 0]), /aten\.transpose/);
  assert.throws(() => h.slice(native.scalar(1, 'float32'), [0], [5]), /aten\.slice/);
  assert.throws(() => h.stack([], 0), /aten\.stack/);
  x.dispose();
});

test('reverse and oneHot', async () => {
  await parity(
    () => [
      tf.reverse(floats([3, 4, 5]), [0, -1]),
      tf.reverse(ints([7])),
      tf.reverse(bools([2, 3]), 1),
      tf.reverse(tf.scalar(3)),
      tf.oneHot(tf.tensor1d([0, 3, -1, 2, 5], 'int32'), 4),
      tf.oneHot(tf.tensor2d([1, 0, 2, 2], [2, 2], 'int32'), 3, 0.5, -2, 'float32'),
    ],
    ['Reverse', 'OneHot'],
  );
});

test('fill, zerosLike, onesLike and range', async () => {
  await parity(
    () => [
      tf.fill([2, 3], 2.5),
      tf.fill([4], 7, 'int32'),
      tf.fill([2, 2], 1, 'bool'),
      tf.fill([0, 3], 1),
      tf.zerosLike(floats([3, 2])),
      tf.onesLike(ints([5])),
      tf.zerosLike(bools([2, 2])),
      tf.onesLike(bools([3])),
      tf.range(0, 1, 0.1),
      tf.range(5, 0),
      tf.range(-3, 4, 2, 'int32'),
      tf.range(10, 1, -3.5),
      tf.range(0, 5, 0.5, 'int32'),
      tf.range(3, 3),
      tf.range(4, 0, 2),
    ],
    ['Fill', 'ZerosLike', 'OnesLike', 'Range'],
  );
});

test('einsum', async () => {
  await parity(
    () => [
      tf.einsum('ij,jk->ik', floats([3, 4], 1), floats([4, 5], 2)),
      tf.einsum('bij,bjk->bik', floats([2, 3, 4], 3), floats([2, 4, 2], 4)),
      tf.einsum('i,i->', floats([7], 5), floats([7], 6)),
      tf.einsum('ij->ji', floats([2, 5], 7)),
    ],
    ['Einsum'],
    1e-5,
  );
});

test('gradients through layout ops', async () => {
  const f = (x: tf.Tensor) => {
    const a = tf.slice(x, [1, 0, 1], [2, 3, 3]);
    const b = tf.reverse(tf.slice(x, [1, 1, 0], [2, 3, 3]), 1);
    const c = tf.concat([tf.transpose(a, [0, 2, 1]), tf.reverse(tf.tile(b, [1, 1, 1]), 2)], 2);
    const d = tf.pad(
      tf.gather(c, tf.tensor1d([1, 0, 1], 'int32')),
      [
        [1, 0],
        [0, 1],
        [2, 2],
      ],
      3,
    );
    return tf.sum(tf.mul(d, tf.stack(tf.unstack(floats(d.shape, 9), 1), 1)));
  };
  await parity(() => tf.grad(f)(floats([3, 4, 5])), ['Slice', 'Transpose', 'Concat', 'PadV2', 'Reverse', 'Tile'], 1e-5);
});

test('layout kernels leak neither tensors nor native data', async () => {
  await tf.setBackend('aten');
  const before = tf.memory().numTensors;
  const ids = tf.engine().backend.numDataIds();
  tf.tidy(() => {
    const x = floats([4, 5, 6]);
    tf.split(x, 2, 0);
    tf.unstack(x);
    tf.concat([x, tf.reshape(x, [4, 5, 6])], 1);
    tf.stridedSlice(x, [0, 0, 0], [4, 5, 6], [1, 1, 1]);
    tf.slice(x, [1], [2]);
  });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(tf.engine().backend.numDataIds(), ids);
});
