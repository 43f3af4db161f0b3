// Parity of the native image kernels with tfjs-backend-cpu: resizing (and its gradients),
// flips, crops, projective transforms and rotation, on odd sizes and all coordinate modes.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers'; // registers tfjs-core's gradient functions
import '../src/index';
import { fellBack, seq, size } from './parity';
import { native } from '../src/native';

type Out = { shape: number[]; values: ArrayLike<number> };
type Fn = () => tf.Tensor | tf.Tensor[];

const image = (shape: number[], seed = 1) =>
  tf.tensor4d(seq(size(shape), seed), shape as [number, number, number, number]);

async function run(backend: string, fn: Fn): Promise<Out[]> {
  await tf.setBackend(backend);
  const outs: Out[] = [];
  tf.tidy(() => {
    for (const t of [fn()].flat()) outs.push({ shape: t.shape, values: t.dataSync() as ArrayLike<number> });
  });
  return outs;
}

function assertClose(got: Out[], want: Out[], tol: number, what = '') {
  assert.equal(got.length, want.length);
  want.forEach((w, k) => {
    assert.deepEqual(got[k].shape, w.shape, `${what} output ${k} shape`);
    for (let i = 0; i < w.values.length; i++) {
      const a = got[k].values[i],
        b = w.values[i];
      if (Number.isNaN(a) && Number.isNaN(b)) continue;
      if (!(Math.abs(a - b) <= tol * (1 + Math.abs(b))))
        assert.fail(`${what} output ${k} [${i}]: aten ${a} vs cpu ${b}`);
    }
  });
}

/** fn on cpu and on aten must agree; the `kernels` named must have run natively on aten. */
async function parity(fn: Fn, kernels: string[], tol = 1e-6, what = '') {
  const want = await run('cpu', fn);
  fellBack.clear();
  const got = await run('aten', fn);
  for (const k of kernels) assert.ok(!fellBack.has(k), `${k} fell back to the cpu kernel`);
  assertClose(got, want, tol, what);
}

const MODES: Array<[boolean, boolean]> = [
  [false, false],
  [true, false],
  [false, true],
];

test('resizeBilinear: up, down, to size 1, every coordinate mode', async () => {
  for (const [align, half] of MODES) {
    await parity(
      () => [
        tf.image.resizeBilinear(image([2, 5, 7, 3]), [9, 4], align, half),
        tf.image.resizeBilinear(image([1, 8, 6, 1]), [3, 11], align, half),
        tf.image.resizeBilinear(image([3, 4, 4, 2]), [1, 1], align, half),
        tf.image.resizeBilinear(image([1, 1, 3, 2]), [4, 3], align, half),
        tf.image.resizeBilinear(tf.tensor3d(seq(30, 5), [5, 3, 2]), [2, 7], align, half),
      ],
      ['ResizeBilinear'],
      1e-6,
      `align=${align} half=${half}`,
    );
  }
});

test('resizeBilinear gradient (tf.grad) matches cpu', async () => {
  for (const [align, half] of MODES.slice(0, 2)) {
    for (const [shape, to] of [
      [
        [2, 5, 5, 3],
        [9, 4],
      ],
      [
        [1, 6, 6, 1],
        [3, 3],
      ],
      [
        [3, 4, 4, 2],
        [4, 4],
      ],
    ] as const) {
      await parity(
        () => {
          const dy = image([shape[0], to[0], to[1], shape[3]], 7);
          return tf.grad((x: tf.Tensor) =>
            tf.mul(tf.image.resizeBilinear(x as tf.Tensor4D, to as [number, number], align, half), dy),
          )(image([...shape]));
        },
        ['ResizeBilinearGrad'],
        1e-5,
        `align=${align} ${shape}->${to}`,
      );
    }
  }
});

