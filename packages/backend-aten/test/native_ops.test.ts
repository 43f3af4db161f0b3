// The addon's exports and the signatures in src/native_ops.ts describe the same functions: an op
// registered in native/*.cc without a signature, or a signature whose op is gone, fails here.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Native, native } from '../src/native';

// The compiler checks that this names every member of Native and nothing else.
const TYPED: Record<keyof Native, true> = {
  upload: true,
  download: true,
  scalar: true,
  free: true,
  shape: true,
  dtype: true,
  reshape: true,
  cast: true,
  setNumThreads: true,
  getNumThreads: true,
  memory: true,
  emptyCache: true,
  unary: true,
  binary: true,
  step: true,
  leakyRelu: true,
  prelu: true,
  clip: true,
  select: true,
  addN: true,
  eluGrad: true,
  reluGrad: true,
  relu6Grad: true,
  squareGrad: true,
  broadcastView: true,
  reduce: true,
  argReduce: true,
  softmax: true,
  cumulative: true,
  conv: true,
  convBackpropInput: true,
  convBackpropFilter: true,
  maxPool: true,
  maxPoolGrad: true,
  avgPool: true,
  avgPoolGrad: true,
  batchMatMul: true,
  fusedMatMul: true,
  batchNorm: true,
  batchNormGrad: true,
  batchNormTraining: true,
  batchNormTrainingGrad: true,
  transpose: true,
  slice: true,
  stridedSlice: true,
  concat: true,
  stack: true,
  unstack: true,
  split: true,
  tile: true,
  pad: true,
  mirrorPad: true,
  gather: true,
  gatherNd: true,
  reverse: true,
  oneHot: true,
  fill: true,
  range: true,
  einsum: true,
  resizeBilinear: true,
  resizeBilinearGrad: true,
  resizeNearest: true,
  resizeNearestGrad: true,
  cropAndResize: true,
  transform: true,
  rotate: true,
};

test('every function the addon exports has a typed signature, and every signature an export', () => {
  const exported = Object.entries(native)
    .filter(([, v]) => typeof v === 'function')
    .map(([k]) => k)
    .sort();
  assert.deepEqual(exported, Object.keys(TYPED).sort());
});

test('the typed multi-result ops return what their signatures say', () => {
  const x = native.upload(new Float32Array([1, 2, 3, 4, 5, 6]), [1, 3, 2, 1]);
  const [y, indices] = native.maxPool(x, [2, 2], [1, 1], [0, 0, 0, 0], true);
  assert.deepEqual(native.shape(y), [1, 2, 1, 1]);
  assert.deepEqual(Array.from(native.download(y)), [4, 6]);
  assert.notEqual(indices, undefined);
  const parts = native.split(x, [1, 2], 1);
  assert.deepEqual(
    parts.map((p) => native.shape(p)),
    [
      [1, 1, 2, 1],
      [1, 2, 2, 1],
    ],
  );
  const scale = native.upload(new Float32Array([1]), [1]);
  const offset = native.upload(new Float32Array([0]), [1]);
  const moments = native.batchNormTraining(x, scale, offset, 0.001);
  assert.equal(moments.length, 3);
  assert.deepEqual(Array.from(native.download(moments[1])), [3.5]);
  for (const h of [x, y, indices, ...parts, scale, offset, ...moments]) if (h !== undefined) native.free(h);
});
