// Max and average pooling (2-D and 3-D) and their gradients. Channels-last float32 only.
import {
  AvgPool3DAttrs,
  AvgPoolAttrs,
  KernelConfig,
  TensorInfo,
  backend_util,
  engine,
  util,
} from '@tensorflow/tfjs-core';
import { AtenBackend } from '../backend';
import { native } from '../native';
import { Geometry, geometry } from './conv';
import { nativeKernel } from './kernel';

type Info = backend_util.Conv2DInfo | backend_util.Conv3DInfo;
/** The attributes of every pooling kernel and gradient (2-D ones have no dataFormat). */
type Attrs = Partial<AvgPool3DAttrs> & AvgPoolAttrs;

function poolInfo(shape: number[], a: Attrs, rounding = a.dimRoundingMode): Info {
  if (shape.length === 5) {
    const a3 = a as unknown as AvgPool3DAttrs;
    return backend_util.computePool3DInfo(
      shape as [number, number, number, number, number],
      a3.filterSize,
      a3.strides,
      1,
      a3.pad,
      rounding,
    );
  }
  return backend_util.computePool2DInfo(
    shape as [number, number, number, number],
    a.filterSize,
    a.strides,
    1,
    a.pad,
    rounding,
  );
}

function kernelSize(c: Info): number[] {
  const c3 = c as backend_util.Conv3DInfo;
  return c3.filterDepth !== undefined
    ? [c3.filterDepth, c.filterHeight, c.filterWidth]
    : [c.filterHeight, c.filterWidth];
}

// MaxPoolGrad finds each window's maximum again unless the forward kept its indices. They are
// kept (when recording gradients) as an extra handle of the output's entry, which frees them
// with the output; the key names the geometry they were computed for.
const indicesKey = (k: number[], g: Geometry) => `maxPoolIndices ${k} ${g.strides} ${g.pads}`;

function recordingGradients(): boolean {
  const state = engine().state;
  // The kernel itself runs at kernelDepth 1; deeper means inside another kernel or customGrad.
  return state.gradientDepth > 0 && state.kernelDepth <= 1;
}

function maxPoolForward(b: AtenBackend, x: TensorInfo, k: number[], g: Geometry): TensorInfo {
  if (!recordingGradients()) return b.output(native.maxPool(b.handle(x), k, g.strides, g.pads, false), 'float32');
  const [y, indices] = native.maxPool(b.handle(x), k, g.strides, g.pads, true);
  const out = b.output(y, 'float32');
  if (indices !== undefined) {
    const entry = b.data.raw(out.dataId);
    (entry.views ??= new Map()).set(indicesKey(k, g), indices);
  }
  return out;
}

const supported = (a: Attrs, ...ts: TensorInfo[]) =>
  ts.every((t) => t.dtype === 'float32') && (a.dataFormat === undefined || a.dataFormat === 'NDHWC');

function forward(name: string, op: 'maxPool' | 'avgPool'): KernelConfig {
  return nativeKernel(name, (b, { inputs, attrs }) => {
    const x = inputs.x as TensorInfo;
    const a = attrs as unknown as Attrs;
    if (!supported(a, x)) return null;
    const info = poolInfo(x.shape, a);
    const g = geometry(info);
    const k = kernelSize(info);
    // tfjs-backend-cpu's 2-D pools return x itself for a 1x1 window with an unchanged shape, even
    // when padding shifts the windows; its fallback is that cheap identity.
    if (g === null || (k.length === 2 && k[0] === 1 && k[1] === 1 && util.arraysEqual(x.shape, info.outShape))) {
      return null;
    }
    if (op === 'maxPool') return maxPoolForward(b, x, k, g);
    const emptyWindowIsZero = k.length === 3; // tfjs-backend-cpu: 0 in AvgPool3D, NaN in AvgPool
    return b.output(native.avgPool(b.handle(x), k, g.strides, g.pads, emptyWindowIsZero), 'float32');
  });
}

function maxGrad(name: string): KernelConfig {
  return nativeKernel(name, (b, { inputs, attrs }) => {
    const { dy, input, output } = inputs as { dy: TensorInfo; input: TensorInfo; output?: TensorInfo };
    const a = attrs as unknown as Attrs;
    if (!supported(a, dy, input)) return null;
    const info = poolInfo(input.shape, a);
    const g = geometry(info);
    if (g === null || !util.arraysEqual(dy.shape, info.outShape)) return null;
    const k = kernelSize(info);
    const indices =
      output && b.data.has(output.dataId) ? b.data.raw(output.dataId).views?.get(indicesKey(k, g)) : undefined;
    return b.output(
      native.maxPoolGrad(b.handle(dy), b.handle(input), k, g.strides, g.pads, indices ?? null),
      'float32',
    );
  });
}

// AvgPoolGrad (2-D) ignores dimRoundingMode in tfjs-backend-cpu; AvgPool3DGrad honours it.
function avgGrad(name: string, useRounding: boolean): KernelConfig {
  return nativeKernel(name, (b, { inputs, attrs }) => {
    const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
    const a = attrs as unknown as Attrs;
    if (!supported(a, dy, input)) return null;
    const info = poolInfo(input.shape, a, useRounding ? a.dimRoundingMode : undefined);
    const g = geometry(info);
    if (g === null || !util.arraysEqual(dy.shape, info.outShape)) return null;
    return b.output(native.avgPoolGrad(b.handle(dy), input.shape, kernelSize(info), g.strides, g.pads), 'float32');
  });
}

export const kernels: KernelConfig[] = [
  forward('MaxPool', 'maxPool'),
  forward('AvgPool', 'avgPool'),
  forward('MaxPool3D', 'maxPool'),
  forward('AvgPool3D', 'avgPool'),
  maxGrad('MaxPoolGrad'),
  maxGrad('MaxPool3DGrad'),
  avgGrad('AvgPoolGrad', false),
  avgGrad('AvgPool3DGrad', true),
];