test('resizeBilinear gradient of non-square images has the image shape', async () => {
  // The cpu kernel computes the right values but reports [b, width, height, c], so tf.grad on
  // cpu refuses non-square images; compare with its values called directly.
  for (const align of [false, true]) {
    const attrs = { alignCorners: align, halfPixelCenters: false, size: [9, 4] };
    const fn = () =>
      tf
        .engine()
        .runKernel(
          'ResizeBilinearGrad',
          { images: image([2, 5, 7, 3]), dy: image([2, 9, 4, 3], 4) },
          attrs,
        ) as tf.Tensor;
    const [want] = await run('cpu', fn);
    const [got] = await run('aten', fn);
    assert.deepEqual(got.shape, [2, 5, 7, 3]);
    assertClose([{ ...got, shape: want.shape }], [want], 1e-5);
  }
});

/** <resize(x), dy> == <x, grad(dy)>: checks a gradient where the cpu kernel has no reference. */
async function assertAdjoint(resize: (x: tf.Tensor4D) => tf.Tensor4D, xShape: number[], dyShape: number[]) {
  await tf.setBackend('aten');
  tf.tidy(() => {
    const x = image(xShape, 3);
    const dy = image(dyShape, 4);
    const lhs = tf.sum(tf.mul(resize(x), dy)).dataSync()[0];
    const rhs = tf.sum(tf.mul(x, tf.grad((t: tf.Tensor) => resize(t as tf.Tensor4D))(x, dy))).dataSync()[0];
    assert.ok(Math.abs(lhs - rhs) < 1e-4 * (1 + Math.abs(lhs)), `adjoint: ${lhs} vs ${rhs}`);
  });
}

test('halfPixelCenters gradients are the adjoint of the forward resize', async () => {
  // The cpu gradient kernels ignore halfPixelCenters; aten differentiates the forward it ran.
  for (const [h, w] of [
    [9, 4],
    [3, 11],
    [5, 7],
  ]) {
    await assertAdjoint((x) => tf.image.resizeBilinear(x, [h, w], false, true), [2, 5, 7, 3], [2, h, w, 3]);
    await assertAdjoint((x) => tf.image.resizeNearestNeighbor(x, [h, w], false, true), [2, 5, 7, 3], [2, h, w, 3]);
  }
  for (const align of [false, true]) {
    await assertAdjoint((x) => tf.image.resizeBilinear(x, [9, 4], align), [3, 5, 7, 2], [3, 9, 4, 2]);
    await assertAdjoint((x) => tf.image.resizeNearestNeighbor(x, [9, 4], align), [3, 5, 7, 2], [3, 9, 4, 2]);
  }
});

test('resizeNearestNeighbor forward (float and int32) and gradient', async () => {
  for (const [align, half] of MODES) {
    await parity(
      () => [
        tf.image.resizeNearestNeighbor(image([2, 5, 7, 3]), [9, 4], align, half),
        tf.image.resizeNearestNeighbor(image([1, 8, 6, 1]), [3, 11], align, half),
        tf.image.resizeNearestNeighbor(image([1, 3, 3, 2]), [1, 1], align, half),
        tf.image.resizeNearestNeighbor(tf.tensor4d([1, 2, 3, 4, 5, 6], [1, 2, 3, 1], 'int32'), [5, 4], align, half),
      ],
      ['ResizeNearestNeighbor'],
      0,
      `align=${align} half=${half}`,
    );
  }
  // Batch 1 only: for larger batches the cpu kernel reads dy with the image's batch stride
  // (the adjoint test above covers batches).
  for (const align of [false, true]) {
    for (const [shape, to] of [
      [
        [1, 5, 7, 3],
        [9, 4],
      ],
      [
        [1, 6, 6, 1],
        [3, 3],
      ],
      [
        [1, 4, 5, 2],
        [8, 13],
      ],
    ] as const) {
      await parity(
        () => {
          const dy = image([shape[0], to[0], to[1], shape[3]], 7);
          return tf.grad((x: tf.Tensor) =>
            tf.mul(tf.image.resizeNearestNeighbor(x as tf.Tensor4D, to as [number, number], align), dy),
          )(image([...shape]));
        },
        ['ResizeNearestNeighborGrad'],
        1e-5,
        `align=${align} ${shape}->${to}`,
      );
    }
  }
});

test('flipLeftRight', async () => {
  await parity(
    () => [tf.image.flipLeftRight(image([3, 4, 5, 2])), tf.image.flipLeftRight(image([1, 2, 7, 1]))],
    ['FlipLeftRight'],
    0,
  );
});

