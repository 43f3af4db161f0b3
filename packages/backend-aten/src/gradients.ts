// Gradient overrides that keep a training step native and short on 'aten'. tfjs-core builds
// several gradients from full-size ops: Sum and Mean multiply dy by ones(x.shape) filled in JS,
// Relu takes Step, Cast and Multiply, Square two Multiplys, and FusedBatchNorm about twenty
// kernels plus a Tile of x's size. Here each is one native kernel, or a broadcast that copies
// nothing. registerGradient is global, so each override hands every other backend, and any
// backward pass that is itself being recorded (higher-order gradients: the native kernels have
// no gradients), to the gradient it replaced.
import {
  GradConfig,
  NamedAttrMap,
  NamedTensorMap,
  Tensor,
  TensorInfo,
  backend,
  backend_util,
  cast,
  div,
  engine,
  getBackend,
  getGradient,
  registerGradient,
  reshape,
  util,
} from '@tensorflow/tfjs-core';
import type { AtenBackend } from './backend';
import { BACKEND_NAME } from './backend';

export const BATCH_NORM_GRAD = 'AtenFusedBatchNormGrad';
export const RELU_GRAD = 'AtenReluGrad';
export const SQUARE_GRAD = 'AtenSquareGrad';
export const BROADCAST_VIEW = 'AtenBroadcastView';
export const BATCH_NORM_TRAINING = 'AtenBatchNormTraining';
export const BATCH_NORM_TRAINING_GRAD = 'AtenBatchNormTrainingGrad';
export const RELU6 = 'AtenRelu6';
export const RELU6_GRAD = 'AtenRelu6Grad';

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
/** A gradient made of differentiable kernels, which may also run when the backward is recorded. */
const ANY_ORDER = true;

const run = (kernel: string, inputs: NamedTensorMap, attrs: NamedAttrMap = {}) =>
  engine().runKernel(kernel, inputs, attrs) as Tensor;

/** The gradient of a reduction: dy (as float32, like tfjs-core's) viewed with x's rank and broadcast to x's shape. */
function broadcastToInput(dy: Tensor, x: Tensor, axes: number[]): Tensor {
  const shape = x.shape.slice();
  for (const a of axes) shape[a] = 1;
  return run(
    BROADCAST_VIEW,
    { x: reshape(dy.dtype === 'float32' ? dy : cast(dy, 'float32'), shape) },
    { shape: x.shape },
  );
}

const OVERRIDES: Array<[string, string[], AtenGrad, boolean?]> = [
  // tfjs-core's Conv2D gradient refuses dilations > 1 (the seed's baseline CNN uses dilation 2);
  // ATen's backward handles them, so the backprop kernels take `dilations` as an extra attribute.
  [
    'Conv2D',
    ['x', 'filter'],
    (dy, [x, filter], attrs) => {
      if (attrs.dataFormat === 'NCHW') return null;
      const common = {
        strides: attrs.strides,
        pad: attrs.pad,
        dataFormat: attrs.dataFormat,
        dimRoundingMode: attrs.dimRoundingMode,
        dilations: attrs.dilations,
      };
      return {
        x: () =>
          run('Conv2DBackpropInput', { dy, filter }, { ...common, inputShape: x.shape } as unknown as NamedAttrMap),
        filter: () =>
          run('Conv2DBackpropFilter', { x, dy }, { ...common, filterShape: filter.shape } as unknown as NamedAttrMap),
      };
    },
    ANY_ORDER,
  ],
  [
    'Sum',
    ['x'],
    (dy, [x], attrs) => ({
      x: () => broadcastToInput(dy, x, util.parseAxisParam(attrs.axis as number[], x.shape)),
    }),
  ],
  [
    'Mean',
    ['x'],
    (dy, [x], attrs) => ({
      x: () => {
        const axes = util.parseAxisParam(attrs.axis as number[], x.shape);
        const n = util.sizeFromShape(backend_util.computeOutAndReduceShapes(x.shape, axes)[1]);
        // Divided before the reshape: a scalar dy (the loss's) then becomes a native scalar, not an upload.
        return broadcastToInput(div(dy.dtype === 'float32' ? dy : cast(dy, 'float32'), n), x, axes);
      },
    }),
  ],
  ['Relu', ['x'], (dy, [x]) => (x.dtype === 'float32' ? { x: () => run(RELU_GRAD, { dy, x }) } : null)],
  ['Square', ['x'], (dy, [x]) => (x.dtype === 'float32' ? { x: () => run(SQUARE_GRAD, { dy, x }) } : null)],
  // 'offset' is saved as well so that its gradient takes its own shape, not mean's.
  [
    'FusedBatchNorm',
    ['x', 'mean', 'variance', 'scale', 'offset'],
    (dy, [x, mean, variance, scale, offset], attrs) => {
      if (batchNormChannels(x, [mean, variance, scale, offset]) == null) return null;
      const inputs: NamedTensorMap = { dy, x, mean, variance };
      if (scale != null) inputs.scale = scale;
      if (offset != null) inputs.offset = offset;
      const [dx, dmean, dvariance, dscale, doffset] = engine().runKernel(BATCH_NORM_GRAD, inputs, attrs) as Tensor[];
      return { x: () => dx, mean: () => dmean, variance: () => dvariance, scale: () => dscale, offset: () => doffset };
    },
  ],
];

