// Gradient overrides that keep a training step native on 'aten'. tfjs-core's gradients of Sum
// and Mean multiply dy by ones(x.shape) filled in JS (0.3-0.5 s a step on large activations),
// and FusedBatchNorm's takes about twenty kernels plus a Tile of x's size; here they become a
// broadcast and one fused kernel. registerGradient is global, so each override hands every
// other backend to the gradient it replaced.
import {
  GradConfig, NamedAttrMap, NamedTensorMap, Tensor, TensorInfo, backend_util, broadcastTo, cast, div, engine,
  getBackend, getGradient, registerGradient, reshape, util,
} from '@tensorflow/tfjs-core';
import { BACKEND_NAME } from './backend';

export const BATCH_NORM_GRAD = 'AtenFusedBatchNormGrad';

/**
 * The parameter length L for which FusedBatchNorm's cyclic reading of its parameters is a
 * broadcast over x viewed as [rows, L], or null when it is not (or dtypes are not float32).
 */
export function batchNormChannels(x: TensorInfo, params: Array<TensorInfo | undefined>): number | null {
  const given = params.filter((p): p is TensorInfo => p != null);
  if (![x, ...given].every((t) => t.dtype === 'float32')) return null;
  const sizes = given.map((p) => util.sizeFromShape(p.shape));
  const l = Math.max(1, ...sizes);
  const size = util.sizeFromShape(x.shape);
  if (size === 0 || size % l !== 0 || sizes.some((s) => s !== 1 && s !== l)) return null;
  return l;
}

type AtenGrad = (dy: Tensor, saved: Tensor[], attrs: NamedAttrMap) => ReturnType<GradConfig['gradFunc']> | null;

/** dy reshaped to x's rank (reduced axes kept as 1), as float32 like tfjs-core's gradients. */
function expandedDy(dy: Tensor, x: Tensor, axis: number | number[]): Tensor {
  const shape = x.shape.slice();
  for (const a of util.parseAxisParam(axis, x.shape)) shape[a] = 1;
  return reshape(dy.dtype === 'float32' ? dy : cast(dy, 'float32'), shape);
}

const OVERRIDES: Array<[string, string[], AtenGrad]> = [
  // tfjs-core's Conv2D gradient refuses dilations > 1 (the seed's baseline CNN uses dilation 2);
  // ATen's backward handles them, so the backprop kernels take `dilations` as an extra attribute.
  ['Conv2D', ['x', 'filter'], (dy, [x, filter], attrs) => {
    if (attrs.dataFormat === 'NCHW') return null;
    const common = { strides: attrs.strides, pad: attrs.pad, dataFormat: attrs.dataFormat,
      dimRoundingMode: attrs.dimRoundingMode, dilations: attrs.dilations };
    return {
      x: () => engine().runKernel('Conv2DBackpropInput', { dy, filter },
        { ...common, inputShape: x.shape } as unknown as NamedAttrMap) as Tensor,
      filter: () => engine().runKernel('Conv2DBackpropFilter', { x, dy },
        { ...common, filterShape: filter.shape } as unknown as NamedAttrMap) as Tensor,
    };
  }],
  ['Sum', ['x'], (dy, [x], attrs) => ({
    x: () => broadcastTo(expandedDy(dy, x, attrs.axis as number[]), x.shape),
  })],
  ['Mean', ['x'], (dy, [x], attrs) => ({
    x: () => {
      const axes = util.parseAxisParam(attrs.axis as number[], x.shape);
      const n = util.sizeFromShape(backend_util.computeOutAndReduceShapes(x.shape, axes)[1]);
      return broadcastTo(div(expandedDy(dy, x, axes), n), x.shape);
    },
  })],
  // 'offset' is saved as well so that its gradient takes its own shape, not mean's.
  ['FusedBatchNorm', ['x', 'mean', 'variance', 'scale', 'offset'], (dy, [x, mean, variance, scale, offset], attrs) => {
    if (batchNormChannels(x, [mean, variance, scale, offset]) == null) return null;
    const inputs: NamedTensorMap = { dy, x, mean, variance };
    if (scale != null) inputs.scale = scale;
    if (offset != null) inputs.offset = offset;
    const [dx, dmean, dvariance, dscale, doffset] = engine().runKernel(BATCH_NORM_GRAD, inputs, attrs) as Tensor[];
    return { x: () => dx, mean: () => dmean, variance: () => dvariance, scale: () => dscale, offset: () => doffset };
  }],
];

/** The configs this module registered, to tell whether a later registration replaced one. */
const installed = new Map<string, GradConfig>();

/**
 * Installs the overrides, again for any gradient registered since (tfjs-layers registers the
 * tfjs-core gradients when it is imported, which may come after this backend). The kernels whose
 * gradients these are call it on each run, before the engine records them on the tape.
 */
export function ensureGradientOverrides(): void {
  for (const [kernelName, inputsToSave, atenGrad] of OVERRIDES) {
    const original = getGradient(kernelName);
    if (original != null && original === installed.get(kernelName)) continue;
    const config: GradConfig = {
      kernelName,
      inputsToSave,
      gradFunc: (dy, saved, attrs) => {
        const grads = getBackend() === BACKEND_NAME ? atenGrad(dy as Tensor, saved, attrs) : null;
        if (grads != null) return grads;
        if (original == null) throw new Error(`Cannot compute gradient: gradient function not found for ${kernelName}.`);
        return original.gradFunc(dy, saved, attrs);
      },
    };
    installed.set(kernelName, config);
    registerGradient(config);
  }
}

export function registerGradientOverrides(): void {
  ensureGradientOverrides();
}