test('cropAndResize: bilinear and nearest, extrapolation, flipped boxes, crop size 1', async () => {
  const boxes = tf.tensor2d([
    [0, 0, 1, 1],
    [0.1, 0.2, 0.7, 0.9],
    [0.8, 0.9, 0.2, 0.1],
    [-0.3, 0.5, 1.4, 1.2],
    [0.5, 0.5, 0.5, 0.5],
    [0.25, -0.5, 0.75, 0.4],
  ]);
  const boxData = boxes.arraySync();
  boxes.dispose();
  for (const method of ['bilinear', 'nearest'] as const) {
    for (const crop of [
      [5, 4],
      [1, 1],
      [1, 6],
      [7, 1],
    ] as const) {
      await parity(
        () =>
          tf.image.cropAndResize(
            image([3, 6, 9, 2]),
            tf.tensor2d(boxData),
            tf.tensor1d([0, 2, 1, 0, 2, 5], 'int32'),
            crop as [number, number],
            method,
            -3.5,
          ),
        ['CropAndResize'],
        1e-6,
        `${method} ${crop}`,
      );
    }
  }
});

test('transform: every interpolation and fill mode, projective, other output size', async () => {
  // Zoom, rotation, shear and shift in the form tf.image.transform takes (output -> input map).
  const rows = [
    [0.9, -0.35, 1.7, 0.4, 1.1, -2.3, 0, 0],
    [1.3, 0.2, -3.1, -0.1, 0.8, 2.6, 0.01, -0.02],
    [1, 0, 0.5, 0, 1, -0.5, 0, 0],
    [-1, 0, 6, 0, 1, 0, 0, 0],
  ];
  for (const interpolation of ['nearest', 'bilinear'] as const) {
    for (const fillMode of ['constant', 'reflect', 'wrap', 'nearest'] as const) {
      for (const outputShape of [undefined, [4, 11]] as const) {
        await parity(
          () =>
            rows.map((r, i) =>
              tf.image.transform(
                image([1, 7, 6, 3], i),
                tf.tensor2d([r]),
                interpolation,
                fillMode,
                0.25,
                outputShape as [number, number] | undefined,
              ),
            ),
          ['Transform'],
          1e-6,
          `${interpolation} ${fillMode} ${outputShape}`,
        );
      }
    }
  }
});

test('transform of a batch applies each row to its image (the cpu kernel stops after the first)', async () => {
  const rows = [
    [0.9, -0.35, 1.7, 0.4, 1.1, -2.3, 0, 0],
    [1.3, 0.2, -3.1, -0.1, 0.8, 2.6, 0.01, -0.02],
    [1, 0, 0, 0, 1, 0, 0, 0],
  ];
  const one = (i: number, batch: number) => tf.slice(image([batch, 9, 8, 2]), [i], [1]);
  for (const interpolation of ['nearest', 'bilinear'] as const) {
    const want = (
      await Promise.all(
        [0, 1, 2].map((i) =>
          run('cpu', () => tf.image.transform(one(i, 3), tf.tensor2d([rows[i]]), interpolation, 'reflect')),
        ),
      )
    ).flat();
    const [got] = await run('aten', () =>
      tf.image.transform(image([3, 9, 8, 2]), tf.tensor2d(rows), interpolation, 'reflect'),
    );
    const n = want[0].values.length;
    const perImage = [0, 1, 2].map((i) => ({
      shape: want[0].shape,
      values: Array.from(got.values).slice(i * n, (i + 1) * n),
    }));
    assertClose(perImage, want, 1e-6, interpolation);
    // One row of transforms applies to every image.
    const [shared] = await run('aten', () =>
      tf.image.transform(image([3, 9, 8, 2]), tf.tensor2d([rows[0]]), interpolation),
    );
    const [first] = await run('cpu', () => tf.image.transform(one(2, 3), tf.tensor2d([rows[0]]), interpolation));
    assertClose([{ shape: first.shape, values: Array.from(shared.values).slice(2 * n) }], [first], 1e-6);
  }
});