/**
 * True when a backward pass may use the overrides: on aten, and for those without gradients of
 * their own, not recorded for a higher order.
 */
function useOverride(anyOrder = false): boolean {
  return getBackend() === BACKEND_NAME && (anyOrder || engine().state.gradientDepth === 0);
}

/** The configs this module registered, to tell whether a later registration replaced one. */
const installed = new Map<string, GradConfig>();

/**
 * Installs the overrides, again for any gradient registered since (tfjs-layers registers the
 * tfjs-core gradients when it is imported, which may come after this backend). The kernels whose
 * gradients these are call it on each run, before the engine records them on the tape.
 */
export function ensureGradientOverrides(): void {
  for (const [kernelName, inputsToSave, atenGrad, anyOrder] of OVERRIDES) {
    const original = getGradient(kernelName);
    if (original != null && original === installed.get(kernelName)) continue;
    const config: GradConfig = {
      kernelName,
      inputsToSave,
      gradFunc: (dy, saved, attrs) => {
        const grads = useOverride(anyOrder) ? atenGrad(dy as Tensor, saved, attrs) : null;
        if (grads != null) return grads;
        if (original == null)
          throw new Error(`Cannot compute gradient: gradient function not found for ${kernelName}.`);
        return original.gradFunc(dy, saved, attrs);
      },
    };
    installed.set(kernelName, config);
    registerGradient(config);
  }
}

/**
 * A gradient of a mean or variance output that only the engine's zero-filling made (the output
 * does not reach the loss): JS zeros, never uploaded, which the backward can skip.
 */
function engineZeros(t: Tensor): boolean {
  const entry = (backend() as AtenBackend).data.raw(t.dataId);
  const values = entry.values as Float32Array | undefined;
  return entry.handle === undefined && values !== undefined && values.every((v) => v === 0);
}

/** AtenBatchNormTraining's outputs [y, mean, variance] -> x, scale and offset, in one kernel. */
const batchNormTrainingGrad: GradConfig = {
  kernelName: BATCH_NORM_TRAINING,
  inputsToSave: ['x', 'scale'],
  outputsToSave: [false, true, true],
  gradFunc: (dys, [x, scale, mean, variance], attrs) => {
    const [dy, dmean, dvariance] = dys as Tensor[];
    const inputs: NamedTensorMap = { dy, x, mean, variance, scale };
    if (!engineZeros(dmean)) inputs.dmean = dmean;
    if (!engineZeros(dvariance)) inputs.dvariance = dvariance;
    const [dx, dscale, doffset] = engine().runKernel(BATCH_NORM_TRAINING_GRAD, inputs, attrs) as Tensor[];
    return { x: () => dx, scale: () => dscale, offset: () => doffset };
  },
};

/**
 * AtenRelu6 (tfjs-layers' relu6 activation on aten, see ../layers.ts) -> x, in one kernel. Its
 * gradient is TF's Relu6Grad, zero at x = 6 like tfjs-layers' minimum(6, relu(x)), where
 * tfjs-core's Relu6 gradient passes dy at x = 6; hence a kernel of its own, not Relu6.
 */
const relu6Grad: GradConfig = {
  kernelName: RELU6,
  inputsToSave: ['x'],
  gradFunc: (dy, [x]) => ({ x: () => run(RELU6_GRAD, { dy: dy as Tensor, x }) }),
};

export function registerGradientOverrides(): void {
  ensureGradientOverrides();
  registerGradient(batchNormTrainingGrad);
  registerGradient(relu6Grad);
}
