// BatchMatMul and _FusedMatMul. Inner-dimension mismatches are left to ATen, whose error
// reaches JS as an Error.
import { KernelConfig, TensorInfo, backend_util, util } from '@tensorflow/tfjs-core';
import { AtenBackend } from '../backend';
import { FusedActivation, native } from '../native';
import { ensureGradientOverrides } from '../gradients';
import { FLOAT, NUMERIC, isOneOf, nativeKernel } from './kernel';

/**
 * Output shape, or null where TF.js's batch pairing (batch i with i % batchA, i % batchB) is not a
 * broadcast ATen can express.
 */
function outShape(a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): number[] | null {
  if (a.shape.length < 2 || b.shape.length < 2 || a.dtype !== b.dtype || !isOneOf(a.dtype, NUMERIC)) return null;
  if (util.sizeFromShape(a.shape) === 0 || util.sizeFromShape(b.shape) === 0) return null;
  const batchA = util.sizeFromShape(a.shape.slice(0, -2));
  const batchB = util.sizeFromShape(b.shape.slice(0, -2));
  const batch = backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const big = Math.max(batchA, batchB);
  if (util.sizeFromShape(batch) !== big || big % Math.min(batchA, batchB) !== 0) return null;
  const m = transposeA ? a.shape[a.shape.length - 1] : a.shape[a.shape.length - 2];
  const n = transposeB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1];
  return [...batch, m, n];
}

function matMul(backend: AtenBackend, a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean) {
  // Dense layers' activations follow; the gradient of Relu must be ours by then.
  ensureGradientOverrides();
  const shape = outShape(a, b, transposeA, transposeB);
  if (shape == null) return null;
  return backend.output(
    native.batchMatMul(backend.handle(a), backend.handle(b), transposeA, transposeB, shape),
    a.dtype,
  );
}

export const kernels: KernelConfig[] = [
  nativeKernel('BatchMatMul', (b, { inputs, attrs }) =>
    matMul(b, inputs.a as TensorInfo, inputs.b as TensorInfo, !!attrs!.transposeA, !!attrs!.transposeB),
  ),

  nativeKernel('_FusedMatMul', (b, { inputs, attrs }) => {
    const { a, b: bb, bias, preluActivationWeights: prelu } = inputs as Record<string, TensorInfo | undefined>;
    const transposeA = !!attrs!.transposeA,
      transposeB = !!attrs!.transposeB;
    const activation = (attrs!.activation as FusedActivation | undefined) ?? 'linear';
    const shape = outShape(a!, bb!, transposeA, transposeB);
    if (shape == null) return null;
    // int32 only without an activation: the activations are float functions in the cpu kernels.
    if (activation !== 'linear' && !isOneOf(a!.dtype, FLOAT)) return null;
    if ((bias != null && bias.dtype !== a!.dtype) || (activation === 'prelu' && prelu?.dtype !== a!.dtype)) return null;
    const h = native.fusedMatMul(
      b.handle(a!),
      b.handle(bb!),
      transposeA,
      transposeB,
      shape,
      bias != null ? b.handle(bias) : null,
      activation,
      activation === 'prelu' ? b.handle(prelu!) : null,
      (attrs!.leakyreluAlpha as number | undefined) ?? 0.2,
    );
    return b.output(h, a!.dtype);
  }),
];