test('rotateWithOffset: grey and RGB(A) fill, offset centre', async () => {
  await parity(
    () => [
      tf.image.rotateWithOffset(image([2, 7, 6, 1]), 0.7),
      tf.image.rotateWithOffset(image([1, 8, 9, 3]), -2.1, [10, 20, 30], [0.2, 0.9]),
      tf.image.rotateWithOffset(image([1, 5, 5, 4]), Math.PI / 2, [1, 2, 3], 0.3),
      tf.image.rotateWithOffset(image([1, 6, 6, 2]), 3, 0.5),
    ],
    ['RotateWithOffset'],
    0,
  );
});

test('bad image inputs give JS errors, not crashes', async () => {
  await tf.setBackend('aten');
  assert.throws(() => tf.image.resizeBilinear(tf.zeros([2, 3]) as unknown as tf.Tensor3D, [4, 4]));
  assert.throws(() => tf.image.transform(tf.zeros([1, 4, 4, 1]), tf.zeros([2, 8]) as tf.Tensor2D));
  // Kernels called directly with inconsistent inputs (no op-level validation).
  assert.throws(
    () =>
      tf
        .engine()
        .runKernel(
          'Transform',
          { image: tf.zeros([2, 4, 4, 1]), transforms: tf.zeros([3, 8]) },
          { interpolation: 'nearest', fillMode: 'constant', fillValue: 0 },
        ),
    /transforms/,
  );
  assert.throws(
    () =>
      tf
        .engine()
        .runKernel(
          'CropAndResize',
          { image: tf.zeros([1, 4, 4, 1]), boxes: tf.zeros([2, 3]), boxInd: tf.zeros([2], 'int32') },
          { cropSize: [2, 2], method: 'bilinear', extrapolationValue: 0 },
        ),
    /boxes/,
  );
  // Resizing an image with no rows reads nothing natively (the cpu kernel's NaNs are kept).
  await parity(
    () => [
      tf.image.resizeBilinear(tf.zeros([1, 0, 3, 1]) as tf.Tensor4D, [2, 2]),
      tf.image.resizeNearestNeighbor(tf.zeros([1, 2, 0, 1]) as tf.Tensor4D, [2, 2]),
    ],
    [],
  );
  await tf.setBackend('aten');
  const h = native as unknown as Record<string, (...a: unknown[]) => unknown>;
  assert.throws(
    () => h.resizeBilinearGrad(native.upload(new Float32Array(4), [1, 2, 2, 1]), 0, 3, false, false),
    /no rows or columns/,
  );
  // NaN and huge coordinates are filled, not used as indices.
  const t = tf.image.transform(
    tf.ones([1, 4, 4, 1]),
    tf.tensor2d([[NaN, 0, 0, 0, 1e300, 0, 0, 0]]),
    'nearest',
    'constant',
    7,
  );
  assert.deepEqual(Array.from(t.dataSync()), new Array(16).fill(7));
});

test('augmentation-sized batches run fast', async (t) => {
  await tf.setBackend('aten');
  const x = tf.randomUniform([32, 224, 224, 1]) as tf.Tensor4D;
  const rows = tf.tensor2d(
    Array.from({ length: 32 }, (_, i) => [Math.cos(i), -Math.sin(i), 20, Math.sin(i), Math.cos(i), -10, 0, 0]),
  );
  const time = (name: string, f: () => tf.Tensor) => {
    f().dispose(); // warm-up
    const t0 = performance.now();
    f().dispose();
    const ms = performance.now() - t0;
    t.diagnostic(`${name} [32,224,224,1]: ${ms.toFixed(1)} ms`);
    assert.ok(ms < 1000, `${name} took ${ms} ms`);
  };
  time('transform bilinear', () => tf.image.transform(x, rows, 'bilinear', 'reflect'));
  time('transform nearest', () => tf.image.transform(x, rows, 'nearest', 'constant'));
  time('resizeBilinear 256', () => tf.image.resizeBilinear(x, [256, 256]));
  time('flipLeftRight', () => tf.image.flipLeftRight(x));
  time('rotateWithOffset', () => tf.image.rotateWithOffset(x, 0.3));
  tf.dispose([x, rows]);
});
